"""The ``addons`` phase: what Spark needs in the cluster (namespace, account, RBAC).

Applied server-side with the admin kubeconfig saved by the ``kubernetes`` phase, so it is
idempotent: re-running ``up`` re-applies the same objects and changes nothing.
"""

from __future__ import annotations

from typing import Any

from sparkube.env import Environment
from sparkube.errors import ClusterError
from sparkube.kube.apply import apply_manifest
from sparkube.kube.client import client_from_kubeconfig
from sparkube.phases import Phase, PhaseContext, register
from sparkube.progress import Reporter
from sparkube.spark.cluster import CLUSTER_CONFIG, ClusterConfig, cluster_config_manifest
from sparkube.spark.diagnose import parse_cpu, parse_memory
from sparkube.spark.rbac import SPARK_NAMESPACE, render_spark_rbac

ADDONS = "addons"


def cluster_config_from_nodes(
    client: Any, *, cluster: str, bucket: str, region: str, worker_type: str
) -> ClusterConfig:
    """The jobs' view of the cluster: bucket, region, image, and the workers' size as
    the nodes report it (allocatable of the smallest schedulable node)."""
    from lightkube.resources.core_v1 import Node

    sizes = []
    for node in client.list(Node):
        taints = (node.spec.taints if node.spec else None) or []
        if any(t.effect == "NoSchedule" for t in taints):
            continue
        alloc = (node.status.allocatable if node.status else None) or {}
        sizes.append((parse_cpu(alloc.get("cpu", "0")), parse_memory(alloc.get("memory", "0"))))
    cpu, memory = min(sizes) if sizes else (2.0, 4 * 2**30)
    return ClusterConfig(
        cluster=cluster,
        bucket=bucket,
        region=region,
        worker_type=worker_type,
        worker_cpu=cpu,
        worker_memory=memory,
        workers=max(1, len(sizes)),
    )


def apply_cluster_config(client: Any, config: ClusterConfig) -> ClusterConfig:
    """Write the jobs' settings. The image (and its versions) recorded by the first ``up``
    is kept, so a cluster resumed by a newer sparkube runs every job on the same Spark."""
    import dataclasses

    from lightkube import codecs
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import ConfigMap

    try:
        existing = client.get(ConfigMap, CLUSTER_CONFIG, namespace=SPARK_NAMESPACE)
    except ApiError as exc:
        if exc.status.code != 404:
            raise
    else:
        data = existing.data or {}
        if data.get("image"):
            config = dataclasses.replace(
                config,
                image=data["image"],
                spark_version=data.get("spark_version", config.spark_version),
                hadoop_version=data.get("hadoop_version", config.hadoop_version),
                python_version=data.get("python_version", config.python_version),
            )
    client.apply(
        codecs.from_dict(cluster_config_manifest(config)), field_manager="sparkube", force=True
    )
    return config


def run_addons_phase(
    *,
    env: Environment,
    cluster: str,
    reporter: Reporter,
    bucket: str | None = None,
    region: str = "",
    worker_type: str = "",
) -> str:
    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if not kubeconfig.is_file():
        raise ClusterError(
            f"Cluster '{cluster}' has no kubeconfig in {kubeconfig.parent}; run sparkube up "
            "to complete the kubernetes phase first."
        )
    client = client_from_kubeconfig(kubeconfig)
    reporter.step(ADDONS, "spark", f"applying namespace {SPARK_NAMESPACE} and its RBAC")
    applied = apply_manifest(client, render_spark_rbac())
    reporter.step(ADDONS, "spark", f"{len(applied)} objects applied")
    if bucket:
        config = cluster_config_from_nodes(
            client, cluster=cluster, bucket=bucket, region=region, worker_type=worker_type
        )
        config = apply_cluster_config(client, config)
        reporter.step(ADDONS, "spark", f"job settings for {config.image}")
    return f"spark namespace, service account, namespaced Role ({len(applied)} objects)"


def _run(ctx: PhaseContext) -> str:
    info = ctx.cluster
    return run_addons_phase(
        env=ctx.env,
        cluster=ctx.spec.name,
        reporter=ctx.reporter,
        bucket=info.bucket,
        region=info.region,
        worker_type=ctx.spec.instance_type,
    )


register(Phase(ADDONS, "Spark namespace, service account and RBAC", _run))
