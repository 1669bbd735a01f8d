"""The ``addons`` phase: what Spark needs in the cluster (namespace, account, RBAC).

Applied server-side with the admin kubeconfig saved by the ``kubernetes`` phase, so it is
idempotent: re-running ``up`` re-applies the same objects and changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from sparkube.defaults import DEFAULT_IDLE_MINUTES
from sparkube.env import Environment
from sparkube.errors import ClusterError, ConfigError
from sparkube.kube.apply import apply_manifest
from sparkube.kube.client import client_from_kubeconfig
from sparkube.kube.termination import NTH_NAME
from sparkube.phases import Phase, PhaseContext, register
from sparkube.progress import Reporter
from sparkube.spark.config import CLUSTER_CONFIG, ClusterConfig, cluster_config_manifest
from sparkube.spark.diagnose import schedulable_capacity
from sparkube.spark.image import SPARK_IMAGE
from sparkube.spark.rbac import SPARK_NAMESPACE, render_spark_rbac

ADDONS = "addons"
log = logging.getLogger(__name__)


def cluster_config_from_nodes(
    client: Any,
    *,
    cluster: str,
    bucket: str,
    region: str,
    worker_type: str,
    control_plane_type: str = "",
    prices: tuple[float, float] = (0.0, 0.0),
    spot: bool = False,
    image: str = SPARK_IMAGE.ref,
    max_workers: int = 0,
) -> ClusterConfig:
    """The jobs' view of the cluster: bucket, region, image, and the workers' size as
    the nodes report it (allocatable of the smallest schedulable node)."""
    from lightkube.resources.core_v1 import Node

    sizes = [(n.cpu, n.memory) for n in schedulable_capacity(client.list(Node))]
    cpu, memory = min(sizes) if sizes else (2.0, 4 * 2**30)
    return ClusterConfig(
        cluster=cluster,
        bucket=bucket,
        region=region,
        worker_type=worker_type,
        worker_cpu=cpu,
        worker_memory=memory,
        workers=max(1, len(sizes)),
        max_workers=max_workers,
        control_plane_type=control_plane_type,
        control_plane_usd_per_hour=prices[0],
        worker_usd_per_hour=prices[1],
        spot=spot,
        image=image,
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
    control_plane_type: str = "",
    prices: tuple[float, float] = (0.0, 0.0),
    spot: bool = False,
    image: str = SPARK_IMAGE.ref,
    vpc_cidrs: Sequence[str] = (),
    s3: Any = None,
    worker_group: str | None = None,
    idle_minutes: int = DEFAULT_IDLE_MINUTES,
    max_workers: int = 0,
) -> str:
    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if not kubeconfig.is_file():
        raise ClusterError(
            f"Cluster '{cluster}' has no kubeconfig in {kubeconfig.parent}; run sparkube up "
            "to complete the kubernetes phase first."
        )
    client = client_from_kubeconfig(kubeconfig)
    skip = frozenset(
        p.strip() for p in env.environ.get("SPARKUBE_SKIP_ADDONS", "").split(",") if p.strip()
    )
    approver: list[str] = []
    if vpc_cidrs:  # first: nodes that join or renew from now on get serving certificates
        from sparkube.kube.approver import APPROVER_VERSION, apply_csr_approver

        reporter.step(ADDONS, "approver", f"kubelet-csr-approver {APPROVER_VERSION}")
        approver = apply_csr_approver(client, vpc_cidrs)
    handler: list[str] = []
    if spot and NTH_NAME not in skip:  # before any job: a spot worker may go at any time
        from sparkube.kube.termination import NTH_VERSION, apply_termination_handler

        reporter.step(ADDONS, "spot", f"{NTH_NAME} {NTH_VERSION} on the spot workers")
        handler = apply_termination_handler(client)
    reporter.step(ADDONS, "spark", f"applying namespace {SPARK_NAMESPACE} and its RBAC")
    applied = apply_manifest(client, render_spark_rbac())
    reporter.step(ADDONS, "spark", f"{len(applied)} objects applied")
    if bucket:
        config = cluster_config_from_nodes(
            client, cluster=cluster, bucket=bucket, region=region, worker_type=worker_type,
            control_plane_type=control_plane_type, prices=prices, spot=spot, image=image,
            max_workers=max_workers,
        )  # fmt: skip
        config = apply_cluster_config(client, config)
        reporter.step(ADDONS, "spark", f"job settings for {config.image}")
        from sparkube.monitoring.addons import apply_monitoring
        from sparkube.spark.podspec import Endpoints

        controller: list[str] = []
        if s3 is not None and CONTROLLER not in skip:
            controller = deploy_controller(
                client, s3, config, control_plane_type=control_plane_type or worker_type,
                env=env, reporter=reporter, worker_group=worker_group, idle_minutes=idle_minutes,
            )  # fmt: skip
        if s3 is not None:
            stock_jars(s3, bucket, env=env, reporter=reporter)

        reporter.step(ADDONS, "monitoring", "metrics-server, kube-opex-analytics, history server")
        monitoring = apply_monitoring(
            client, config, Endpoints.from_environ(env.environ), skip=skip
        )
        reporter.step(ADDONS, "monitoring", f"{len(monitoring)} objects applied")
        return (
            ("kubelet-csr-approver, " if approver else "")
            + (f"{NTH_NAME}, " if handler else "")
            + "spark RBAC, "
            + ("sparkube controller, " if controller else "")
            + "metrics-server, kube-opex-analytics, history server "
            f"({len(approver) + len(handler) + len(applied) + len(controller) + len(monitoring)}"
            " objects)"
        )
    return (
        f"{NTH_NAME}, " if handler else ""
    ) + f"spark namespace, service account, namespaced Role ({len(handler) + len(applied)} objects)"


#: The ``SPARKUBE_SKIP_ADDONS`` name of the controller (sparkube.controller).
CONTROLLER = "sparkube-controller"


def deploy_controller(
    client: Any,
    s3: Any,
    config: ClusterConfig,
    *,
    control_plane_type: str,
    env: Environment,
    reporter: Reporter,
    worker_group: str | None = None,
    idle_minutes: int = DEFAULT_IDLE_MINUTES,
) -> list[str]:
    """sparkube's controller on the control plane, its code from the cluster's bucket
    (sparkube.controller.bundle, sparkube.controller.deploy); with a worker group, it
    grows and shrinks it (a new worker offers what today's workers do)."""
    from sparkube.aws.provider import NODE_AWS_ENDPOINT_VAR
    from sparkube.controller import deploy
    from sparkube.spark.podspec import Endpoints

    scaling = None
    if worker_group:
        scaling = deploy.Scaling(
            group=worker_group,
            cpu=config.worker_cpu,
            memory=config.worker_memory,
            idle_minutes=idle_minutes,
            aws_endpoint=env.environ.get(NODE_AWS_ENDPOINT_VAR) or None,
        )

    reporter.step(ADDONS, "controller", f"sparkube controller in {deploy.NAMESPACE}")
    applied, said = deploy.deploy(
        client, s3, cluster=config.cluster, bucket=config.bucket, region=config.region,
        control_plane_type=control_plane_type, endpoints=Endpoints.from_environ(env.environ),
        environ=env.environ, scaling=scaling,
        progress=lambda msg: reporter.step(ADDONS, "controller", msg),
    )  # fmt: skip
    reporter.step(ADDONS, "controller", said)
    return applied


def stock_jars(s3: Any, bucket: str, *, env: Environment, reporter: Reporter) -> None:
    """The S3 jars into the cluster's bucket, once (sparkube.spark.jars). A failure is
    reported, not fatal: jobs then fetch the jars from the Maven repository."""
    from sparkube.spark import jarfetch, jars
    from sparkube.spark.podspec import Endpoints

    try:
        done = jars.ensure_in_bucket(
            s3, bucket, repository=Endpoints.from_environ(env.environ).jars,
            cache=jars.cache_dir(env.environ),
            progress=lambda msg: reporter.step(ADDONS, "jars", msg),
        )  # fmt: skip
    except (jarfetch.JarError, OSError) as exc:
        log.warning("S3 jars not put in the bucket: %s", exc)
        reporter.step(ADDONS, "jars", f"not in the bucket ({exc}); jobs fetch them from Maven")
        return
    reporter.step(
        ADDONS, "jars",
        f"{len(SPARK_IMAGE.s3_jars)} checked jars in s3://{bucket}/{jars.BUCKET_PREFIX} "
        f"({done.uploaded} uploaded, {done.downloaded} downloaded, {done.seconds:.1f} s)",
    )  # fmt: skip


def _prices(ctx: PhaseContext) -> tuple[float, float]:
    """(control plane, one worker) USD per hour now, volume and address included, from
    the one cost model over the cluster's instances (the rate kube-opex-analytics gets)."""
    from sparkube.cost.collect import gather, role_rates

    info = ctx.cluster
    try:
        return role_rates(gather(ctx.provider.clients, info.name, info.region, info.bucket))
    except Exception as exc:  # prices are informative: never fail the phase for them
        log.warning("no hourly rate for kube-opex-analytics: %s", exc)
        return 0.0, 0.0


#: Seconds ``up`` keeps retrying the addons while the API server cannot be reached
#: (a control plane restarting, a network blip); ``SPARKUBE_API_WAIT`` overrides.
API_WAIT = 180.0
API_WAIT_VAR = "SPARKUBE_API_WAIT"


def _api_wait(env: Environment) -> float:
    raw = env.environ.get(API_WAIT_VAR, "").strip()
    if not raw:
        return API_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigError(f"{API_WAIT_VAR}={raw!r} is not a number of seconds; set it to e.g. 180.")
    return seconds


def _run(ctx: PhaseContext) -> str:
    """The addons, applied again from the start while the API server cannot be reached
    (every apply is server-side and idempotent), up to ``SPARKUBE_API_WAIT`` seconds."""
    import httpx2

    info = ctx.cluster
    prices = _prices(ctx)
    cidrs = ctx.provider.vpc_cidrs(info.vpc_id) if info.vpc_id else ()
    wait = _api_wait(ctx.env)
    deadline = time.monotonic() + wait
    delay = 1.0
    while True:
        try:
            return run_addons_phase(
                env=ctx.env,
                cluster=ctx.spec.name,
                reporter=ctx.reporter,
                bucket=info.bucket,
                region=info.region,
                worker_type=ctx.spec.instance_type,
                control_plane_type=ctx.spec.control_plane_type,
                prices=prices,
                spot=ctx.spec.spot,
                image=ctx.spec.image,
                vpc_cidrs=cidrs,
                s3=ctx.provider.clients.s3,
                worker_group=info.worker_group.name if info.worker_group else None,
                idle_minutes=ctx.spec.idle_minutes,
                max_workers=ctx.spec.max_count,
            )
        except httpx2.TransportError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClusterError(
                    f"The API server of cluster {ctx.spec.name} could not be reached for "
                    f"{wait:.0f} s ({type(exc).__name__}: {exc}); if its control plane is "
                    "restarting, wait a minute and run 'sparkube up' again to finish the "
                    "addons."
                ) from None
            ctx.reporter.step(
                ADDONS, "api", f"API server unreachable ({type(exc).__name__}); retrying"
            )
            time.sleep(min(delay, left))
            delay = min(delay * 2, 10.0)


register(Phase(ADDONS, "Spark namespace, service account and RBAC", _run))
