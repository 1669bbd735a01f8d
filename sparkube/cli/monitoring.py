"""Commands that show what the cluster uses and costs: ``usage``, ``dashboard``, ``spark-ui``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
        str,
        typer.Option("--since", help="The window the figures cover (e.g. 1h, 30m, 2d, all)."),
    ] = "24h",
    output: OutputOption = "text",
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Also write a PNG: dollars per hour over the window, stacked by job, idle "
            "workers, control plane, volumes and addresses. Default: no chart.",
            show_default=False,
        ),
    ] = None,
    export_ledger: Annotated[
        Path | None,
        typer.Option(
            "--export-ledger",
            help="Also write the ledger (every fact the figures come from: instance "
            "intervals, volumes, prices with their sources, jobs' pods) as JSON, for an "
            "audit or to recompute later with --ledger. Default: not written.",
            show_default=False,
        ),
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger",
            help="Recompute every figure offline from a ledger file written by "
            "--export-ledger (no AWS or cluster access). Default: the cluster's own "
            "facts, gathered now.",
            show_default=False,
        ),
    ] = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Dollars per Spark job, idle, control plane, volumes and addresses; and CPU and
    memory per namespace now.

    A job pays for what its pods reserved (their requests) while they ran: the mean of
    its CPU and memory shares of the workers, times what the workers cost then (spot at
    the price in force each moment). What no job reserved is idle. jobs + idle +
    control plane + volumes + addresses = the total. With spot workers, also what spot
    saved against on-demand, per job and in all. A price that cannot be known is
    listed and makes the totals "at least". Reads only: nothing is written to the
    cluster or the bucket.

    Examples: [bold]sparkube usage --since 6h --chart usage.png[/bold] ·
    [bold]sparkube usage --since all --export-ledger ledger.json[/bold] ·
    [bold]sparkube usage --ledger ledger.json[/bold]
    """
    from sparkube.cost.ledger import Ledger, LedgerError
    from sparkube.monitoring.usage import build_report, report, write_chart
    from sparkube.spec import parse_duration

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    output = check_output(output)
    window = None
    if since != "all":
        try:
            window = parse_duration(since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}; pass e.g. --since 6h, or --since all.") from None
    if chart is not None and chart.suffix.lower() != ".png":
        raise UsageError(f"--chart {chart} must end in .png; pass e.g. --chart usage.png.")
    if ledger is not None:
        if cluster is not None or region is not None:
            raise UsageError("--ledger recomputes from the file alone; drop --cluster/--region.")
        path = ledger if ledger.is_absolute() else env.cwd / ledger
        try:
            facts = Ledger.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise UsageError(f"--ledger {ledger}: {exc.strerror}; pass a file written by "
                             "--export-ledger.") from None  # fmt: skip
        except LedgerError as exc:
            raise UsageError(f"--ledger {ledger} is not a sparkube ledger ({exc}); pass a "
                             "file written by --export-ledger.") from None  # fmt: skip
        rep = report(facts, since=window)
    else:
        spec = load_spec(env=env, flags={"name": cluster, "region": region})
        with ui.err.status("Reading the cluster's ledger…"):
            rep = build_report(env, spec.name, spec.region, since=window)
    if export_ledger is not None:
        out = export_ledger if export_ledger.is_absolute() else env.cwd / export_ledger
        out.write_text(rep.ledger.dumps(), "utf-8")
        ui.ok(f"ledger written to {out}")
    if chart is not None:
        path = chart if chart.is_absolute() else env.cwd / chart
        write_chart(rep, path)
        ui.ok(f"chart written to {path}")
    if output == "json":
        ui.out.print_json(data=rep.to_json())
        return
    _print_usage(ui, rep)


def _usd(value: float, exact: bool = True) -> str:
    return ("≥" if not exact else "") + f"${value:,.4f}"


def _print_scaling(ui: Any, s: Any) -> None:
    """What following the work cost and saved, when the workers changed or jobs
    waited in the window."""
    if s is None or not (s.grew or s.shrank or s.added or s.queued_jobs):
        return
    if s.grew or s.shrank or s.added:
        line = (
            f"Scaling: the group grew {s.grew}× and shrank {s.shrank}×; "
            f"{len(s.added)} worker{'s' if len(s.added) != 1 else ''} it added ran "
            f"{s.added_hours:.2f} h for {_usd(s.added_usd, s.exact)}"
        )
        if s.fixed_usd is not None and s.saved_usd is not None:
            line += (
                f"; sized for its peak of {s.peak_workers} worker"
                f"{'s' if s.peak_workers != 1 else ''} all along, the workers would have "
                f"cost ${s.fixed_usd:,.4f} instead of {_usd(s.workers_usd, s.exact)} "
                f"(saved ${s.saved_usd:,.4f})"
            )
        ui.out.print(line + ".", highlight=False)
    if s.queued_jobs:
        minutes, seconds = divmod(int(s.queued_seconds), 60)
        ui.out.print(
            f"Queue: {s.queued_jobs} job{'s' if s.queued_jobs != 1 else ''} waited "
            f"{minutes}:{seconds:02d} in all for room.",
            highlight=False,
        )


def _print_spot(ui: Any, s: Any) -> None:
    """What the spot instances cost against on-demand, when any ran in the window."""
    if s is None:
        return
    line = f"Spot: {s.worker_hours:.2f} worker-hours on spot cost {_usd(s.usd, s.exact)}"
    if s.on_demand_usd is not None:
        line += f"; on-demand they would have cost ${s.on_demand_usd:,.4f}"
    if s.saved_usd is not None:
        od = s.on_demand_usd
        share = f" ({s.saved_usd / od:.0%})" if od else ""
        line += f": saved ${s.saved_usd:,.4f}{share}."
    else:
        line += f"; what spot saved is unknown: {'; '.join(s.unknown) or 'a price is unknown'}."
    ui.out.print(line, highlight=False)


def _spot_saved(job: Any) -> str:
    if not job.on_spot:
        return "-"
    saved = job.spot_saved_usd
    return "unknown" if saved is None else f"${saved:,.4f}"


def _print_usage(ui: Any, rep: Any) -> None:
    w = rep.window
    hours = (w.end - w.start).total_seconds() / 3600
    ui.out.print(
        f"Cluster {escape(rep.ledger.cluster)} · {w.start:%Y-%m-%d %H:%M} → "
        f"{w.end:%Y-%m-%d %H:%M} UTC ({hours:.1f} h)"
    )
    lines = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
    lines.add_column("what")
    lines.add_column("USD", justify="right")
    lines.add_column("", style="dim")
    jobs_usd = sum(j.usd for j in w.jobs)
    lines.add_row("Spark jobs", _usd(jobs_usd, all(j.exact for j in w.jobs)),
                  f"{len(w.jobs)} job{'s' if len(w.jobs) != 1 else ''}")  # fmt: skip
    lines.add_row("idle", f"${w.idle:,.4f}", "workers' capacity no job reserved")
    lines.add_row("control plane", f"${w.control_plane:,.4f}", "")
    lines.add_row("volumes", f"${w.volumes:,.4f}", "EBS, by size, while they exist")
    lines.add_row("addresses", f"${w.addresses:,.4f}", "public IPv4, while instances run")
    lines.add_row("[bold]total[/bold]", f"[bold]{_usd(w.total, w.exact)}[/bold]",
                  f"cluster so far {_usd(rep.cluster_total, w.exact)}")  # fmt: skip
    ui.out.print(lines)
    r = w.rate
    ui.out.print(
        f"Now: {_usd(r.total, r.exact)}/h (instances ${r.instances:.4f}, volumes "
        f"${r.volumes:.4f}, addresses ${r.addresses:.4f})"
    )
    _print_spot(ui, rep.spot)
    _print_scaling(ui, rep.scaling)
    for reason in w.unknown:
        ui.note(f"Not counted: {reason}.")
    for note in rep.ledger.notes:
        ui.note(note)
    if rep.namespaces or rep.metrics_available:
        if not rep.metrics_available:
            ui.note(f"Usage now is unknown: {rep.metrics_message}.")
        table = Table(box=None, pad_edge=False, show_edge=False, title="per namespace (now)")
        for col in ("namespace", "pods", "CPU used", "CPU req", "GiB used", "GiB req"):
            table.add_column(col, justify="left" if col == "namespace" else "right")
        for n in rep.namespaces:
            table.add_row(
                escape(n.namespace), str(n.pods), _cores(n.cpu_used), _cores(n.cpu_requested),
                _gib(n.memory_used_bytes), _gib(n.memory_requested_bytes),
            )  # fmt: skip
        ui.out.print(table)
    if not w.jobs:
        ui.out.print(f"No Spark jobs since {w.start:%Y-%m-%d %H:%M} UTC.")
        return
    jobs_table = Table(box=None, pad_edge=False, show_edge=False, title="Spark jobs")
    spot = any(j.on_spot for j in w.jobs)  # the column only when some job ran on spot
    columns = ["job", "app", "state", "minutes", "pods", "core-h", "GiB-h", "USD"]
    for col in [*columns, "spot saved"] if spot else columns:
        jobs_table.add_column(col, justify="left" if col in ("job", "app", "state") else "right",
                              no_wrap=col == "spot saved")  # fmt: skip
    for j in w.jobs:
        end = j.end or w.end
        minutes = (end - j.start).total_seconds() / 60 if j.start else 0.0
        cells = [
            j.job_id, escape(j.app), j.state, f"{minutes:.1f}", str(j.pods),
            f"{j.core_hours:.3f}", f"{j.gib_hours:.3f}", _usd(j.usd, j.exact),
        ]  # fmt: skip
        jobs_table.add_row(*cells, *([_spot_saved(j)] if spot else []))
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
