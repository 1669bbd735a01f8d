"""The cluster as jobs see it: its settings (:class:`ClusterConfig`, kept in the cluster
as the ``spark/sparkube-cluster`` ConfigMap that ``up`` writes), the labels and
annotations sparkube marks its objects with, and a job's size (:class:`Resources`, and
the default that fits a job to the workers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sparkube.errors import ClusterError, InputError
from sparkube.spark.diagnose import parse_cpu
from sparkube.spark.image import SPARK_IMAGE
from sparkube.spark.rbac import SPARK_NAMESPACE

CLUSTER_CONFIG = "sparkube-cluster"
JOB_LABEL = "sparkube.io/job"
ROLE_LABEL = "sparkube.io/role"
MANAGED_BY = {"app.kubernetes.io/managed-by": "sparkube"}
ANNOTATION_PREFIX = "sparkube.io/"
OVERHEAD_MIB = 384  # Spark's minimum memory overhead per pod
DRIVER_MEMORY = "1g"
DRIVER_CPU = "500m"

Json = dict[str, Any]


@dataclass(frozen=True)
class ClusterConfig:
    """What jobs need to know about the cluster; kept in the cluster itself (ConfigMap
    ``spark/sparkube-cluster``, written by ``up``), so any machine with the kubeconfig
    submits the same way."""

    cluster: str
    bucket: str
    region: str
    image: str = SPARK_IMAGE.ref
    spark_version: str = SPARK_IMAGE.spark_version
    hadoop_version: str = SPARK_IMAGE.hadoop_version
    python_version: str = SPARK_IMAGE.python_version
    worker_type: str = ""
    worker_cpu: float = 2.0
    worker_memory: int = 4 * 2**30
    workers: int = 1
    #: The workers' group's maximum (0: not known, a cluster from before it was kept).
    max_workers: int = 0
    #: Prices recorded by ``up`` from the same source as ``plan`` (0: unknown).
    control_plane_type: str = ""
    control_plane_usd_per_hour: float = 0.0
    worker_usd_per_hour: float = 0.0
    spot: bool = False

    @property
    def usd_per_hour(self) -> float:
        return self.control_plane_usd_per_hour + self.workers * self.worker_usd_per_hour

    def to_data(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> ClusterConfig:
        try:
            return cls(
                cluster=data["cluster"],
                bucket=data["bucket"],
                region=data["region"],
                image=data.get("image", SPARK_IMAGE.ref),
                spark_version=data.get("spark_version", SPARK_IMAGE.spark_version),
                hadoop_version=data.get("hadoop_version", SPARK_IMAGE.hadoop_version),
                python_version=data.get("python_version", SPARK_IMAGE.python_version),
                worker_type=data.get("worker_type", ""),
                worker_cpu=float(data.get("worker_cpu", 2)),
                worker_memory=int(data.get("worker_memory", 4 * 2**30)),
                workers=int(data.get("workers", 1)),
                max_workers=int(data.get("max_workers", 0)),
                control_plane_type=data.get("control_plane_type", ""),
                control_plane_usd_per_hour=float(data.get("control_plane_usd_per_hour", 0)),
                worker_usd_per_hour=float(data.get("worker_usd_per_hour", 0)),
                spot=data.get("spot", "False") == "True",
            )
        except (KeyError, ValueError) as exc:
            raise ClusterError(
                f"The cluster's {SPARK_NAMESPACE}/{CLUSTER_CONFIG} ConfigMap is damaged ({exc}); "
                "run sparkube up to rewrite it."
            ) from None


def cluster_config_manifest(config: ClusterConfig) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CLUSTER_CONFIG,
            "namespace": SPARK_NAMESPACE,
            "labels": dict(MANAGED_BY),
        },
        "data": config.to_data(),
    }


#: A job's executors under dynamic allocation never go below this: admission finds room
#: for the driver and this many at once, so an admitted job always makes progress.
DYNAMIC_MIN_EXECUTORS = 1


@dataclass(frozen=True)
class Dynamic:
    """Spark's dynamic allocation for a job: between ``minimum`` and ``maximum``
    executors (None: Spark's own, no limit), as its tasks ask."""

    minimum: int = DYNAMIC_MIN_EXECUTORS
    maximum: int | None = None

    def describe(self) -> str:
        return f"{self.minimum}-{self.maximum if self.maximum is not None else 'any'}"


@dataclass(frozen=True)
class Resources:
    """A job's size. ``executors``: how many executors it starts with, all it has when
    ``dynamic`` is None (``--executors N``: a fixed count), else Spark adds and removes
    executors within ``dynamic``'s range."""

    executors: int
    executor_cores: int
    executor_memory: str  # Spark syntax: 1g, 1536m
    driver_memory: str = DRIVER_MEMORY
    dynamic: Dynamic | None = None

    @property
    def min_executors(self) -> int:
        """The executors the job cannot start without (admission's minimum)."""
        return self.executors if self.dynamic is None else self.dynamic.minimum

    def describe(self) -> str:
        """``3 executors × 2 cores, 4g`` (a fixed count) or ``1-4 executors × 2 cores,
        4g, dynamic from 2``."""
        plural = "s" if self.executor_cores != 1 else ""
        size = f"× {self.executor_cores} core{plural}, {self.executor_memory}"
        if self.dynamic is None:
            return f"{self.executors} executor{'s' if self.executors != 1 else ''} {size}"
        return f"{self.dynamic.describe()} executors {size}, dynamic from {self.executors}"

    @staticmethod
    def memory_mib(text: str) -> int:
        m = re.fullmatch(r"(\d+)([mMgG])?", text.strip())
        if not m:
            raise InputError(f"Memory {text!r} is not like 1g or 1536m; pass e.g. 2g.")
        n = int(m.group(1))
        return n * 1024 if (m.group(2) or "m").lower() == "g" else n

    def pod_memory_mib(self, heap: str) -> int:
        mib = self.memory_mib(heap)
        return mib + max(OVERHEAD_MIB, math.ceil(mib * 0.1))


def _heap_for(pod_mib: int) -> int:
    """The largest heap (a multiple of 256 MiB, at least 512) whose pod (heap plus
    Spark's overhead) fits in ``pod_mib``."""
    heap = int(min(pod_mib - OVERHEAD_MIB, pod_mib / 1.1))
    return max(512, heap // 256 * 256)


def _spark_memory(mib: int) -> str:
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"


#: The smallest executor and driver a default job is given (512 MiB heap: 896 MiB pods).
SMALLEST_POD_MIB = 512 + OVERHEAD_MIB


def default_resources(config: ClusterConfig, rooms: Sequence[tuple[float, int]] = ()) -> Resources:
    """One executor per worker, with the worker's vCPUs minus one (at least 1) and 40% of
    its memory (heap plus Spark's 384 MiB overhead).

    ``rooms``: what each schedulable worker has for jobs now (CPU, bytes: allocatable
    less the pods that are not jobs', e.g. Flannel, CoreDNS, the History Server). Given,
    the defaults are cut to fit it whole: the driver shares the roomiest worker with one
    executor, every other executor has a worker of its own; workers too small for an
    executor are left out, and the driver gets 512m instead of 1g when 1g would not
    leave room for one. So a default job fits even a one-worker cluster."""
    cores = max(1, int(config.worker_cpu) - 1)
    budget_mib = int(config.worker_memory / 2**20 * 0.4)  # heap + overhead
    heap = _heap_for(budget_mib)
    base = Resources(max(1, config.workers), cores, _spark_memory(heap))
    if not rooms:
        return base
    mib = sorted(
        (
            (cpu, memory // 2**20)
            for cpu, memory in rooms
            if cpu >= 1 and memory >= SMALLEST_POD_MIB * 2**20  # room for an executor
        ),
        key=lambda r: -r[1],
    )
    if not mib:
        return base
    driver_cpu = parse_cpu(DRIVER_CPU)
    driver_mib = base.pod_memory_mib(DRIVER_MEMORY)
    driver_memory = DRIVER_MEMORY
    if mib[0][1] - driver_mib < SMALLEST_POD_MIB:
        driver_memory, driver_mib = "512m", SMALLEST_POD_MIB
    executor_mib = base.pod_memory_mib(base.executor_memory)
    for count in range(len(mib), 0, -1):
        first, others = mib[0], mib[1:count]
        pod_mib = min([executor_mib, first[1] - driver_mib, *(m for _, m in others)])
        pod_cpu = min([cores, int(first[0] - driver_cpu), *(int(c) for c, _ in others)])
        if pod_mib >= SMALLEST_POD_MIB and pod_cpu >= 1:
            heap = _heap_for(pod_mib)
            return Resources(count, pod_cpu, _spark_memory(heap), driver_memory)
    return base


def executors_at_most(
    config: ClusterConfig, res: Resources, rooms: Sequence[tuple[float, int]] = ()
) -> int:
    """How many executors of ``res``'s size the workers could hold at once beside the
    driver, with the workers' group at its maximum (``config.max_workers``): what fits
    on each worker there is (``rooms``: CPU and bytes each has for jobs; the driver on
    the roomiest), plus what fits on an empty one like the roomiest for each worker the
    group may still add. At least ``res.executors``. Without ``rooms``: one executor per
    worker, as the defaults size them."""
    most_workers = max(config.max_workers, config.workers, 1)
    if not rooms:
        return max(res.executors, most_workers)
    cpu = float(res.executor_cores)
    pod_mib = res.pod_memory_mib(res.executor_memory)
    driver_cpu, driver_mib = parse_cpu(DRIVER_CPU), res.pod_memory_mib(res.driver_memory)

    def fits(free_cpu: float, free_mib: float) -> int:
        if free_cpu < cpu - 1e-9 or free_mib < pod_mib:
            return 0
        return int(min((free_cpu + 1e-9) // cpu, free_mib // pod_mib))

    ordered = sorted(((c, m / 2**20) for c, m in rooms), key=lambda r: (-r[1], -r[0]))
    first, others = ordered[0], ordered[1:]
    total = fits(first[0] - driver_cpu, first[1] - driver_mib)
    total += sum(fits(c, m) for c, m in others)
    total += max(0, most_workers - len(ordered)) * fits(*first)
    return max(res.executors, total)
