"""Cluster commands: ``plan``, ``up``, ``down``, ``ls``, ``status``.

They parse flags into a spec, confirm, call :mod:`sparkube.phases` and render. No
boto3 here: the AWS layer returns typed records.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table

from sparkube import phases
from sparkube.aws.discovery import ClusterSummary
from sparkube.aws.provider import AwsProvider, Plan
from sparkube.cli.app import app
from sparkube.cli.options import ClusterOption, RegionOption
from sparkube.cli.ui import UI, context
from sparkube.errors import UsageError
from sparkube.model import ClusterInfo, Node
from sparkube.spec import ClusterSpec, format_duration, load_spec

PANEL = "Cluster"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Cluster file (default: ./sparkube.yaml if present).", show_default=False
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option("--workers", "-w", help="Number of worker nodes (0-200).", show_default=False),
]
TypeOption = Annotated[
    str | None, typer.Option("--instance-type", help="EC2 type of the workers.", show_default=False)
]
CpTypeOption = Annotated[
    str | None,
    typer.Option("--control-plane-type", help="EC2 type of the control plane.", show_default=False),
]
SpotOption = Annotated[
    bool | None,
    typer.Option("--spot/--no-spot", help="Run workers on spot capacity.", show_default=False),
]
CidrOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-cidr",
        help="CIDR allowed to reach SSH and the API (repeatable). Default: your public IP/32.",
        show_default=False,
    ),
]
AmiOption = Annotated[
    str | None,
    typer.Option("--ami", help="AMI id. Default: Ubuntu 24.04 from SSM.", show_default=False),
]
TtlOption = Annotated[
    str | None,
    typer.Option(
        "--ttl", help="Nodes terminate themselves after this (4h, 90m).", show_default=False
    ),
]
VolumeOption = Annotated[
    int | None,
    typer.Option("--root-volume-gb", help="Root volume size in GiB.", show_default=False),
]
VpcOption = Annotated[
    str | None, typer.Option("--vpc-id", help="VPC. Default: the default VPC.", show_default=False)
]
SubnetOption = Annotated[
    str | None,
    typer.Option("--subnet-id", help="Subnet. Default: chosen by EC2.", show_default=False),
]
OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="text or json.", case_sensitive=False)
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _spec(ctx: typer.Context, config: Path | None, **flags: Any) -> ClusterSpec:
    env = context(ctx).env
    return load_spec(env=env, config=config, flags=flags)


def _provider(ctx: typer.Context, spec_region: str | None) -> AwsProvider:
    return AwsProvider.from_env(context(ctx).env, region=spec_region)


def _check_output(output: str) -> str:
    value = output.lower()
    if value not in ("text", "json"):
        raise UsageError(f"--output {output} is not supported; use text or json.")
    return value


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}/h" if value < 1 else f"${value:,.2f}/h"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def _left(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "-"
    left = expires - now
    if left <= timedelta(0):
        return "expired"
    minutes = int(left.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


class RichReporter:
    """Progress on stderr: while a phase runs, a live line for it and one per node or
    resource it is working on; when it ends, one line with its summary and duration."""

    def __init__(self, ui: UI) -> None:
        self.ui = ui
        self.live: Live | None = None
        self.phase = ""
        self.description = ""
        self.steps: dict[str, str] = {}

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_row(Spinner("dots"), f"{self.phase:<12}", escape(self.description))
        for subject, text in self.steps.items():
            table.add_row("", f"  {escape(subject)}", f"[dim]{escape(text)}[/dim]")
        return table

    def phase_started(self, phase: str, description: str) -> None:
        self._stop()
        self.phase, self.description, self.steps = phase, description, {}
        self.live = Live(self._render(), console=self.ui.err, refresh_per_second=8, transient=True)
        self.live.start()

    def _stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def phase_done(self, phase: str, summary: str, seconds: float) -> None:
        self._stop()
        self.ui.err.print(
            f"[green]✓[/green] {phase:<12} {escape(summary)}  [dim]{_clock(seconds)}[/dim]"
        )

    def phase_failed(self, phase: str, message: str) -> None:
        self._stop()
        self.ui.err.print(f"[red]✗ {phase:<12}[/red] {escape(message)}")

    def step(self, phase: str, subject: str, text: str) -> None:
        self.steps[subject] = text
        if self.live is not None:
            self.live.update(self._render())


# --- plan ---------------------------------------------------------------------------


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "cluster": plan.cluster,
        "region": plan.region,
        "vpc_id": plan.vpc_id,
        "allow_cidrs": list(plan.allow_cidrs),
        "resources": [
            {"kind": r.kind, "name": r.name, "exists": r.exists, "detail": r.detail}
            for r in plan.resources
        ],
        "instances": [
            {
                "role": i.role,
                "count": i.count,
                "existing": i.existing,
                "instance_type": i.instance_type,
                "vcpus": i.vcpus,
                "memory_mib": i.memory_mib,
                "architecture": i.architecture,
                "ami": i.ami,
                "root_volume_gb": i.root_volume_gb,
                "spot": i.spot,
                "usd_per_hour_each": i.usd_per_hour,
            }
            for i in plan.instances
        ],
        "cost": {
            "usd_per_hour": plan.cost.usd_per_hour,
            "market": plan.cost.market,
            "source": plan.cost.sources,
        },
        "ttl_minutes": plan.ttl_minutes,
    }


def _header(ui: UI, plan: Plan) -> None:
    cp, workers = plan.instances
    ui.err.print(
        f"Cluster [bold]{escape(plan.cluster)}[/bold] · {plan.region} · 1 × {cp.instance_type} "
        f"control plane + {workers.count} × {workers.instance_type} workers"
        + (" (spot)" if workers.spot else "")
    )
    ui.err.print(
        f"Estimated cost: {_money(plan.cost.usd_per_hour)} ({plan.cost.market}, "
        f"{plan.cost.sources})    SSH/API open to {', '.join(plan.allow_cidrs)}"
    )


@app.command(rich_help_panel=PANEL)
def plan(
    ctx: typer.Context,
    config: ConfigOption = None,
    workers: WorkersOption = None,
    instance_type: TypeOption = None,
    control_plane_type: CpTypeOption = None,
    spot: SpotOption = None,
    allow_cidr: CidrOption = None,
    ami: AmiOption = None,
    ttl: TtlOption = None,
    root_volume_gb: VolumeOption = None,
    vpc_id: VpcOption = None,
    subnet_id: SubnetOption = None,
    output: OutputOption = "text",
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Show what [bold]up[/bold] would create and what it would cost per hour. Writes nothing."""
    output = _check_output(output)
    ui = context(ctx).ui
    spec = _spec(
        ctx,
        config,
        name=cluster,
        region=region,
        workers=workers,
        instance_type=instance_type,
        control_plane_type=control_plane_type,
        spot=spot,
        allow_cidrs=allow_cidr,
        ami=ami,
        ttl=ttl,
        root_volume_gb=root_volume_gb,
        vpc_id=vpc_id,
        subnet_id=subnet_id,
    )
    result = _provider(ctx, spec.region).plan(spec)
    if output == "json":
        ui.out.print_json(json.dumps(_plan_json(result)))
        return
    _header(ui, result)
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("", "resource", "name", "detail"):
        table.add_column(column)
    for r in result.resources:
        table.add_row("=" if r.exists else "+", r.kind, escape(r.name), escape(r.detail))
    for i in result.instances:
        new = max(0, i.count - i.existing)
        detail = (
            f"{i.instance_type} ({i.vcpus} vCPU, {i.memory_mib / 1024:g} GiB, {i.architecture}), "
            f"{i.ami}, {i.root_volume_gb} GiB gp3 encrypted"
            + (", spot" if i.spot else "")
            + f", {_money(i.usd_per_hour)} each"
        )
        table.add_row(
            "+" if new else "=",
            f"{i.role} instances",
            f"{i.count}" + (f" ({new} new)" if i.existing else ""),
            detail,
        )
    ui.out.print(table)
    ttl_text = (
        f" · nodes terminate themselves after {format_duration(result.spec.ttl)}"
        if result.spec.ttl
        else ""
    )
    ui.out.print(
        f"Total: {_money(result.cost.usd_per_hour)} ({result.cost.market}; prices from "
        f"{result.cost.sources}){ttl_text}. '+' = to create, '=' = exists."
    )


# --- up -----------------------------------------------------------------------------


@app.command(rich_help_panel=PANEL)
def up(
    ctx: typer.Context,
    config: ConfigOption = None,
    workers: WorkersOption = None,
    instance_type: TypeOption = None,
    control_plane_type: CpTypeOption = None,
    spot: SpotOption = None,
    allow_cidr: CidrOption = None,
    ami: AmiOption = None,
    ttl: TtlOption = None,
    root_volume_gb: VolumeOption = None,
    vpc_id: VpcOption = None,
    subnet_id: SubnetOption = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="Stop after this phase (infra, nodes, kubernetes, addons: as available).",
            show_default=False,
        ),
    ] = None,
    yes: YesOption = False,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Create the cluster, or resume and complete it (every phase is idempotent)."""
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = _spec(
        ctx,
        config,
        name=cluster,
        region=region,
        workers=workers,
        instance_type=instance_type,
        control_plane_type=control_plane_type,
        spot=spot,
        allow_cidrs=allow_cidr,
        ami=ami,
        ttl=ttl,
        root_volume_gb=root_volume_gb,
        vpc_id=vpc_id,
        subnet_id=subnet_id,
    )
    selected = phases.select(until)
    provider = _provider(ctx, spec.region)
    the_plan = provider.plan(spec)  # validates everything before any write
    _header(ui, the_plan)
    if env.interactive and not yes and the_plan.to_create:
        what = ", ".join(sorted({r.kind for r in the_plan.to_create}))
        if not typer.confirm(f"Create {what} and instances?", default=True, err=True):
            raise typer.Exit(1)
    phase_ctx = phases.PhaseContext(
        spec=the_plan.spec,  # completed from the existing cluster: a plain 'up' resumes
        env=env,
        reporter=RichReporter(ui),
        provider=provider,
        address_overrides=phases.default_overrides(env),
    )
    results = phases.run_up(phase_ctx, until=selected[-1].name)
    total = sum(r.seconds for r in results)
    info = phase_ctx.cluster
    ui.err.print(
        "Phases: "
        + " · ".join(f"{r.name} {_clock(r.seconds)}" for r in results)
        + f" · total {_clock(total)}"
    )
    not_run = [p for p in phases.PHASE_ORDER if p not in {r.name for r in results}]
    if not_run:
        registered = {p.name for p in phases.available()}
        later = [p for p in not_run if p in registered]
        missing = [p for p in not_run if p not in registered]
        if later:
            ui.note(
                f"Stopped after {results[-1].name}; 'sparkube up' continues with "
                f"{', '.join(later)}."
            )
        if missing:
            ui.note(f"Not available yet in this version: {', '.join(missing)}.")
    _nodes_table(ui, info, prices=None, now=datetime.now(UTC))


# --- down ---------------------------------------------------------------------------


@app.command(rich_help_panel=PANEL)
def down(
    ctx: typer.Context,
    yes: YesOption = False,
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep the S3 bucket and its objects.")
    ] = False,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Delete the cluster and everything tagged with it, then check nothing remains."""
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    provider = _provider(ctx, spec.region)
    info = provider.describe(spec.name)
    from sparkube.aws import discovery

    if discovery.is_empty(info) and not env.cluster_dir(spec.name).exists():
        ui.out.print(
            f"Nothing to delete: no resource tagged sparkube:cluster={spec.name} in "
            f"{provider.region}."
        )
        return
    if not yes:
        if not env.interactive:
            raise UsageError(
                f"Refusing to delete cluster {spec.name} without confirmation; pass --yes."
            )
        what = discovery.leftovers(info, keep_data=keep_data)
        ui.err.print(f"This deletes cluster {spec.name} in {provider.region}: " + "; ".join(what))
        if not typer.confirm("Delete it?", default=False, err=True):
            raise typer.Exit(1)
    result = phases.run_down(
        provider, spec.name, keep_data=keep_data, reporter=RichReporter(ui), existing=info
    )
    for item in result.deleted:
        ui.note(f"deleted {item}")
    for item in result.kept:
        ui.note(f"kept {item} (--keep-data)")
    if result.remaining:
        ui.error(
            f"{len(result.remaining)} resources tagged sparkube:cluster={spec.name} remain; "
            "run 'sparkube down' again.",
            detail="\n".join(result.remaining),
        )
        raise typer.Exit(1)
    ui.out.print(
        f"Cluster {spec.name} deleted; nothing tagged with it remains in {provider.region}."
    )


# --- ls / status --------------------------------------------------------------------


def _hours(node: Node, now: datetime) -> float:
    if node.launch_time is None or node.state not in ("running", "pending"):
        return 0.0
    return max(0.0, (now - node.launch_time).total_seconds() / 3600)


def _node_cost(node: Node, prices: dict[str, float | None]) -> float | None:
    if node.state not in ("running", "pending"):
        return 0.0
    return prices.get(node.instance_type)


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v or 0.0 for v in values)


def _node_json(node: Node, prices: dict[str, float | None], now: datetime) -> dict[str, Any]:
    per_hour = _node_cost(node, prices)
    return {
        "name": node.name,
        "role": node.role,
        "instance_id": node.instance_id,
        "instance_type": node.instance_type,
        "state": node.state,
        "spot": node.spot,
        "public_ip": node.public_ip,
        "private_ip": node.private_ip,
        "availability_zone": node.availability_zone,
        "launch_time": node.launch_time.isoformat() if node.launch_time else None,
        "uptime_seconds": int(_hours(node, now) * 3600),
        "usd_per_hour": per_hour,
        "usd_so_far": None if per_hour is None else round(per_hour * _hours(node, now), 4),
    }


def _nodes_table(
    ui: UI, info: ClusterInfo | Any, prices: dict[str, float | None] | None, now: datetime
) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False)
    columns = ["node", "role", "type", "state", "public IP", "private IP", "uptime"]
    if prices is not None:
        columns += ["$/h", "$ so far"]
    for c in columns:
        table.add_column(c)
    for node in info.nodes:
        row = [
            node.name,
            node.role,
            node.instance_type + (" spot" if node.spot else ""),
            node.state,
            node.public_ip or "-",
            node.private_ip or "-",
            _clock(_hours(node, now) * 3600),
        ]
        if prices is not None:
            per_hour = _node_cost(node, prices)
            row += [
                _money(per_hour).removesuffix("/h"),
                "?" if per_hour is None else f"${per_hour * _hours(node, now):.2f}",
            ]
        table.add_row(*[escape(str(c)) for c in row])
    ui.out.print(table)


def _prices(provider: AwsProvider, nodes: tuple[Node, ...], region: str) -> dict[str, float | None]:
    types = sorted({n.instance_type for n in nodes})
    if not types:
        return {}
    found = provider.prices(types, region=region)
    return {t: p.usd_per_hour for t, p in found.items()}


@app.command(rich_help_panel=PANEL)
def status(
    ctx: typer.Context,
    output: OutputOption = "text",
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Nodes, addresses, uptime, time left, cost so far and per hour."""
    output = _check_output(output)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    provider = _provider(ctx, spec.region)
    info = provider.describe(spec.name)
    from sparkube.aws import discovery

    now = datetime.now(UTC)
    prices = _prices(provider, info.nodes, provider.region)
    per_hour = _sum([_node_cost(n, prices) for n in info.nodes])
    so_far = _sum(
        [
            None if _node_cost(n, prices) is None else (_node_cost(n, prices) or 0) * _hours(n, now)
            for n in info.nodes
        ]
    )
    exists = not discovery.is_empty(info)
    if output == "json":
        ui.out.print_json(
            json.dumps(
                {
                    "cluster": info.name,
                    "region": info.region,
                    "exists": exists,
                    "security_group_id": info.security_group_id,
                    "key_name": info.key_name,
                    "bucket": info.bucket,
                    "instance_profile": info.instance_profile,
                    "expires_at": info.expires_at.isoformat() if info.expires_at else None,
                    "time_left": _left(info.expires_at, now),
                    "usd_per_hour": per_hour,
                    "usd_so_far": None if so_far is None else round(so_far, 4),
                    "nodes": [_node_json(n, prices, now) for n in info.nodes],
                }
            )
        )
        return
    if not exists:
        ui.out.print(
            f"No cluster {info.name} in {info.region} (nothing tagged "
            f"sparkube:cluster={info.name}); create it with 'sparkube up'."
        )
        return
    ui.out.print(
        f"Cluster {info.name} · {info.region} · {len(info.nodes)} nodes · "
        f"{_money(per_hour)} · so far {'?' if so_far is None else f'${so_far:.2f}'} · "
        f"time left {_left(info.expires_at, now)}"
    )
    _nodes_table(ui, info, prices, now)
    missing = discovery.leftovers(info)
    ui.out.print("Resources: " + "; ".join(m for m in missing if not m.startswith("instance ")))


@app.command(name="ls", rich_help_panel=PANEL)
def ls_(
    ctx: typer.Context,
    all_regions: Annotated[
        bool, typer.Option("--all-regions", help="Look in every enabled region.")
    ] = False,
    output: OutputOption = "text",
    region: RegionOption = None,
) -> None:
    """Every sparkube cluster found by tag, with cost per hour and time left."""
    output = _check_output(output)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"region": region}, use_file=False)
    provider = _provider(ctx, spec.region)
    clusters = provider.list_clusters(all_regions=all_regions)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for c in clusters:
        prices = _prices(provider, c.nodes, c.region)
        rows.append(_summary(c, prices, now))
    if output == "json":
        ui.out.print_json(json.dumps(rows))
        return
    if not rows:
        where = "any region" if all_regions else provider.region
        ui.out.print(f"No sparkube cluster in {where}.")
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("cluster", "region", "nodes", "running", "$/h", "$ so far", "time left"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["cluster"]),
            r["region"],
            str(r["nodes"]),
            str(r["running"]),
            _money(r["usd_per_hour"]).removesuffix("/h"),
            "?" if r["usd_so_far"] is None else f"${r['usd_so_far']:.2f}",
            r["time_left"],
        )
    ui.out.print(table)


def _summary(c: ClusterSummary, prices: dict[str, float | None], now: datetime) -> dict[str, Any]:
    per_hour = _sum([_node_cost(n, prices) for n in c.nodes])
    so_far = _sum(
        [
            None if _node_cost(n, prices) is None else (_node_cost(n, prices) or 0) * _hours(n, now)
            for n in c.nodes
        ]
    )
    return {
        "cluster": c.name,
        "region": c.region,
        "nodes": len(c.nodes),
        "running": sum(1 for n in c.nodes if n.state == "running"),
        "usd_per_hour": per_hour,
        "usd_so_far": None if so_far is None else round(so_far, 4),
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "time_left": _left(c.expires_at, now),
    }
