"""``sparkube ls``: every sparkube cluster found by tag, in one region or all of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sparkube.cli.app import app
from sparkube.cli.cluster_common import PANEL, aws_provider, cluster_cost
from sparkube.cli.options import OutputOption, RegionOption, check_output, load_spec
from sparkube.cli.render import money, print_json
from sparkube.cli.ui import context
from sparkube.cli.views import ClusterRow
from sparkube.errors import UsageError


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
    provider = aws_provider(ctx, home or LISTING_REGION)
    where = "every region" if all_regions else provider.region
    now = datetime.now(UTC)
    rows: list[ClusterRow] = []
    with ui.waiting(f"Looking for sparkube clusters in {where}"):
        for c in provider.list_clusters(all_regions=all_regions):
            if only is not None and c.name != only:
                continue
            costs = cluster_cost(provider, c.name, c.region, None)
            rows.append(ClusterRow.of(c, costs, now))
    if output == "json":
        print_json(ui, rows)
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
            escape(r.cluster),
            r.region,
            str(r.nodes),
            str(r.running),
            money(r.usd_per_hour).removesuffix("/h"),
            "?" if r.usd_so_far is None else f"${r.usd_so_far:.2f}",
            r.time_left,
        )
    ui.out.print(table)
