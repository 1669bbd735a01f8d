"""Where a node's containerd comes from: the distribution's package, or containerd's own
release tarball at a pinned version and checksum.

Why it matters: the kubelet asks the runtime for its cgroup driver (CRI ``RuntimeConfig``,
KEP-4033), which no containerd 1.x implements. The Kubernetes 1.35 announcement called
1.35 the last release to support containerd 1.x; the kubelet's fallback to its own
``cgroupDriver`` was then kept through 1.37 (its kubeadm only warns) and goes in 1.38
(kubernetes/kubernetes#139121; read in the v1.37.2 and v1.38.0-beta.0 sources).
containerd 1.7 reached its end of life in September 2026; 2.3 is containerd's long-term
release (to April 2028).

What a distribution installs moves under sparkube: Ubuntu 24.04's ``noble`` pocket has
containerd 1.7.12, ``noble-updates`` now 2.2.1. So ``auto`` keeps the distribution's
package up to Kubernetes 1.36 (security updates come with the OS) and, from 1.37 on,
installs the release pinned here, whatever pockets the node's apt sees. ``distro`` and
``release`` force one source; with ``distro`` the preparation script refuses a containerd
older than the Kubernetes version needs (:func:`min_major`), on the node, since only the
node knows what its apt installed.

The release comes from ``containerd_release_url`` (default: GitHub's release download
path; a mirror keeps the same layout) and must match the SHA-256 pinned here, which is
the one published with the release (its ``.sha256sum`` files), whatever the location.
runc comes from the distribution (its ``runc`` package); the CNI plugins come with
``kubernetes-cni`` as before. The systemd unit is written by the preparation script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from sparkube.defaults import DEFAULT_CONTAINERD_RELEASE_URL

if TYPE_CHECKING:
    from sparkube.spec import ClusterSpec

__all__ = [
    "DEFAULT_CONTAINERD_RELEASE_URL",
    "FIRST_MINOR_WITHOUT_CONTAINERD_1",
    "RELEASE_SHA256",
    "RELEASE_VERSION",
    "Source",
    "min_major",
    "release_url",
    "source",
]

Source = Literal["distro", "release"]

#: The containerd release nodes install with ``release`` (and ``auto`` from Kubernetes
#: 1.37): 2.3.4 (2026-08-12), of the 2.3 long-term line.
RELEASE_VERSION = "2.3.4"
#: SHA-256 of ``containerd-2.3.4-linux-{arch}.tar.gz`` as published with the release
#: (the same values in kubespray's checksums.yml of 2026-08 and in other projects that
#: pin this release). Architectures sparkube launches (x86_64 and Graviton).
RELEASE_SHA256: dict[str, str] = {
    "amd64": "9d68969855fbf676cdb8ed758e420fb048d61f984f61de3e53eddfebe484d168",
    "arm64": "a985fbb7e18fc0362d31a055338f5d7b0e087a3e27f14c70d1c5965399a29f95",
}
#: From this Kubernetes minor on, sparkube runs containerd 2.x only: ``auto`` installs
#: the release and the node refuses an older containerd.
FIRST_MINOR_WITHOUT_CONTAINERD_1 = "1.37"


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


def needs_containerd_2(kubernetes_version: str) -> bool:
    return _minor(kubernetes_version) >= _minor(FIRST_MINOR_WITHOUT_CONTAINERD_1)


def min_major(kubernetes_version: str) -> int:
    """The oldest containerd major the nodes of this Kubernetes minor may run."""
    return 2 if needs_containerd_2(kubernetes_version) else 1


def source(spec: ClusterSpec) -> Source:
    """Where this cluster's nodes get containerd (``auto`` resolved)."""
    if spec.containerd == "auto":
        return "release" if needs_containerd_2(spec.kubernetes_version) else "distro"
    return spec.containerd


def release_url(base: str, arch: str, version: str = RELEASE_VERSION) -> str:
    """The tarball's address under a release location laid out as GitHub's."""
    return f"{base.rstrip('/')}/v{version}/containerd-{version}-linux-{arch}.tar.gz"
