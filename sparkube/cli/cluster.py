"""Cluster commands: ``plan``, ``up``, ``down``, ``ls``, ``status``.

They parse flags into a spec, confirm, call :mod:`sparkube.phases` and render. No
boto3 here: the AWS layer returns typed records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sparkube.cli.app import app
from sparkube.cli.options import (
    ClusterOption,
    OutputOption,
    RegionOption,
    check_output,
    load_spec,
)
from sparkube.cli.progress import RichReporter, clock
from sparkube.cli.ui import UI, context
from sparkube.defaults import (
    DEFAULT_CONTROL_PLANE_TYPE,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_ROOT_VOLUME_GB,
    DEFAULT_WORKERS,
    MAX_ROOT_VOLUME_GB,
    MAX_WORKERS,
    MIN_ROOT_VOLUME_GB,
)
from sparkube.env import Environment
from sparkube.errors import Interrupted, NoSuchCluster, UsageError
from sparkube.lock import cluster_lock
from sparkube.model import CONTROL_PLANE, ClusterInfo, Node

if TYPE_CHECKING:  # imported where used: '--help' and '--version' load no AWS SDK
    from sparkube.aws.discovery import ClusterSummary
    from sparkube.aws.provider import AwsProvider, Plan
    from sparkube.spec import ClusterSpec

PANEL = "Cluster"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Cluster file. Default: ./sparkube.yaml if present.", show_default=False
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        help=f"Number of worker nodes (0-{MAX_WORKERS}). On an existing cluster, more adds "
        f"workers. Default: {DEFAULT_WORKERS}.",
        show_default=False,
    ),
]
TypeOption = Annotated[
    str | None,
    typer.Option(
        "--instance-type",
        help=f"EC2 type of the workers. Default: {DEFAULT_INSTANCE_TYPE}.",
        show_default=False,
    ),
]
CpTypeOption = Annotated[
    str | None,
    typer.Option(
        "--control-plane-type",
        help=f"EC2 type of the control plane. Default: {DEFAULT_CONTROL_PLANE_TYPE}.",
        show_default=False,
    ),
]
SpotOption = Annotated[
    bool | None,
    typer.Option(
        "--spot/--no-spot",
        help="Run workers on spot capacity. Default: on-demand (--no-spot).",
        show_default=False,
    ),
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
        "--ttl",
        help="Nodes terminate themselves after this (4h, 90m). Default: none, they run until down.",
        show_default=False,
    ),
]
VolumeOption = Annotated[
    int | None,
    typer.Option(
        "--root-volume-gb",
        help=f"Root volume size in GiB ({MIN_ROOT_VOLUME_GB}-{MAX_ROOT_VOLUME_GB}). "
        f"Default: {DEFAULT_ROOT_VOLUME_GB}.",
        show_default=False,
    ),
]
VpcOption = Annotated[
    str | None, typer.Option("--vpc-id", help="VPC. Default: the default VPC.", show_default=False)
]
SubnetOption = Annotated[
    str | None,
    typer.Option("--subnet-id", help="Subnet. Default: chosen by EC2.", show_default=False),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


#: Command parameters whose name differs from the ClusterSpec field they set.
_PARAM_TO_FIELD = {"cluster": "name", "allow_cidr": "allow_cidrs"}


def _spec(ctx: typer.Context) -> ClusterSpec:
    """The spec from the command's own parameters (``plan`` and ``up`` share them),
    with the checks that need no AWS call done: ``plan`` (offline too) and ``up``
    refuse the same input before asking AWS anything."""
    from sparkube.aws.network import refuse_open
    from sparkube.spec import ClusterSpec

    flags = {
        _PARAM_TO_FIELD.get(param, param): value
        for param, value in ctx.params.items()
        if _PARAM_TO_FIELD.get(param, param) in ClusterSpec.model_fields
    }
    spec = load_spec(env=context(ctx).env, config=ctx.params.get("config"), flags=flags)
    refuse_open(spec.allow_cidrs)
    return spec


def _provider(ctx: typer.Context, spec_region: str | None) -> AwsProvider:
    from sparkube.aws.provider import AwsProvider

    return AwsProvider.from_env(context(ctx).env, region=spec_region)


def _need_region(
    env: Environment, region: str | None, *, known: str, unknown: str, name: str
) -> None:
    """Exit 2 with what the command cannot do when no AWS region is set: ``known`` if
    this machine has files of cluster ``name``, else ``unknown``."""
    from sparkube.aws.session import configured_region

    if configured_region(env.environ, region) is not None:
        return
    said = known if env.cluster_dir(name).exists() else unknown
    raise UsageError(
        f"{said}; pass --region REGION (or set AWS_REGION), or find your clusters with "
        "'sparkube ls --all-regions'."
    )


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}/h" if value < 1 else f"${value:,.2f}/h"


def _left(expires: datetime | None, now: datetime) -> str:
    if expires is None:
        return "-"
    left = expires - now
    if left <= timedelta(0):
        return "expired"
    minutes = int(left.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


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
    wrap = ui.err.is_terminal  # word-wrap on a terminal; never break lines in logs
    ui.err.print(
        f"Cluster [bold]{escape(plan.cluster)}[/bold] · {plan.region} · 1 × {cp.instance_type} "
        f"control plane + {workers.count} × {workers.instance_type} workers"
        + (" (spot)" if workers.spot else ""),
        soft_wrap=not wrap,
    )
    ui.err.print(
        f"Estimated cost: {_money(plan.cost.usd_per_hour)} ({plan.cost.market}, "
        f"{plan.cost.sources}) · SSH/API open to {', '.join(plan.allow_cidrs)}",
        soft_wrap=not wrap,
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
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Only the price, from sparkube's bundled price table: no AWS call, no "
            "credentials needed, nothing checked.",
        ),
    ] = False,
    output: OutputOption = "text",
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Show what [bold]up[/bold] would create and what it would cost per hour. Writes nothing.

    On an existing cluster, settings you leave out are the cluster's own. Without AWS
    credentials or a region, when AWS cannot be reached, or with --offline, it shows an
    offline estimate instead: the hourly price from the bundled price table, before any
    account setup.

    Examples: sparkube plan --workers 3 · sparkube plan --spot --instance-type m7g.large -o json
    · sparkube plan --offline --region eu-west-1
    """
    from sparkube.aws.provider import check_region
    from sparkube.aws.session import AwsClients, AwsUnreachable, configured_region

    output = check_output(output)
    app_ctx = context(ctx)
    ui = app_ctx.ui
    spec = _spec(ctx)
    environ = app_ctx.env.environ
    home = configured_region(environ, spec.region)
    if home is not None:
        check_region(home)  # as 'up' does, on every path
    reason = (
        "--offline was given"
        if offline
        else "no AWS region is set"
        if home is None
        else "no AWS credentials were found"
        if not AwsClients(environ, home).has_credentials()
        else None
    )
    if reason is not None:
        _offline_plan(ui, spec, output, reason=reason, env=app_ctx.env, offline=offline)
        return
    provider = _provider(ctx, spec.region)
    try:
        with ui.waiting(f"Asking AWS in {provider.region} what exists and what it costs"):
            result = provider.plan(spec)
    except AwsUnreachable as exc:  # offline with credentials: estimate all the same
        _offline_plan(
            ui, spec, output, reason=f"AWS cannot be reached: {exc.short}", env=app_ctx.env,
            offline=offline, unreachable=True,
        )  # fmt: skip
        return
    if output == "json":
        ui.out.print_json(json.dumps(_plan_json(result)))
        return
    _header(ui, result)
    # One line per resource: what, its name, then the detail (dim), which wraps by
    # words under the name on a narrow terminal; names are never cut.
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for r in result.resources:
        text = Text(r.name)
        if r.detail:
            text.append(f"  {r.detail}", style="dim")
        table.add_row("=" if r.exists else "+", r.kind, text)
    for i in result.instances:
        new = max(0, i.count - i.existing)
        text = Text(
            f"{i.count} × {i.instance_type}" + (f" ({new} new)" if i.existing and new else "")
        )
        text.append(
            f"  {i.vcpus} vCPU, {i.memory_mib / 1024:g} GiB, {i.architecture}, {i.ami}, "
            f"{i.root_volume_gb} GiB gp3 encrypted"
            + (", spot" if i.spot else "")
            + f", {_money(i.usd_per_hour)} each",
            style="dim",
        )
        kind = "control plane" if i.role == "control-plane" else "workers"
        table.add_row("+" if new else "=", kind, text)
    ui.out.print(table)
    from sparkube.spec import format_duration

    ttl_text = (
        f" · nodes terminate themselves after {format_duration(result.spec.ttl)}"
        if result.spec.ttl
        else ""
    )
    ui.out.print(
        f"Total: {_money(result.cost.usd_per_hour)} ({result.cost.market}; prices from "
        f"{result.cost.sources}){ttl_text}. '+' = to create, '=' = exists.",
        soft_wrap=not ui.out.is_terminal,
    )


def _offline_plan(
    ui: UI,
    spec: ClusterSpec,
    output: str,
    *,
    reason: str,
    env: Environment,
    offline: bool,
    unreachable: bool = False,
) -> None:
    """The price of ``spec`` from the bundled table, said to be an offline estimate."""
    from sparkube.aws.pricing import BUNDLED, bundled_table, offline_estimate
    from sparkube.aws.session import LISTING_REGION, configured_region
    from sparkube.spec import format_duration

    region = configured_region(env.environ, spec.region) or LISTING_REGION
    cost = offline_estimate(
        region,
        control_plane_type=spec.control_plane_type,
        worker_type=spec.instance_type,
        workers=spec.workers,
        spot=spec.spot,
    )
    missing = sorted(
        {p.instance_type for p in (cost.control_plane, cost.worker) if p.usd_per_hour is None}
    )
    ui.note(
        f"Offline estimate ({reason}): {region} prices from sparkube's {BUNDLED}; nothing "
        "in an AWS account was checked."
        + (" Pass --region for another region." if spec.region is None else "")
        + (
            ""
            if offline
            else " Once AWS can be reached, 'sparkube plan' shows all."
            if unreachable
            else " With AWS credentials and a region, 'sparkube plan' shows all."
        )
    )
    if missing:
        known = sorted(bundled_table())
        ui.note(
            f"The table has no price for {', '.join(missing)} in {region} (it covers the "
            f"t3, t3a, m5, m6i, m7i, c6i, r6i, t4g, m6g and m7g families in {len(known)} "
            "regions)."
        )
    ttl = int(spec.ttl.total_seconds() // 60) if spec.ttl else None
    if output == "json":
        each = [(CONTROL_PLANE, 1, cost.control_plane), ("worker", spec.workers, cost.worker)]
        ui.out.print_json(
            json.dumps(
                {
                    "offline": True,
                    "reason": reason,
                    "cluster": spec.name,
                    "region": region,
                    "instances": [
                        {
                            "role": role,
                            "count": count,
                            "instance_type": price.instance_type,
                            "spot": role == "worker" and spec.spot,
                            "usd_per_hour_each": price.usd_per_hour,
                        }
                        for role, count, price in each
                    ],
                    "cost": {
                        "usd_per_hour": cost.usd_per_hour,
                        "market": cost.market,
                        "source": f"{BUNDLED} ({region}, estimate)",
                    },
                    "ttl_minutes": ttl,
                }
            )
        )
        return
    table = Table.grid(padding=(0, 2))
    table.add_row(
        "control plane", f"1 × {spec.control_plane_type}", _money(cost.control_plane.usd_per_hour)
    )
    table.add_row(
        "workers",
        f"{spec.workers} × {spec.instance_type}" + (" spot" if spec.spot else ""),
        f"{_money(cost.worker.usd_per_hour)} each"
        + (" (spot priced at on-demand)" if spec.spot and spec.workers else ""),
    )
    ui.out.print(f"Cluster {spec.name} · {region} · offline estimate", markup=False)
    ui.out.print(table)
    ttl_text = (
        f" · nodes terminate themselves after {format_duration(spec.ttl)}" if spec.ttl else ""
    )
    ui.out.print(
        f"Total: {_money(cost.usd_per_hour)} ({cost.market}; estimated from the {BUNDLED} "
        f"for {region}, not checked with AWS){ttl_text}.",
        markup=False,
        soft_wrap=not ui.out.is_terminal,
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
            help="Stop after this phase (infra, nodes, kubernetes, addons: as available). "
            "Default: run every phase.",
            show_default=False,
        ),
    ] = None,
    yes: YesOption = False,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Create the cluster, or resume and complete it (every phase is idempotent).

    Re-running resumes: settings you leave out are the existing cluster's own (recorded
    in its tags); a larger --workers adds workers; other different settings are refused.

    Examples: sparkube up --workers 3 --ttl 4h · sparkube up (resume) ·
    sparkube up --until infra · sparkube up --allow-cidr 203.0.113.0/24
    """
    from sparkube import phases
    from sparkube.nodes.kubeconfig import kubeconfig_path

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = _spec(ctx)
    selected = phases.select(until)
    provider = _provider(ctx, spec.region)
    with ui.waiting(f"Checking the settings against AWS in {provider.region}"):
        the_plan = provider.plan(spec)  # validates everything before any write
    _header(ui, the_plan)
    if env.interactive and not yes and the_plan.to_create:
        what = ", ".join(sorted({r.kind for r in the_plan.to_create}))
        if not typer.confirm(f"Create {what} and instances?", default=True, err=True):
            raise typer.Exit(1)
    phase_ctx = phases.PhaseContext(
        spec=the_plan.spec,  # completed from the existing cluster: a plain 'up' resumes
        env=env,
        reporter=RichReporter(ui.err),
        provider=provider,
        address_overrides=phases.default_overrides(env),
    )
    with (
        cluster_lock(env, spec.name, "up"),
        _interrupted_says(
            "Interrupted; run 'sparkube up' again to resume, or 'sparkube down' to remove what "
            "was made."
        ),
    ):
        results = phases.run_up(phase_ctx, until=selected[-1].name)
    total = clock(sum(r.seconds for r in results))
    registered = [p.name for p in phases.available()]
    later = registered[registered.index(results[-1].name) + 1 :]
    if later:
        ui.out.print(
            f"Stopped after {results[-1].name} in {total}; 'sparkube up' continues with "
            f"{', '.join(later)}.  Nodes: sparkube status",
            markup=False,
        )
    else:
        path = kubeconfig_path(env, spec.name)
        where = f"  kubeconfig: {_home(env, path)} (context {spec.name})" if path.is_file() else ""
        ui.out.print(f"Ready in {total}.{where}", markup=False)
        ui.out.print(
            "Next: sparkube wordcount book.txt · sparkube status · sparkube down", markup=False
        )
    missing = [p for p in phases.PHASE_ORDER if p not in registered]
    if missing:
        ui.note(f"Not available yet in this version: {', '.join(missing)}.")


@contextmanager
def _interrupted_says(message: str) -> Iterator[None]:
    """Ctrl-C: exit 130 with what to do (Typer would exit 130 silently)."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(message) from None


def _home(env: Environment, path: Path) -> str:
    """``path`` with the user's home shown as ``~``."""
    home = env.environ.get("HOME")
    if home and path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)


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
    """Delete the cluster and everything tagged with it, then check nothing remains.

    Works without the local files (everything is found by tag). Asks first unless --yes.

    Examples: sparkube down · sparkube down -c analytics --yes --keep-data
    """
    from sparkube import phases
    from sparkube.aws import discovery

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    _need_region(
        env,
        spec.region,
        known=f"Cannot delete cluster {spec.name}: no AWS region is set to find its resources in",
        unknown=f"Nothing is known on this machine about cluster {spec.name}, and no AWS "
        "region is set to look for it in AWS",
        name=spec.name,
    )
    provider = _provider(ctx, spec.region)
    with ui.waiting(f"Looking for cluster {spec.name} in {provider.region}"):
        info = provider.describe(spec.name)

    if discovery.is_empty(info) and not env.cluster_dir(spec.name).exists():
        ui.out.print(
            f"Nothing to delete: no resource tagged sparkube:cluster={spec.name} in "
            f"{provider.region}."
        )
        return
    with cluster_lock(env, spec.name, "down", remove=True):
        what = discovery.leftovers(info, keep_data=keep_data)
        _confirm_down(ui, env, spec.name, provider.region, yes=yes, what=what)
        with _interrupted_says("Interrupted; run 'sparkube down' again to finish deleting."):
            result = phases.run_down(
                provider, spec.name, keep_data=keep_data, reporter=RichReporter(ui.err),
                existing=info,
            )  # fmt: skip
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


def _confirm_down(
    ui: UI, env: Environment, name: str, region: str, *, yes: bool, what: list[str]
) -> None:
    """Ask (or refuse without a terminal) unless ``--yes``; jobs still running on the
    cluster are named first, and while any runs only ``--yes`` deletes it."""
    from sparkube.spark.running import running_jobs

    running = running_jobs(env, name)
    if running.jobs:
        listed = ", ".join(f"{j.job_id} ({j.app})" for j in running.jobs)
        count = "1 job is" if len(running.jobs) == 1 else f"{len(running.jobs)} jobs are"
        if not yes:
            raise UsageError(
                f"{count} still running on cluster {name} ({listed}); wait for it to end "
                "(sparkube jobs) or pass --yes to delete the cluster and stop it."
            )
        ui.note(f"stopping with the cluster: {count} running ({listed})")
    elif running.reason:
        ui.note(f"could not check for running jobs: {running.reason}")
    if yes:
        return
    if not env.interactive:
        raise UsageError(f"Refusing to delete cluster {name} without confirmation; pass --yes.")
    ui.err.print(f"This deletes cluster {name} in {region}: " + "; ".join(what))
    if not typer.confirm("Delete it?", default=False, err=True):
        raise typer.Exit(1)


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
    """One row per node (the role is in the name; private IPs are in ``-o json``)."""
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("node", no_wrap=True)
    for c in ("type", "state"):
        table.add_column(c)
    table.add_column("public IP", no_wrap=True)
    table.add_column("uptime")
    if prices is not None:
        table.add_column("$/h")
        table.add_column("$ so far")
    for node in info.nodes:
        row = [
            node.name,
            node.instance_type + (" spot" if node.spot else ""),
            node.state,
            node.public_ip or "-",
            clock(_hours(node, now) * 3600),
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
    """Phases done, nodes (addresses, uptime), time left, cost so far and per hour.

    Examples: sparkube status · sparkube status -c analytics -o json
    """
    from sparkube.nodes.kubeconfig import kubeconfig_path

    output = check_output(output)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    _need_region(
        env,
        spec.region,
        known=f"Cannot look up cluster {spec.name}: no AWS region is set",
        unknown=f"No cluster {spec.name} is known on this machine, and no AWS region is "
        "set to look for it in AWS",
        name=spec.name,
    )
    provider = _provider(ctx, spec.region)
    with ui.waiting(f"Looking for cluster {spec.name} in {provider.region}"):
        info = provider.describe(spec.name)
        prices = _prices(provider, info.nodes, provider.region)
    from sparkube.aws import discovery

    now = datetime.now(UTC)
    per_hour = _sum([_node_cost(n, prices) for n in info.nodes])
    so_far = _sum(
        [
            None if _node_cost(n, prices) is None else (_node_cost(n, prices) or 0) * _hours(n, now)
            for n in info.nodes
        ]
    )
    exists = not discovery.is_empty(info)
    done, pending = _phases_done(info) if exists else ([], [])
    kubeconfig = kubeconfig_path(env, info.name)
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
                    "phases_done": done,
                    "phases_pending": pending,
                    "kubeconfig": str(kubeconfig) if kubeconfig.is_file() else None,
                    "nodes": [_node_json(n, prices, now) for n in info.nodes],
                }
            )
        )
    if not exists:  # the JSON above says so too ("exists": false); the exit code is 2
        raise NoSuchCluster.in_region(info.name, info.region)
    if output == "json":
        return
    left = _left(info.expires_at, now)
    ui.out.print(
        f"Cluster {info.name} · {info.region} · {len(info.nodes)} nodes · "
        f"{_money(per_hour)} · so far {'?' if so_far is None else f'${so_far:.2f}'} · "
        + ("no TTL" if left == "-" else f"time left {left}"),
        markup=False,
    )
    phase_line = Text("Phases: ")
    for name in done:
        phase_line.append("✓ ", style="green").append(f"{name}  ")
    for name in pending:
        phase_line.append(f"· {name}  ", style="dim")
    if pending:
        phase_line.append(f"— 'sparkube up' runs {', '.join(pending)}")
    ui.out.print(phase_line, soft_wrap=not ui.out.is_terminal)
    if info.nodes:
        _nodes_table(ui, info, prices, now)
    resources = Table.grid(padding=(0, 2))
    for kind, value in (
        ("security group", info.security_group_id),
        ("key pair", info.key_name),
        ("IAM role", info.role_name),
        ("instance profile", info.instance_profile),
        ("S3 bucket", info.bucket),
        (
            "kubeconfig",
            f"{_home(env, kubeconfig)} (context {info.name})" if kubeconfig.is_file() else None,
        ),
    ):
        resources.add_row(kind, escape(value) if value else "[dim]missing[/dim]")
    ui.out.print(resources)


def _phases_done(info: ClusterInfo) -> tuple[list[str], list[str]]:
    """Phases of ``up`` done for the current nodes, and the rest: ``infra`` from what
    exists, the later ones as ``up`` recorded them."""
    from sparkube import phases
    from sparkube.aws import discovery

    names = [p.name for p in phases.available()]
    upto = 0
    if names and discovery.infra_complete(info):
        recorded = info.done_phase
        upto = max(1, names.index(recorded) + 1 if recorded in names else 0)
    return names[:upto], names[upto:]


@app.command(name="ls", rich_help_panel=PANEL)
def ls_(
    ctx: typer.Context,
    all_regions: Annotated[
        bool, typer.Option("--all-regions", help="Look in every enabled region.")
    ] = False,
    output: OutputOption = "text",
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            "-c",
            help="Only this cluster (with --all-regions: find which regions it is in). "
            "Default: every cluster.",
            show_default=False,
        ),
    ] = None,
    region: RegionOption = None,
) -> None:
    """Every sparkube cluster found by tag, with cost per hour and time left.

    Examples: sparkube ls · sparkube ls --all-regions -o json · sparkube ls -c analytics
    --all-regions
    """
    output = check_output(output)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    from sparkube.aws.session import LISTING_REGION, configured_region

    # Only the flags: ls lists every cluster unless --cluster names one (the name of
    # $SPARKUBE_CLUSTER or sparkube.yaml is not a filter).
    spec = load_spec(env=env, flags={"name": cluster, "region": region}, use_file=False)
    only = spec.name if cluster is not None else None
    home = configured_region(env.environ, spec.region)
    if home is None and not all_regions:
        raise UsageError(
            "No AWS region is set, so there is no region to list clusters in; pass "
            "--region REGION (or set AWS_REGION), or --all-regions to look in every region."
        )
    # --all-regions needs no region of its own: the account's regions are asked for in
    # LISTING_REGION when none is set.
    provider = _provider(ctx, home or LISTING_REGION)
    where = "every region" if all_regions else provider.region
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    with ui.waiting(f"Looking for sparkube clusters in {where}"):
        for c in provider.list_clusters(all_regions=all_regions):
            if only is not None and c.name != only:
                continue
            prices = _prices(provider, c.nodes, c.region)
            rows.append(_summary(c, prices, now))
    if output == "json":
        ui.out.print_json(json.dumps(rows))
        return
    if not rows:
        where = "any region" if all_regions else provider.region
        what = f"cluster {only}" if only else "sparkube cluster"
        ui.out.print(f"No {what} in {where}.")
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
