"""Workers that join by themselves (issue 19, item 3): what the control plane's side
publishes and what a worker's user data runs.

The cluster keeps one SSM parameter, :func:`parameter_name`, a SecureString that only
the node role may read: the API server's address, a bootstrap token and the CA
certificate's hash (:func:`parameter_value`), with the token's expiry time. A worker the
Auto Scaling group launches runs ``sparkube-join.py`` (:func:`join_script`, Python's
standard library only): it reads its identity and its role's credentials from the
instance metadata (IMDSv2), reads the parameter with a SigV4-signed ``GetParameter``,
and fills in kubeadm's JoinConfiguration template
(:func:`sparkube.nodes.kubeadm.render_self_join_template`) with the token, its node
name and ``providerID`` ``aws:///ZONE/INSTANCE``. No token is ever in the user data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (the controller imports this module without kubeadm's dependencies)
    from sparkube.nodes.kubeadm import JoinCommand

#: The join script's path on a node, and where it writes the configuration.
SCRIPT_PATH = "/usr/local/lib/sparkube/sparkube-join.py"
CONFIG_PATH = "/etc/sparkube/join.yaml"
TEMPLATE_PATH = "/etc/sparkube/join.template.yaml"

#: A bootstrap token's life: long enough for a group's slowest launch (boot, packages,
#: the join itself), short enough that a leaked one is soon worthless. The cluster
#: writes a fresh one before the current one has less than :data:`RENEW_BEFORE` left.
TOKEN_TTL = timedelta(hours=2)
RENEW_BEFORE = timedelta(minutes=45)


def parameter_name(cluster: str) -> str:
    return f"/sparkube/{cluster}/join"


def parameter_arn(region: str, account: str, cluster: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:parameter{parameter_name(cluster)}"


def parameter_value(join: JoinCommand, expires: datetime) -> str:
    """The parameter's (secret) value: never log it."""
    if not join.ca_cert_hashes:
        raise ValueError("a join parameter needs the CA certificate's hash")
    return value_of(join.endpoint, join.token, join.ca_cert_hashes[0], expires)


def value_of(endpoint: str, token: str, ca_cert_hash: str, expires: datetime) -> str:
    """The parameter's value from its parts (a secret: never log it)."""
    return json.dumps(
        {
            "endpoint": endpoint,
            "token": token,
            "ca_cert_hash": ca_cert_hash,
            "expires": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        sort_keys=True,
    )


def needs_renewal(value: str | None, now: datetime) -> bool:
    """True when there is no parameter, it cannot be read, or its token expires within
    :data:`RENEW_BEFORE`."""
    if not value:
        return True
    try:
        expires = datetime.fromisoformat(json.loads(value)["expires"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return True
    return expires - now <= RENEW_BEFORE


def join_script() -> str:
    """The text of ``sparkube-join.py``, as the user data writes it to the node."""
    return (resources.files("sparkube.nodes") / "scripts" / "sparkube-join.py").read_text(
        encoding="utf-8"
    )


# --- what a worker's user data installs ---------------------------------------------

RUNNER_PATH = "/usr/local/lib/sparkube/self-join.sh"
UNIT_NAME = "sparkube-join.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
#: Taken by the self-join around its ``kubeadm join``.
LOCK_PATH = "/var/lib/sparkube/join.lock"
PREPARE_DONE = "/var/lib/sparkube/prepare.done"
#: How long a worker waits for its preparation, then for a usable parameter (s).
PREPARE_WAIT = 3600
PARAMETER_WAIT = 1800
#: The tag ``up`` gives the workers it names (and joins over SSH itself).
NAMED_TAG = "sparkube:node"


def runner(cluster: str, *, ssm_endpoint: str = "") -> str:
    """The shell script the unit runs at every boot: once the node's preparation has
    succeeded, and unless the node joined already or ``up`` named it (up joins those),
    it writes the JoinConfiguration with ``sparkube-join.py``, runs ``kubeadm join``
    and removes the configuration (it holds the token)."""
    endpoint = f" --ssm-endpoint {ssm_endpoint}" if ssm_endpoint else ""
    return f"""#!/bin/bash
# sparkube: a worker joins the cluster by itself (see {UNIT_NAME}).
set -u
waited=0
until [ "$(cat {PREPARE_DONE} 2>/dev/null)" = 0 ]; do
    if [ "$waited" -ge {PREPARE_WAIT} ]; then
        echo "sparkube self-join: the node's preparation did not succeed in {PREPARE_WAIT} s \\
(see /var/log/sparkube-prepare.log); not joining." >&2
        exit 1
    fi
    sleep 2; waited=$((waited + 2))
done
if [ -f /etc/kubernetes/kubelet.conf ]; then
    echo "sparkube self-join: joined already."
    exit 0
fi
rm -f {CONFIG_PATH}
python3 {SCRIPT_PATH} --parameter {parameter_name(cluster)} --template {TEMPLATE_PATH} \\
    --out {CONFIG_PATH} --wait {PARAMETER_WAIT} --skip-if-tagged {NAMED_TAG}{endpoint} || exit $?
[ -f {CONFIG_PATH} ] || exit 0
# one join at a time on this node (the parameter may have taken a while to come)
exec 9>{LOCK_PATH}
flock 9
if [ -f /etc/kubernetes/kubelet.conf ]; then
    rm -f {CONFIG_PATH}
    echo "sparkube self-join: joined meanwhile."
    exit 0
fi
kubeadm join --config {CONFIG_PATH}
status=$?
rm -f {CONFIG_PATH}
exit $status
"""


def unit() -> str:
    return f"""[Unit]
Description=sparkube: join the cluster (a worker its Auto Scaling group launched)
Wants=network-online.target
After=network-online.target containerd.service

[Service]
Type=oneshot
TimeoutStartSec=infinity
ExecStart={RUNNER_PATH}
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""


def user_data_block(cluster: str, *, template: str, ssm_endpoint: str = "") -> str:
    """Bash for a worker's user data: write the join script, the JoinConfiguration
    template (no secret in it), the runner and its unit, and start the unit without
    waiting (it waits for the preparation the rest of the user data runs)."""
    files = [
        (SCRIPT_PATH, join_script(), "0755"),
        (TEMPLATE_PATH, template, "0644"),
        (RUNNER_PATH, runner(cluster, ssm_endpoint=ssm_endpoint), "0755"),
        (UNIT_PATH, unit(), "0644"),
    ]
    out = ["# sparkube: workers join by themselves (sparkube.nodes.selfjoin)"]
    for number, (path, text, mode) in enumerate(files):
        delimiter = f"SPARKUBE_SELF_JOIN_{number}_END"
        if delimiter in text:
            raise ValueError(f"{path} contains its here-document delimiter")
        out += [
            f"mkdir -p {path.rsplit('/', 1)[0]}",
            f"cat > {path} <<'{delimiter}'",
            text.rstrip("\n"),
            delimiter,
            f"chmod {mode} {path}",
        ]
    out += [
        "systemctl daemon-reload",
        f"systemctl enable {UNIT_NAME}",
        f"systemctl start --no-block {UNIT_NAME}",
    ]
    return "\n".join(out) + "\n"
