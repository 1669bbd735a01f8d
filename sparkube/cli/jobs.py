"""Commands that run Spark jobs: ``wordcount`` and ``submit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sparkube.cli.app import app
from sparkube.cli.options import ClusterOption, RegionOption, VerboseOption
from sparkube.cli.ui import UI, context
from sparkube.errors import JobError
from sparkube.spark import jobs, local
from sparkube.spark.java import find_java
from sparkube.spec import load_spec


def _human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover


def _display_path(path: Path, cwd: Path) -> str:
    try:
        return "./" + str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _spark_lines(ui: UI, verbose: bool) -> local.LineHandler:
    def handle(stream: str, line: str) -> None:
        if verbose:
            ui.err.print(line, markup=False, highlight=False)

    return handle


@app.command(rich_help_panel="Jobs")
def wordcount(
    ctx: typer.Context,
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="UTF-8 text files or directories (all files inside); .gz files are read "
            "compressed.",
            show_default=False,
        ),
    ],
    local_: Annotated[
        bool, typer.Option("--local", help="Run on embedded Spark even if a cluster is up.")
    ] = False,
    top: Annotated[int, typer.Option("--top", "-n", help="How many top words to print.")] = 20,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Where wordcount.csv goes. Default: ./sparkube-runs/JOB-ID/",
            show_default=False,
        ),
    ] = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Count words in text files with Spark, exactly and at any size.

    A word is a run of Unicode letters and digits; an apostrophe between two of them
    joins them ("don't"). Words are lower-cased. The full result is written to
    wordcount.csv (word,count; most frequent first) and the top words are printed.

    Example: [bold]sparkube wordcount examples/genesis-kjv.txt --top 10[/bold]
    """
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    job_id = jobs.new_job_id("wc")
    placement = jobs.choose_placement(env, spec.name, local_flag=local_)
    java = find_java(env.environ)
    settings = local.LocalSettings.from_environ(env.environ, verbose=verbose)
    files, out_dir, created = jobs.prepare_wordcount(
        inputs, top=top, output_dir=output_dir, env=env, job_id=job_id
    )
    if not local_:
        ui.note(placement.reason)
    total = sum(f.size for f in files)
    ui.note(f"Running on embedded Spark ({settings.master}, Java {java.major})  job {job_id}")
    what = f"{len(files)} file{'s' if len(files) != 1 else ''} ({_human_size(total)})"
    with ui.err.status(f"Counting words in {what}…", spinner="dots"):
        result = jobs.run_wordcount_local(
            files,
            output_dir=out_dir,
            top=top,
            job_id=job_id,
            environ=env.environ,
            settings=settings,
            on_line=_spark_lines(ui, verbose),
            created=created,
        )
    ui.ok(f"counted {what} in {result.seconds:.1f} s")
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("word", style="bold")
    table.add_column("count", justify="right")
    for word, count in result.top:
        table.add_row(escape(word), f"{count:,}")
    ui.out.print(table)
    ui.out.print(
        f"{result.words:,} words · {result.distinct:,} distinct · {result.seconds:.1f} s · "
        f"results in {escape(_display_path(result.csv, env.cwd))}"
    )


@app.command(
    rich_help_panel="Jobs",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def submit(
    ctx: typer.Context,
    application: Annotated[
        Path,
        typer.Argument(help="A PySpark script (.py), or a .jar with --class.", show_default=False),
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(help="Arguments passed to the application.", show_default=False),
    ] = None,
    local_: Annotated[
        bool, typer.Option("--local", help="Run on embedded Spark even if a cluster is up.")
    ] = False,
    main_class: Annotated[
        str | None, typer.Option("--class", help="Main class of a JAR application.")
    ] = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run your own Spark application and exit with its exit code.

    The application's output streams to the terminal. Put options meant for the
    application after [bold]--[/bold].

    Example: [bold]sparkube submit --local etl.py -- --day 2026-11-25[/bold]
    """
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    app_path = application if application.is_absolute() else env.cwd / application
    placement = jobs.choose_placement(env, spec.name, local_flag=local_)
    find_java(env.environ)
    if not local_:
        ui.note(placement.reason)

    def stream(name: str, line: str) -> None:
        if not verbose and local.is_noise(line):
            return
        console = ui.out if name == "stdout" else ui.err
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    code = jobs.run_submit_local(
        app_path,
        [*(args or []), *ctx.args],
        environ=env.environ,
        settings=local.LocalSettings.from_environ(env.environ, verbose=verbose),
        on_line=stream,
        main_class=main_class,
        cwd=env.cwd,
    )
    if code != 0:
        raise JobError(f"{application.name} exited with code {code}.", exit_code=code)
