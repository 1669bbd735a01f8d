"""``sparkube down``: delete everything tagged with the cluster (found by tag, no local
files needed), then check that nothing remains."""

from __future__ import annotations

from typing import Annotated

import typer

from sparkube.cli.app import app
from sparkube.cli.cluster_common import (
    PANEL,
    YesOption,
    aws_provider,
    interrupted_says,
    need_region,
)
from sparkube.cli.options import ClusterOption, RegionOption, load_spec
from sparkube.cli.progress import RichReporter
from sparkube.cli.ui import UI, context
from sparkube.env import Environment
from sparkube.errors import UsageError
from sparkube.lock import cluster_lock


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
    need_region(
        env,
        spec.region,
        known=f"Cannot delete cluster {spec.name}: no AWS region is set to find its resources in",
        unknown=f"Nothing is known on this machine about cluster {spec.name}, and no AWS "
        "region is set to look for it in AWS",
        name=spec.name,
    )
    provider = aws_provider(ctx, spec.region)
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
        with interrupted_says("Interrupted; run 'sparkube down' again to finish deleting."):
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
