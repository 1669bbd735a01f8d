"""The boot-time node preparation script (EC2 user-data) and where it leaves its traces.

The script is packaged data (``scripts/prepare.sh``) rendered here from the spec, so the
exact bytes a node runs are unit-testable and shellcheck-able. It runs once per instance
at boot, on every node in parallel, long before sparkube connects; the ``nodes`` phase
then only reads the done-marker (exit status) and, on failure, the log tail.
"""

from __future__ import annotations

import re
from importlib import resources

from sparkube.nodes import containerd
from sparkube.spec import ClusterSpec
from sparkube.templates import render

__all__ = [
    "full_image_ref",
    "mirror_hosts",
    "prepull_image",
    "render",
    "render_prepare_script",
    "script_text",
]

#: Paths on a node (prefixed by ``$SPARKUBE_NODE_ROOT``, empty on real nodes).
PREPARE_LOG = "/var/log/sparkube-prepare.log"
PREPARE_MARKER = "/var/lib/sparkube/prepare.done"
#: EC2 accepts at most 16 KB of raw user-data.
USER_DATA_LIMIT = 16 * 1024


def script_text(name: str) -> str:
    """A packaged node script, unrendered."""
    return resources.files("sparkube.nodes").joinpath("scripts", name).read_text("utf-8")


def mirror_hosts(spec: ClusterSpec) -> dict[str, str]:
    """Registry -> the ``[host."..."]`` URL of its ``hosts.toml`` (containerd
    docs/hosts.md). A mirror URL with a path (a pull-through cache's prefix, e.g.
    ``https://harbor.example.com/dockerhub-proxy``) is the mirror's API root: the host
    URL is ``/v2`` + that path, with ``override_path = true``, so that ``library/nginx``
    is asked for at ``/v2/dockerhub-proxy/library/nginx/...``."""
    out = {}
    for registry, url in spec.registry_mirrors.items():
        scheme_host, _, path = url.removeprefix("https://").partition("/")
        path = path.strip("/")
        if path and not (path == "v2" or path.startswith("v2/")):
            path = f"v2/{path}"
        out[registry] = f"https://{scheme_host}" + (f"/{path}" if path else "")
    return out


def full_image_ref(image: str) -> str:
    """An image reference as containerd's ``ctr`` wants it (no Docker Hub shorthand):
    ``apache/spark:4`` -> ``docker.io/apache/spark:4``, ``busybox`` ->
    ``docker.io/library/busybox``."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if rest else f"docker.io/library/{image}"


def prepull_image(spec: ClusterSpec) -> str:
    """The image workers pull while the control plane initialises: the cluster's Spark
    image (none when its reference cannot be written into the script, e.g. a digest)."""
    ref = full_image_ref(spec.image)
    return ref if re.fullmatch(r"[A-Za-z0-9._/:-]+", ref) else ""


def render_prepare_script(spec: ClusterSpec) -> str:
    """The user-data script that prepares a node for kubeadm (containerd, kubelet, ...).

    The cluster TTL is not handled here: the user-data wrapper (``sparkube.aws.userdata``)
    installs it first (``sparkube.nodes.ttl``: the absolute expiry time and a timer).
    containerd comes from where :func:`sparkube.nodes.containerd.source` says.
    """
    values = {
        "K8S_MINOR": spec.kubernetes_version,
        "K8S_APT": spec.kubernetes_apt_url,
        "REGISTRY_MIRRORS": "+".join(
            f"{registry}/{host}" for registry, host in mirror_hosts(spec).items()
        ),
        "PREPULL_IMAGE": prepull_image(spec),
        "CONTAINERD_SOURCE": containerd.source(spec),
        "CONTAINERD_MIN_MAJOR": str(containerd.min_major(spec.kubernetes_version)),
        "CONTAINERD_VERSION": containerd.RELEASE_VERSION,
        "CONTAINERD_URL": spec.containerd_release_url,
        "CONTAINERD_SHA256_AMD64": containerd.RELEASE_SHA256["amd64"],
        "CONTAINERD_SHA256_ARM64": containerd.RELEASE_SHA256["arm64"],
    }
    text = render(script_text("prepare.sh"), values)
    if len(text.encode()) > USER_DATA_LIMIT:  # pragma: no cover - guarded by a unit test
        raise ValueError("the node preparation script exceeds EC2's 16 KB user-data limit")
    return text
