"""The cluster as jobs see it: its settings (:class:`ClusterConfig`, kept in the cluster
as the ``spark/sparkube-cluster`` ConfigMap that ``up`` writes), the labels and
annotations sparkube marks its objects with, and a job's size (:class:`Resources`, and
the default that fits a job to the workers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sparkube.errors import ClusterError, InputError
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


@dataclass(frozen=True)
class Resources:
    executors: int
    executor_cores: int
    executor_memory: str  # Spark syntax: 1g, 1536m
    driver_memory: str = DRIVER_MEMORY

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


def default_resources(config: ClusterConfig) -> Resources:
    """One executor per worker, with the worker's vCPUs minus one (at least 1) and 40% of
    its memory (heap plus Spark's 384 MiB overhead), so a default job and its driver fit
    next to the cluster's own pods."""
    cores = max(1, int(config.worker_cpu) - 1)
    budget_mib = int(config.worker_memory / 2**20 * 0.4)  # heap + overhead
    heap_mib = int(min(budget_mib - OVERHEAD_MIB, budget_mib / 1.1))
    heap = max(512, heap_mib // 256 * 256)
    executor_memory = f"{heap // 1024}g" if heap % 1024 == 0 else f"{heap}m"
    return Resources(max(1, config.workers), cores, executor_memory)
