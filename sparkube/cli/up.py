"""``sparkube up``: check the settings against AWS (the plan), confirm, then run the
phases of :mod:`sparkube.phases`; re-running resumes."""

from __future__ import annotations

from typing import Annotated

import typer

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
    YesOption,
    aws_provider,
    cluster_spec,
    interrupted_says,
)
from sparkube.cli.options import ClusterOption, RegionOption
from sparkube.cli.progress import RichReporter, clock
from sparkube.cli.render import home_path, plan_header
from sparkube.cli.ui import context
from sparkube.lock import cluster_lock


@app.command(rich_help_panel=PANEL)
def up(
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
    in its tags); a larger --workers adds workers; a new --max-workers updates the worker
    group; other different settings are refused. Workers run in an Auto Scaling group
    between --workers (its minimum, which up launches) and --max-workers.

    Examples: sparkube up --workers 3 --ttl 4h · sparkube up (resume) ·
    sparkube up --until infra · sparkube up --allow-cidr 203.0.113.0/24
    """
    from sparkube import phases
    from sparkube.nodes.kubeconfig import kubeconfig_path

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = cluster_spec(ctx)
    selected = phases.select(until)
    provider = aws_provider(ctx, spec.region)
    with ui.waiting(f"Checking the settings against AWS in {provider.region}"):
        the_plan = provider.plan(spec)  # validates everything before any write
    plan_header(ui, the_plan)
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
        interrupted_says(
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
        where = (
            f"  kubeconfig: {home_path(env, path)} (context {spec.name})" if path.is_file() else ""
        )
        ui.out.print(f"Ready in {total}.{where}", markup=False)
        ui.out.print(
            "Next: sparkube wordcount book.txt · sparkube status · sparkube down", markup=False
        )
    missing = [p for p in phases.PHASE_ORDER if p not in registered]
    if missing:
        ui.note(f"Not available yet in this version: {', '.join(missing)}.")
