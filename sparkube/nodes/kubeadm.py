"""kubeadm as data: the init/join configuration files and the join command parser.

Both configs are rendered here (kubeadm.k8s.io/v1beta4; v1beta3 is gone in 1.36) so the
exact files nodes receive are unit-tested. Joining goes through a JoinConfiguration
file written over SSH stdin rather than ``kubeadm join --token ...`` arguments, so the
bootstrap token never appears in a process list, a log line or an error message.

The join command printed by ``kubeadm token create --print-join-command`` is parsed
strictly: exactly one ``kubeadm join`` line (banners, blank lines, CRLF, backslash
continuations and runs of spaces tolerated), an endpoint ``host:port``, a token of the
form ``[a-z0-9]{6}.[a-z0-9]{16}`` and at least one ``sha256:<64 hex>`` CA hash.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import yaml

from sparkube.errors import NodeError
from sparkube.model import MARKET_LABEL, ON_DEMAND, SPOT, Node
from sparkube.spec import ClusterSpec

API_VERSION = "kubeadm.k8s.io/v1beta4"
CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
API_PORT = 6443
SERVICE_SUBNET = "10.96.0.0/12"
#: Where the rendered files go on a node (under ``$SPARKUBE_NODE_ROOT``).
INIT_CONFIG_PATH = "/etc/sparkube/kubeadm-init.yaml"
JOIN_CONFIG_PATH = "/etc/sparkube/kubeadm-join.yaml"
#: Files whose presence means "already done" (kubeadm's own preflight refuses re-runs).
ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
#: Written by sparkube once ``kubeadm init`` returned 0: the control plane is complete.
INIT_DONE = "/etc/sparkube/kubeadm-init.done"
#: kubeadm init's output on the control plane (printed back to sparkube when it ends).
INIT_LOG = "/var/log/sparkube-kubeadm-init.log"
#: What an init leaves from its first phases on (certificates, static pod manifests).
INIT_TRACES = ("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/manifests/kube-apiserver.yaml")

#: The control plane's state, as init_state_command() prints it.
INITIALISED, INIT_RUNNING, INIT_PARTIAL, FRESH = "initialised", "running", "partial", "fresh"

TOKEN_RE = re.compile(r"\A[a-z0-9]{6}\.[a-z0-9]{16}\Z")
CA_HASH_RE = re.compile(r"\Asha256:[a-f0-9]{64}\Z")
_HOSTNAME_RE = re.compile(
    r"\A(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\Z"
)


class JoinCommandError(NodeError):
    """The control plane printed something that is not a usable join command."""


@dataclass(frozen=True)
class JoinCommand:
    """What a worker needs to join: never log ``token``."""

    endpoint: str
    token: str
    ca_cert_hashes: tuple[str, ...]

    def __repr__(self) -> str:  # keep the token out of tracebacks and logs
        return f"JoinCommand(endpoint={self.endpoint!r}, token='***', ca_cert_hashes=...)"


def parse_join_command(output: str) -> JoinCommand:
    """Parse ``kubeadm token create --print-join-command`` output, strictly."""
    text = output.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"\\\n", " ", text)
    lines = [ln.strip() for ln in text.split("\n") if re.match(r"\s*kubeadm\s+join\s", ln + " ")]
    if not lines:
        raise JoinCommandError(
            "The control plane did not print a `kubeadm join` command; "
            "run `sparkube up` again, or check kubeadm on the control plane."
        )
    if len(set(lines)) > 1:
        raise JoinCommandError("The control plane printed several different join commands.")
    words = lines[0].split()[2:]
    if not words or words[0].startswith("-"):
        raise JoinCommandError("The join command has no API server endpoint.")
    endpoint = _check_endpoint(words[0])
    token: str | None = None
    hashes: list[str] = []
    rest = words[1:]
    i = 0
    while i < len(rest):
        word = rest[i]
        name, eq, value = word.partition("=")
        if name not in ("--token", "--discovery-token-ca-cert-hash"):
            raise JoinCommandError(f"The join command has an unexpected argument {name!r}.")
        if not eq:
            if i + 1 >= len(rest):
                raise JoinCommandError(f"The join command's option {word} has no value.")
            value = rest[i + 1]
            i += 1
        i += 1
        if name == "--token":
            if token is not None:
                raise JoinCommandError("The join command has more than one --token.")
            token = value
        else:
            hashes.append(value)
    if token is None or not TOKEN_RE.match(token):
        raise JoinCommandError(
            "The join command's token is missing or malformed "
            "(expected 6 + 16 lowercase letters or digits separated by a dot)."
        )
    if not hashes or not all(CA_HASH_RE.match(h) for h in hashes):
        raise JoinCommandError(
            "The join command's --discovery-token-ca-cert-hash is missing or malformed "
            "(expected sha256: followed by 64 lowercase hex digits)."
        )
    return JoinCommand(endpoint, token, tuple(hashes))


def _check_endpoint(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise JoinCommandError(f"The join command's endpoint {value!r} is not host:port.")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not _HOSTNAME_RE.match(bare):
            raise JoinCommandError(
                f"The join command's endpoint {value!r} is not host:port."
            ) from None
    return value


def _dump(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)


def cert_sans(node: Node) -> list[str]:
    """Names and addresses the API server certificate must cover (besides defaults)."""
    sans: list[str] = []
    for value in (node.public_ip, node.private_ip, node.public_dns, node.ssh_host):
        if value and value not in sans:
            sans.append(value)
    return sans


def render_init_config(spec: ClusterSpec, node: Node, *, kubernetes_version: str) -> str:
    """InitConfiguration + ClusterConfiguration + KubeletConfiguration for the control plane."""
    if not node.private_ip:
        raise NodeError(f"{node.name} has no private IP to advertise the API server on.")
    version = kubernetes_version if kubernetes_version.startswith("v") else f"v{kubernetes_version}"
    init = {
        "apiVersion": API_VERSION,
        "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": node.private_ip, "bindPort": API_PORT},
        "nodeRegistration": {
            "name": node.name,
            "criSocket": CRI_SOCKET,
            "kubeletExtraArgs": [{"name": "node-ip", "value": node.private_ip}],
        },
    }
    cluster = {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "clusterName": spec.name,
        "kubernetesVersion": version,
        "networking": {
            "podSubnet": spec.pod_cidr,
            "serviceSubnet": SERVICE_SUBNET,
            "dnsDomain": "cluster.local",
        },
        "apiServer": {"certSANs": cert_sans(node)},
    }
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "serverTLSBootstrap": True,
    }
    return _dump([init, cluster, kubelet])


def _join_doc(
    endpoint: str, token: str, hashes: list[str], name: str, extra: list[dict[str, str]]
) -> dict[str, Any]:
    registration: dict[str, Any] = {"name": name, "criSocket": CRI_SOCKET}
    if extra:
        registration["kubeletExtraArgs"] = extra
    return {
        "apiVersion": API_VERSION,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": endpoint,
                "token": token,
                "caCertHashes": hashes,
            },
        },
        "nodeRegistration": registration,
    }


def render_join_config(join: JoinCommand, node: Node) -> str:
    """JoinConfiguration for a worker (holds the token: write it 0600, never log it). Its
    kubelet gets ``--provider-id aws:///ZONE/INSTANCE`` as a worker that joins by itself
    does: the controller finds a group member's node by it."""
    extra = [{"name": "node-ip", "value": node.private_ip}] if node.private_ip else []
    if node.instance_id and node.availability_zone:
        extra.append({"name": "provider-id", "value": provider_id(node)})
    extra.append({"name": "node-labels", "value": market_label(SPOT if node.spot else ON_DEMAND)})
    return _dump(
        [_join_doc(join.endpoint, join.token, list(join.ca_cert_hashes), node.name, extra)]
    )


def market_label(market: str) -> str:
    """The kubelet's ``--node-labels`` value saying a worker's EC2 market
    (:data:`sparkube.model.MARKET_LABEL`): set at registration, by the node itself."""
    return f"{MARKET_LABEL}={market}"


def provider_id(node: Node) -> str:
    """The kubelet's ``--provider-id`` of an EC2 instance (the AWS cloud provider's form)."""
    return f"aws:///{node.availability_zone}/{node.instance_id}"


#: The fields of :func:`render_self_join_template` that the worker fills in itself
#: (``sparkube/nodes/scripts/sparkube-join.py``, from the instance metadata and the
#: cluster's join parameter in SSM).
SELF_JOIN_FIELDS = (
    "@ENDPOINT@", "@TOKEN@", "@CA_CERT_HASH@", "@NODE_NAME@", "@NODE_IP@", "@PROVIDER_ID@",
    "@MARKET@",
)  # fmt: skip


def render_self_join_template() -> str:
    """The JoinConfiguration a worker launched by the group completes by itself: no token
    in it (the worker reads one from SSM), its kubelet given ``--provider-id
    aws:///ZONE/INSTANCE``, its private address and its market label (the metadata's
    ``instance-life-cycle``)."""
    extra = [
        {"name": "node-ip", "value": "@NODE_IP@"},
        {"name": "provider-id", "value": "@PROVIDER_ID@"},
        {"name": "node-labels", "value": market_label("@MARKET@")},
    ]
    return _dump([_join_doc("@ENDPOINT@", "@TOKEN@", ["@CA_CERT_HASH@"], "@NODE_NAME@", extra)])


# --- remote commands (rendered as data; run by sparkube.nodes.phase) ----------------

#: Shell prefix for node paths: empty on real nodes, a per-host directory in tests.
R = '"${SPARKUBE_NODE_ROOT:-}"'


def init_state_command() -> str:
    """Prints one word on the control plane:

    - ``initialised``: sparkube saw ``kubeadm init`` finish, or (a connection lost before
      it could note that) admin.conf exists and the API server answers with it;
    - ``running``: a ``kubeadm init`` of ours is still at work (its SSH session was lost,
      it goes on: no tty, no SIGHUP);
    - ``partial``: an init stopped midway (its files are there, the API server does not
      answer), which a second init refuses in preflight until ``kubeadm reset``;
    - ``fresh``: nothing yet.
    """
    init = f'"[k]ubeadm init --config "{R}"{INIT_CONFIG_PATH}"'  # [k]: not this shell
    readyz = f"sudo kubectl --kubeconfig {R}{ADMIN_CONF} --request-timeout=10s get --raw=/readyz"
    traces = " -o ".join(f"-e {R}{path}" for path in (ADMIN_CONF, *INIT_TRACES))
    return (
        f"if sudo test -f {R}{INIT_DONE}; then echo {INITIALISED}; "
        f"elif pgrep -f {init} >/dev/null; then echo {INIT_RUNNING}; "
        f"elif sudo test -f {R}{ADMIN_CONF} && {readyz} >/dev/null 2>&1; then echo {INITIALISED}; "
        f"elif sudo test {traces}; then echo {INIT_PARTIAL}; "
        f"else echo {FRESH}; fi"
    )


def init_done_command() -> str:
    return f"sudo mkdir -p {R}/etc/sparkube && sudo touch {R}{INIT_DONE}"


def reset_command() -> str:
    """Undo a half-finished init so the next one passes preflight."""
    return f"sudo kubeadm reset --force --cri-socket {CRI_SOCKET}"


def is_joined_command() -> str:
    return f"sudo test -f {R}{KUBELET_CONF} && echo joined || echo fresh"


def init_command() -> str:
    """``kubeadm init`` writing its output to :data:`INIT_LOG` on the node, printed back
    when it ends. Not straight to the SSH channel: kubeadm (a Go program) dies of SIGPIPE
    at its next line once the channel's reader is gone, so an init whose connection
    dropped stopped there (seen on the real-node bed, in its preflight) and the next
    ``up`` had to init again, or reset and init when it had got further. Writing to a
    file, it finishes by itself and the next ``up`` finds it done
    (:func:`init_state_command`)."""
    script = 'mkdir -p "${2%/*}" && kubeadm init --config "$1" >"$2" 2>&1; s=$?; cat "$2"; exit $s'
    return f"sudo sh -c '{script}' sh {R}{INIT_CONFIG_PATH} {R}{INIT_LOG}"


def join_command() -> str:
    return f"sudo kubeadm join --config {R}{JOIN_CONFIG_PATH}"


def token_command() -> str:
    return "sudo kubeadm token create --print-join-command --ttl 2h"


def self_join_token_command() -> str:
    """A token for the self-join parameter (``sparkube.nodes.selfjoin``): the same life
    as the parameter says, a description that tells it apart in ``kubeadm token list``."""
    from sparkube.nodes.selfjoin import TOKEN_TTL  # (selfjoin imports this module)

    minutes = int(TOKEN_TTL.total_seconds() // 60)
    return (
        f"sudo kubeadm token create --print-join-command --ttl {minutes}m "
        "--description sparkube-self-join"
    )


def read_admin_conf_command() -> str:
    return f"sudo cat {R}{ADMIN_CONF}"


def apply_manifest_command() -> str:
    """Server-side apply of a manifest given on stdin, with the node's admin kubeconfig."""
    return (
        f"sudo kubectl --kubeconfig {R}{ADMIN_CONF} apply --server-side "
        "--field-manager sparkube --force-conflicts -f -"
    )
