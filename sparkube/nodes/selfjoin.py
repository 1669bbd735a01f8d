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
    return json.dumps(
        {
            "endpoint": join.endpoint,
            "token": join.token,
            "ca_cert_hash": join.ca_cert_hashes[0],
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
