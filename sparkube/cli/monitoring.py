"""Commands that show what the cluster uses and costs: ``usage``, ``dashboard``, ``spark-ui``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sparkube.cli.app import app
from sparkube.cli.options import (
    ClusterOption,
    OutputOption,
    RegionOption,
    check_output,
    load_spec,
)
from sparkube.cli.ui import context
from sparkube.errors import UsageError

if TYPE_CHECKING:
    from sparkube.monitoring.tunnel import Target
    from sparkube.spark.cluster import ClusterJobs

PANEL = "Monitoring"
NoBrowserOption = Annotated[
    bool, typer.Option("--no-browser", help="Print the URL, do not open a browser.")
]


def _port_option(default: int) -> object:
    return typer.Option(
        "--port", help=f"Local port. Default: {default}, or a free one if taken.",
        show_default=False,
    )  # fmt: skip


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f}"


@app.command(rich_help_panel=PANEL)
def usage(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="Jobs that ran in this window (e.g. 1h, 30m, 2d).")
    ] = "24h",
    output: OutputOption = "text",
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Also write a PNG: CPU requested and used per namespace, cost per job. "
            "Default: no chart.",
            show_default=False,
        ),
    ] = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """CPU, memory and dollars: per namespace now, per Spark job, and the cluster's cost.

    A job costs its share of the nodes' hourly price while it runs: the mean of its
    requested CPU and memory shares of the workers, times the price (spot or on-demand
    as launched), cut where workers were added or removed.

    Example: [bold]sparkube usage --since 6h --chart usage.png[/bold]
    """
    from sparkube.monitoring.usage import build_report, write_chart
    from sparkube.spark import jobs
    from sparkube.spec import parse_duration

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    output = check_output(output)
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}; pass e.g. --since 6h.") from None
    if chart is not None and chart.suffix.lower() != ".png":
        raise UsageError(f"--chart {chart} must end in .png; pass e.g. --chart usage.png.")
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    with ui.err.status("Reading usage from the cluster…"):
        report = build_report(jobs.open_cluster(env, spec.name), since=window)
    if chart is not None:
        path = chart if chart.is_absolute() else env.cwd / chart
        write_chart(report, path)
        ui.ok(f"chart written to {path}")
    if output == "json":
        ui.out.print_json(data=report.to_json())
        return
    ui.out.print(
        f"Cluster {report.cluster}: ${report.usd_per_hour:.4f}/h ({report.market}), "
        f"${report.usd_so_far:.2f} so far over {report.uptime_hours:.1f} h"
    )
    if not report.metrics_available:
        ui.note(f"Usage now is unknown: {report.metrics_message}.")
    table = Table(box=None, pad_edge=False, show_edge=False, title="per namespace (now)")
    for col in ("namespace", "pods", "CPU used", "CPU req", "GiB used", "GiB req"):
        table.add_column(col, justify="left" if col == "namespace" else "right")
    for n in report.namespaces:
        table.add_row(
            escape(n.namespace), str(n.pods), _cores(n.cpu_used), _cores(n.cpu_requested),
            _gib(n.memory_used_bytes), _gib(n.memory_requested_bytes),
        )  # fmt: skip
    ui.out.print(table)
    if not report.jobs:
        ui.out.print(f"No Spark jobs since {report.since}.")
        return
    jobs_table = Table(box=None, pad_edge=False, show_edge=False, title="Spark jobs")
    for col in ("job", "app", "state", "minutes", "executors", "core-h", "GiB-h", "USD"):
        jobs_table.add_column(col, justify="left" if col in ("job", "app", "state") else "right")
    for j in report.jobs:
        jobs_table.add_row(
            j.job_id, escape(j.app), j.state, f"{j.duration_seconds / 60:.1f}", str(j.executors),
            f"{j.core_hours:.3f}", f"{j.gib_hours:.3f}", f"${j.usd:.4f}",
        )  # fmt: skip
    ui.out.print(jobs_table)


def _tunnel(
    ctx: typer.Context,
    cluster: str | None,
    region: str | None,
    make_target: Callable[[ClusterJobs], Target],
    *,
    port: int,
    explicit_port: bool,
    path: str,
    no_browser: bool,
) -> None:
    """Resolve the target in the cluster, then hold an SSH tunnel to it until Ctrl-C."""
    import asyncio
    import webbrowser

    from sparkube import phases
    from sparkube.aws.provider import AwsProvider
    from sparkube.monitoring.tunnel import pick_port, serve_tunnel
    from sparkube.nodes.access import pick_node
    from sparkube.nodes.phase import ssh_settings
    from sparkube.spark import jobs

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    api = jobs.open_cluster(env, spec.name)
    target = make_target(api)  # ClusterError when it is not there or not ready
    local_port = pick_port(port, explicit=explicit_port)
    provider = AwsProvider.from_env(env, region=spec.region)
    info = provider.describe(spec.name).with_address_overrides(phases.default_overrides(env))
    node = pick_node(info, None)
    settings = ssh_settings(env, spec.name)

    def ready(bound: int) -> None:
        url = f"http://127.0.0.1:{bound}{path}"
        ui.ok(f"{target.what} at {url} (tunnel through {node.name}; Ctrl-C to close)")
        ui.out.print(url)
        if not no_browser:
            webbrowser.open(url)

    try:
        asyncio.run(serve_tunnel(node, settings, target, local_port, on_ready=ready))
    except KeyboardInterrupt:
        ui.note("Tunnel closed.")


@app.command(rich_help_panel=PANEL)
def dashboard(
    ctx: typer.Context,
    port: Annotated[int | None, _port_option(5483)] = None,
    no_browser: NoBrowserOption = False,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Open kube-opex-analytics (usage and cost charts) through a private SSH tunnel.

    The dashboard is never exposed on a public port: the tunnel listens on 127.0.0.1
    and goes through the control plane. It stays open until Ctrl-C.

    Example: [bold]sparkube dashboard --no-browser[/bold]
    """
    from sparkube.monitoring import addons
    from sparkube.monitoring.tunnel import check_ready, service_target

    def target(api: ClusterJobs) -> Target:
        client = api.client
        check_ready(client, addons.OPEX_NAMESPACE,
                    {"app.kubernetes.io/name": addons.OPEX_SERVICE},
                    "kube-opex-analytics", "1–2 minutes")  # fmt: skip
        return service_target(client, addons.OPEX_NAMESPACE, addons.OPEX_SERVICE,
                              addons.OPEX_PORT, "kube-opex-analytics")  # fmt: skip

    _tunnel(ctx, cluster, region, target, port=port or 5483, explicit_port=port is not None,
            path="/", no_browser=no_browser)  # fmt: skip


@app.command(name="spark-ui", rich_help_panel=PANEL)
def spark_ui(
    ctx: typer.Context,
    job: Annotated[
        str | None,
        typer.Argument(
            help="A running job: its live UI. Default: the History Server.", show_default=False
        ),
    ] = None,
    port: Annotated[int | None, _port_option(4040)] = None,
    no_browser: NoBrowserOption = False,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """The Spark UI of a running job, or the History Server for finished ones.

    Example: [bold]sparkube spark-ui wc-20261125-1203-4f2a[/bold]
    """
    from sparkube.monitoring import addons, tunnel
    from sparkube.spark.rbac import SPARK_NAMESPACE

    def target(api: ClusterJobs) -> Target:
        if job is not None:
            driver = api.driver(job)
            status = (driver or {}).get("status") or {}
            if status.get("phase") == "Running" and status.get("podIP"):
                return tunnel.Target(status["podIP"], 4040, f"the live Spark UI of {job}")
        client = api.client
        selector = {"app.kubernetes.io/name": addons.HISTORY_SERVICE}
        tunnel.check_ready(
            client, SPARK_NAMESPACE, selector, "The Spark History Server", "2–3 minutes"
        )
        return tunnel.service_target(client, SPARK_NAMESPACE, addons.HISTORY_SERVICE,
                              addons.HISTORY_PORT, "the Spark History Server")  # fmt: skip

    _tunnel(ctx, cluster, region, target, port=port or 4040, explicit_port=port is not None,
            path="/", no_browser=no_browser)  # fmt: skip
