"""``sparkube plan``: what ``up`` would create and its cost per hour, or the offline
estimate from the bundled price table when AWS cannot be asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from sparkube.cli.app import app
from sparkube.cli.cluster_common import (
    PANEL,
    AmiOption,
    AptRepoOption,
    CidrOption,
    ConfigOption,
    ContainerdOption,
    ContainerdUrlOption,
    CpTypeOption,
    CpuCreditsOption,
    IdleMinutesOption,
    MaxWorkersOption,
    MinWorkersOption,
    MirrorOption,
    SpotOption,
    SubnetOption,
    TtlOption,
    TypeOption,
    VolumeOption,
    VpcOption,
    WorkersOption,
    aws_provider,
    cluster_spec,
)
from sparkube.cli.options import ClusterOption, OutputOption, RegionOption, check_output
from sparkube.cli.render import (
    cost_notes,
    cost_parts,
    max_line,
    money,
    plan_header,
    print_json,
    total,
)
from sparkube.cli.ui import UI, context
from sparkube.cli.views import OfflinePlanView, PlanView
from sparkube.env import Environment

if TYPE_CHECKING:  # imported where used: '--help' and '--version' load no AWS SDK
    from sparkube.aws.provider import Plan
    from sparkube.spec import ClusterSpec


@app.command(rich_help_panel=PANEL)
def plan(
    ctx: typer.Context,
    config: ConfigOption = None,
    workers: WorkersOption = None,
    min_workers: MinWorkersOption = None,
    max_workers: MaxWorkersOption = None,
    idle_minutes: IdleMinutesOption = None,
    instance_type: TypeOption = None,
    control_plane_type: CpTypeOption = None,
    spot: SpotOption = None,
    cpu_credits: CpuCreditsOption = None,
    allow_cidr: CidrOption = None,
    ami: AmiOption = None,
    ttl: TtlOption = None,
    root_volume_gb: VolumeOption = None,
    vpc_id: VpcOption = None,
    subnet_id: SubnetOption = None,
    kubernetes_apt_repo: AptRepoOption = None,
    registry_mirror: MirrorOption = None,
    containerd: ContainerdOption = None,
    containerd_url: ContainerdUrlOption = None,
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
    spec = cluster_spec(ctx)
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
    provider = aws_provider(ctx, spec.region)
    try:
        with ui.waiting(f"Asking AWS in {provider.region} what exists and what it costs"):
            result = provider.plan(spec)
    except AwsUnreachable as exc:  # offline with credentials: estimate all the same
        _offline_plan(
            ui,
            spec,
            output,
            reason=f"AWS cannot be reached: {exc.short}",
            env=app_ctx.env,
            offline=offline,
            unreachable=True,
        )
        return
    if output == "json":
        print_json(ui, PlanView.of(result))
        return
    plan_header(ui, result, notes=False)
    _plan_table(ui, result)


def _plan_table(ui: UI, result: Plan) -> None:
    """What exists and what ``up`` would create, then the total, on stdout."""
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
            f"{i.count} × {i.instance_type}"
            + (f" ({new} new)" if i.existing and new else "")
            + (
                f" (group of {i.count} to {i.max_count})"
                if i.max_count is not None and i.max_count != i.count
                else ""
            )
        )
        text.append(
            f"  {i.vcpus} vCPU, {i.memory_mib / 1024:g} GiB, {i.architecture}, {i.ami}, "
            f"{i.root_volume_gb} GiB gp3 encrypted"
            + (", spot" if i.spot else "")
            + (f", CPU credits {i.cpu_credits}" if i.cpu_credits else "")
            + ("" if i.public_ipv4 else ", no public IPv4")
            + f", {money(i.usd_per_hour)} each"
            + (
                f" (the first {i.on_demand_count} on-demand at {money(i.on_demand_usd_per_hour)}: "
                "drivers run there)"
                if i.spot and i.on_demand_count
                else ""
            ),
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
    cost = result.cost
    ui.out.print(
        f"Total: {total(cost)} = {cost_parts(cost)} ({cost.market}; prices from "
        f"{cost.sources}){ttl_text}. '+' = to create, '=' = exists.",
        soft_wrap=not ui.out.is_terminal,
        markup=False,
    )
    ui.out.print(
        max_line(cost, result.spec.workers, result.spec.max_count),
        soft_wrap=not ui.out.is_terminal,
        markup=False,
    )
    cost_notes(ui, result.cost_at_max)


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
    from sparkube.aws.instances import ROOT_VOLUME_TYPE, is_burstable
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
        root_volume_gb=spec.root_volume_gb,
        volume_type=ROOT_VOLUME_TYPE,
        public_ipv4=True,  # the default VPC's subnets give each node one
        cpu_credits=spec.cpu_credits,
        max_workers=spec.max_count,
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
    if output == "json":
        source = f"{BUNDLED} ({region}, estimate)"
        print_json(ui, OfflinePlanView.of(spec, region, cost, reason=reason, source=source))
        return

    def credits(itype: str) -> str:
        return f", CPU credits {spec.cpu_credits}" if is_burstable(itype) else ""

    table = Table.grid(padding=(0, 2))
    table.add_row(
        "control plane",
        f"1 × {spec.control_plane_type}",
        money(cost.control_plane.usd_per_hour) + credits(spec.control_plane_type),
    )
    table.add_row(
        "workers",
        f"{spec.workers} × {spec.instance_type}"
        + (f" (up to {spec.max_count})" if spec.max_count > spec.workers else "")
        + (" spot" if spec.spot else ""),
        f"{money(cost.worker.usd_per_hour)} each"
        + (" (spot priced at on-demand)" if spec.spot and spec.workers else "")
        + (credits(spec.instance_type) if spec.workers else ""),
    )
    table.add_row(
        "volumes",
        f"{cost.nodes} × {spec.root_volume_gb} GiB {ROOT_VOLUME_TYPE}",
        money(cost.volumes_usd_per_hour),
    )
    table.add_row(
        "public IPv4",
        f"{cost.addresses} address{'es' if cost.addresses != 1 else ''}",
        money(cost.addresses_usd_per_hour),
    )
    ui.out.print(f"Cluster {spec.name} · {region} · offline estimate", markup=False)
    ui.out.print(table)
    ttl_text = (
        f" · nodes terminate themselves after {format_duration(spec.ttl)}" if spec.ttl else ""
    )
    ui.out.print(
        f"Total: {total(cost)} = {cost_parts(cost)} ({cost.market}; estimated from the "
        f"{BUNDLED} for {region}, not checked with AWS){ttl_text}.",
        markup=False,
        soft_wrap=not ui.out.is_terminal,
    )
    ui.out.print(
        max_line(cost, spec.workers, spec.max_count),
        markup=False,
        soft_wrap=not ui.out.is_terminal,
    )
    cost_notes(ui, cost.with_workers(spec.max_count))
