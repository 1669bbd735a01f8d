"""The boot-time node preparation script (EC2 user-data) and where it leaves its traces.

The script is packaged data (``scripts/prepare.sh``) rendered here from the spec, so the
exact bytes a node runs are unit-testable and shellcheck-able. It runs once per instance
at boot, on every node in parallel, long before sparkube connects; the ``nodes`` phase
then only reads the done-marker (exit status) and, on failure, the log tail.
"""

from __future__ import annotations

from importlib import resources

from sparkube.spec import ClusterSpec
from sparkube.templates import render

__all__ = ["render", "render_prepare_script", "script_text"]

#: Paths on a node (prefixed by ``$SPARKUBE_NODE_ROOT``, empty on real nodes).
PREPARE_LOG = "/var/log/sparkube-prepare.log"
PREPARE_MARKER = "/var/lib/sparkube/prepare.done"
#: EC2 accepts at most 16 KB of raw user-data.
USER_DATA_LIMIT = 16 * 1024


def script_text(name: str) -> str:
    """A packaged node script, unrendered."""
    return resources.files("sparkube.nodes").joinpath("scripts", name).read_text("utf-8")


def render_prepare_script(spec: ClusterSpec) -> str:
    """The user-data script that prepares a node for kubeadm (containerd, kubelet, ...).

    The cluster TTL is not handled here: the user-data wrapper (``sparkube.aws.userdata``)
    installs it first (``sparkube.nodes.ttl``: the absolute expiry time and a timer).
    """
    text = render(script_text("prepare.sh"), {"K8S_MINOR": spec.kubernetes_version})
    if len(text.encode()) > USER_DATA_LIMIT:  # pragma: no cover - guarded by a unit test
        raise ValueError("the node preparation script exceeds EC2's 16 KB user-data limit")
    return text
