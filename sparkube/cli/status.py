"""``sparkube status``: one cluster's phases, nodes, resources, time left and cost."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sparkube.cli.app import app
from sparkube.cli.cluster_common import PANEL, aws_provider, cluster_cost, need_region
from sparkube.cli.options import (
    ClusterOption,
    OutputOption,
    RegionOption,
    check_output,
    load_spec,
)
from sparkube.cli.render import home_path, money, nodes_table, print_json
from sparkube.cli.ui import context
from sparkube.cli.views import StatusView
from sparkube.errors import NoSuchCluster
from sparkube.model import ClusterInfo


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
    from sparkube.aws import discovery
    from sparkube.nodes.kubeconfig import kubeconfig_path

    output = check_output(output)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    need_region(
        env,
        spec.region,
        known=f"Cannot look up cluster {spec.name}: no AWS region is set",
        unknown=f"No cluster {spec.name} is known on this machine, and no AWS region is "
        "set to look for it in AWS",
        name=spec.name,
    )
    provider = aws_provider(ctx, spec.region)
    with ui.waiting(f"Looking for cluster {spec.name} in {provider.region}"):
        info = provider.describe(spec.name)
        exists = not discovery.is_empty(info)
        costs = cluster_cost(provider, info.name, provider.region, info.bucket) if exists else None
    now = datetime.now(UTC)
    kubeconfig = kubeconfig_path(env, info.name)
    view = StatusView.of(
        info,
        costs,
        now,
        exists=exists,
        phases=_phases_done(info) if exists else ([], []),
        kubeconfig=str(kubeconfig) if kubeconfig.is_file() else None,
    )
    if output == "json":
        print_json(ui, view)
    if not exists:  # the JSON above says so too ("exists": false); the exit code is 2
        raise NoSuchCluster.in_region(info.name, info.region)
    if output == "json":
        return
    so_far = view.usd_so_far
    bound = "" if view.cost_exact else "≥"
    ui.out.print(
        f"Cluster {info.name} · {info.region} · {len(info.nodes)} nodes · "
        f"{bound}{money(view.usd_per_hour)} · so far "
        f"{'?' if so_far is None else f'{bound}${so_far:.2f}'} · "
        + ("no TTL" if view.time_left == "-" else f"time left {view.time_left}"),
        markup=False,
    )
    for reason in view.cost_unknown:
        ui.note(f"Not counted: {reason}.")
    phase_line = Text("Phases: ")
    for name in view.phases_done:
        phase_line.append("✓ ", style="green").append(f"{name}  ")
    for name in view.phases_pending:
        phase_line.append(f"· {name}  ", style="dim")
    if view.phases_pending:
        phase_line.append(f"— 'sparkube up' runs {', '.join(view.phases_pending)}")
    ui.out.print(phase_line, soft_wrap=not ui.out.is_terminal)
    if info.nodes:
        nodes_table(ui, info.nodes, costs, now)
    resources = Table.grid(padding=(0, 2))
    for kind, value in (
        ("security group", info.security_group_id),
        ("key pair", info.key_name),
        ("IAM role", info.role_name),
        ("instance profile", info.instance_profile),
        ("S3 bucket", info.bucket),
        (
            "kubeconfig",
            f"{home_path(env, kubeconfig)} (context {info.name})" if view.kubeconfig else None,
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
