"""``sparkube manifests``: every manifest ``up`` applies, for review or GitOps."""

from __future__ import annotations

import typer

from sparkube.cli.app import app
from sparkube.cli.options import ClusterOption, RegionOption, load_spec
from sparkube.cli.ui import context


@app.command(rich_help_panel="Cluster")
def manifests(
    ctx: typer.Context, cluster: ClusterOption = None, region: RegionOption = None
) -> None:
    """Print every Kubernetes manifest that up applies, as one YAML stream.

    The pod network (Flannel, pinned), with spot workers aws-node-termination-handler,
    Spark's namespace, service account and namespaced Role, sparkube's controller,
    metrics-server, kube-opex-analytics and the Spark History Server.
    Nothing is contacted (the bucket name and hourly rate are shown as up would fill
    them in); the output can be reviewed or kept in Git.

    Example: [bold]sparkube manifests > cluster.yaml[/bold]
    """
    from sparkube.kube.termination import termination_documents
    from sparkube.nodes.cni import FLANNEL_VERSION, render_cni_manifest
    from sparkube.spark.rbac import render_spark_rbac

    app_ctx = context(ctx)
    spec = load_spec(env=app_ctx.env, flags={"name": cluster, "region": region})
    documents = [
        (
            f"pod network: Flannel {FLANNEL_VERSION} (pod CIDR {spec.pod_cidr})",
            render_cni_manifest(spec),
        ),
        *termination_documents(spec.spot).items(),
        ("Spark: namespace, service account, Role and RoleBinding", render_spark_rbac()),
    ]
    # Monitoring, with what only the cluster knows shown as placeholders for review:
    # the bucket, and the hourly rate from the bundled price table.
    from sparkube.aws.pricing import bundled_price
    from sparkube.monitoring.addons import all_documents
    from sparkube.spark.config import ClusterConfig
    from sparkube.spark.podspec import Endpoints

    region = spec.region or "us-east-1"
    config = ClusterConfig(
        cluster=spec.name,
        bucket=f"sparkube-{spec.name}-{region}-ACCOUNTHASH",
        region=region,
        workers=spec.workers,
        control_plane_usd_per_hour=bundled_price(region, spec.control_plane_type) or 0.0,
        worker_usd_per_hour=bundled_price(region, spec.instance_type) or 0.0,
    )
    from sparkube.controller import bundle, deploy

    code = bundle.for_review(
        bundle.target_for(spec.control_plane_type), environ=app_ctx.env.environ
    )
    documents.append(
        (
            f"sparkube controller in {deploy.NAMESPACE} ({bundle.IMAGE}; its code from the "
            "cluster's bucket, checked by SHA-256)",
            deploy.render(
                code, cluster=spec.name, bucket=config.bucket, region=region, endpoints=Endpoints()
            ),
        )
    )
    documents += list(all_documents(config, Endpoints()).items())
    for title, text in documents:
        app_ctx.ui.out.print(f"# --- {title}\n---", markup=False, highlight=False)
        app_ctx.ui.out.print(text.rstrip("\n"), markup=False, highlight=False)
