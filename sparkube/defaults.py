"""The defaults of the cluster spec as plain values: :mod:`sparkube.spec` builds its
model from them, and ``--help`` shows them without loading the model (pydantic)."""

from __future__ import annotations

from typing import Final

DEFAULT_CLUSTER = "sparkube"
DEFAULT_WORKERS = 2
MAX_WORKERS = 200
#: Minutes a worker above the group's minimum may idle before the controller removes it.
DEFAULT_IDLE_MINUTES = 10
DEFAULT_INSTANCE_TYPE = "t3.medium"
DEFAULT_CONTROL_PLANE_TYPE = "t3.medium"
DEFAULT_ROOT_VOLUME_GB = 40
MIN_ROOT_VOLUME_GB = 20
MAX_ROOT_VOLUME_GB = 2000
#: Burstable types (t2, t3, t3a, t4g) launch in this CPU credit mode: the hourly price is
#: the bill. ``unlimited`` (AWS's default for t3, t3a, t4g) can bill surplus credits.
DEFAULT_CPU_CREDITS: Final = "unlimited"
#: Where nodes download containerd's release tarball (``containerd: release``): GitHub's
#: release download path; a mirror must keep its layout (``vX.Y.Z/containerd-X.Y.Z-...``).
DEFAULT_CONTAINERD_RELEASE_URL: Final = "https://github.com/containerd/containerd/releases/download"
