"""``sparkube doctor``: render the preflight checks of :mod:`sparkube.doctor`."""

from __future__ import annotations

import json
from dataclasses import asdict

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
from sparkube.errors import ExitStatus

#: Colours of the statuses of :mod:`sparkube.doctor` (imported when the command runs).
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@app.command(rich_help_panel="Cluster")
def doctor(
    ctx: typer.Context,
    cluster: ClusterOption = None,
    region: RegionOption = None,
    output: OutputOption = "text",
) -> None:
    """Check that this machine and your AWS account are ready: Java, PySpark (and the
    cluster's Spark beside it), ssh, credentials, region, instance types, vCPU quota,
    public IP. Writes nothing.

    Exits 1 if a check failed; warnings do not fail. Each problem comes with a fix.

    Examples: sparkube doctor · sparkube doctor --region eu-west-1 -o json
    """
    from sparkube import doctor as checks_

    fmt = check_output(output)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    results = checks_.run_checks(env, spec)
    failed = checks_.failed(results)
    if fmt == "json":
        from sparkube.spark.versions import spark_versions

        report = {
            "ok": not failed,
            "checks": [asdict(c) for c in results],
            "versions": spark_versions(spec.image).as_dict(),
        }
        ui.out.print_json(json.dumps(report))
    else:
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("check", style="bold")
        table.add_column("status")
        table.add_column("finding / fix", overflow="fold")  # image refs, paths: whole
        for c in results:
            text = escape(c.finding)
            if c.status != checks_.OK and c.fix:
                text += f"\n[dim]fix:[/dim] {escape(c.fix)}"
            table.add_row(escape(c.name), f"[{_STYLE[c.status]}]{c.status}[/]", text)
        ui.out.print(table)
        warnings = sum(c.status == checks_.WARN for c in results)
        if failed:
            ui.error(f"{sum(c.status == checks_.FAIL for c in results)} check(s) failed.")
        elif warnings:
            ui.ok(f"Ready, with {warnings} warning(s).")
        else:
            ui.ok("Ready.")
    if failed:
        raise typer.Exit(code=int(ExitStatus.FAILED))
