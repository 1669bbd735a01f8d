"""Commands that show what the cluster uses and costs: ``usage``, ``dashboard``, ``spark-ui``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sparkube.cli.app import app
from sparkube.cli.options import ClusterOption, RegionOption
from sparkube.cli.ui import context
from sparkube.errors import UsageError
from sparkube.spec import load_spec

PANEL = "Monitoring"


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
    output: Annotated[str, typer.Option("--output", help="text or json.")] = "text",
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Also write a PNG: CPU requested and used per namespace, cost per job.",
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
    if output not in ("text", "json"):
        raise UsageError(f"--output must be text or json (got {output!r}).")
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
