"""The pod network add-on: Flannel, from the manifest bundled in ``sparkube.manifests``.

Flannel (not Calico) because it needs nothing beyond the pod CIDR kubeadm already knows,
runs as one small DaemonSet, and its VXLAN traffic (UDP 8472) stays inside the cluster's
security group; sparkube's jobs need no NetworkPolicy. The manifest is pinned and
shipped in the package: ``sparkube up`` never fetches it from the internet.
"""

from __future__ import annotations

from sparkube.manifests import render_manifest
from sparkube.spec import ClusterSpec

FLANNEL_VERSION = "v0.28.9"


def render_cni_manifest(spec: ClusterSpec) -> str:
    if spec.cni != "flannel":  # pragma: no cover - the spec allows only flannel today
        raise ValueError(f"unsupported CNI {spec.cni}")
    return render_manifest("flannel", {"POD_CIDR": spec.pod_cidr})
