"""The ``addons`` phase: what Spark needs in the cluster (namespace, account, RBAC).

Applied server-side with the admin kubeconfig saved by the ``kubernetes`` phase, so it is
idempotent: re-running ``up`` re-applies the same objects and changes nothing.
"""

from __future__ import annotations

from sparkube.env import Environment
from sparkube.errors import ClusterError
from sparkube.kube.apply import apply_manifest
from sparkube.kube.client import client_from_kubeconfig
from sparkube.phases import Phase, PhaseContext, register
from sparkube.progress import Reporter
from sparkube.spark.rbac import SPARK_NAMESPACE, render_spark_rbac

ADDONS = "addons"


def run_addons_phase(*, env: Environment, cluster: str, reporter: Reporter) -> str:
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
    return f"spark namespace, service account, namespaced Role ({len(applied)} objects)"


def _run(ctx: PhaseContext) -> str:
    return run_addons_phase(env=ctx.env, cluster=ctx.spec.name, reporter=ctx.reporter)


register(Phase(ADDONS, "Spark namespace, service account and RBAC", _run))
