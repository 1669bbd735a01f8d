"""Commands that run Spark jobs: ``wordcount`` and ``submit``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sparkube.cli.app import app
from sparkube.cli.options import (
    ClusterOption,
    OutputOption,
    RegionOption,
    VerboseOption,
    check_output,
    load_spec,
)
from sparkube.cli.stages import LocalProgress, StartingSpark
from sparkube.cli.ui import UI, context
from sparkube.controller import interruptions
from sparkube.env import Environment
from sparkube.errors import InputError, Interrupted, JobError, UsageError
from sparkube.spark import cluster as cluster_jobs
from sparkube.spark import failures, jobs, local
from sparkube.spark.java import find_java
from sparkube.spark.records import JobRecord
from sparkube.spark.watch import Progress, queue_message

if TYPE_CHECKING:
    from sparkube.cost.jobs import Rework


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


DriverMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--driver-memory",
        help="Heap of the Spark driver, e.g. 4g. Locally the embedded Spark's one JVM, "
        "whose heap its executor threads share (default: $SPARKUBE_DRIVER_MEMORY, else "
        "2g); on the cluster the driver pod's (default: 1g).",
        show_default=False,
    ),
]


#: ``-o`` was the output folder of wordcount and submit; it means ``--output`` (the
#: format) on other commands, so here it is refused rather than taken for an argument.
OldOutputOption = Annotated[str | None, typer.Option("-o", hidden=True, show_default=False)]


def _refuse_dash_o(value: str | None) -> None:
    if value is not None:
        raise UsageError(
            f"-o is not the output folder any more (elsewhere it is --output, the format); "
            f"pass --output-dir {value}."
        )


def _driver_memory(value: str | None) -> str | None:
    """--driver-memory checked once, wherever the job runs (exit 2 naming the flag)."""
    return None if value is None else local.memory_size(value, f"--driver-memory {value!r}")


def _local_banner(
    lead: str, settings: local.LocalSettings, java_major: int, job_id: str, how: str = ""
) -> str:
    """The one line saying a job runs on embedded Spark: where, with what, its id."""
    return (
        f"{lead} on embedded Spark ({settings.master}{how}, driver memory "
        f"{settings.driver_memory}, Java {java_major})  job {job_id}"
    )


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
            help="Where wordcount.csv goes. Default: ./sparkube-runs/JOB-ID/",
            show_default=False,
        ),
    ] = None,
    driver_memory: DriverMemoryOption = None,
    dash_o: OldOutputOption = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Count words in text files with Spark, exactly and at any size.

    A word starts with a Unicode letter or digit and continues through letters, digits
    and combining marks (accents, vowel signs); an apostrophe followed by a letter or
    digit joins ("don't"). Words are lower-cased. On a cluster the inputs go to its
    bucket and the result is byte for byte what a local run writes. The full result is written to
    wordcount.csv (word,count; most frequent first) and the top words are printed.

    Locally, after a first run at a terminal, sparkube builds in the background a Java
    class-data archive (~170 MB in ~/.cache/sparkube/cds) that makes Spark start faster;
    SPARKUBE_CDS=off turns it off.

    Example: [bold]sparkube wordcount examples/genesis-kjv.txt --top 10[/bold]
    """
    _refuse_dash_o(dash_o)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    driver_memory = _driver_memory(driver_memory)
    job_id = jobs.new_job_id("wc")
    placement = jobs.choose_placement(env, spec.name, local_flag=local_)
    if placement.local:
        java = find_java(env.environ)
        settings = local.LocalSettings.from_environ(
            env.environ, verbose=verbose, interactive=env.interactive, driver_memory=driver_memory
        )
    files, out_dir, created = jobs.prepare_wordcount(
        inputs, top=top, output_dir=output_dir, env=env, job_id=job_id
    )
    total = sum(f.size for f in files)
    what = f"{len(files)} file{'s' if len(files) != 1 else ''} ({_human_size(total)})"
    result = jobs.wordcount_of_nothing(files, output_dir=out_dir, job_id=job_id)
    if result is not None:
        ui.note(
            f"The input{'s are' if len(files) != 1 else ' is'} empty: 0 words, no Spark job run."
        )
    elif not placement.local:
        api = jobs.open_cluster(env, spec.name)
        config = api.config()
        res = jobs.resources_for(config, driver_memory=driver_memory, api=api)
        ui.note(f"Running on cluster {spec.name} ({res.describe()})  job {job_id}")
        with _job_interrupts(ui, env, api, job_id), ui.err.status("Starting…") as status:
            result = jobs.run_wordcount_cluster(
                api,
                files,
                output_dir=out_dir,
                top=top,
                job_id=job_id,
                resources=res,
                on_status=lambda text: status.update(text),
                on_progress=lambda p: status.update(_progress_line(p)),
                on_log=(lambda line: ui.err.print(line, markup=False)) if verbose else None,
                on_interruption=ui.note,
                created=created,
            )
        ui.ok(f"counted {what} in {result.seconds:.1f} s")
    else:
        lead = "Running" if local_ else f"No cluster {spec.name} is up; running"
        ui.note(_local_banner(lead, settings, java.major, job_id))
        # Elapsed time and the stage the job reports (issue 11), live or as plain lines.
        with LocalProgress(ui.err, what, verbose=verbose) as progress:
            result = jobs.run_wordcount_local(
                files,
                output_dir=out_dir,
                top=top,
                job_id=job_id,
                environ=env.environ,
                settings=settings,
                on_line=progress.on_line,
                created=created,
            )
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
        str | None,
        typer.Option(
            "--class", help="Main class of a JAR application. Default: none (a .py script)."
        ),
    ] = None,
    inputs: Annotated[
        list[Path] | None,
        typer.Option(
            "--input",
            help="A file or folder the application reads (repeatable). On the cluster it is "
            "uploaded to the cluster's bucket (once per content) and passed as an s3a:// "
            "path; locally as its path. Inputs are appended to the application's arguments. "
            "Default: none.",
            show_default=False,
        ),
    ] = None,
    executors: Annotated[
        int | None,
        typer.Option(
            "--executors",
            help="A fixed number of executors on the cluster. Default: dynamic "
            "allocation, starting with one per worker: Spark adds executors while tasks "
            "wait (up to what the workers hold at --max-workers) and gives back those idle "
            "for a minute, down to 1. Locally Spark runs --executors × --executor-cores "
            "threads in one JVM (local[N]).",
            show_default=False,
        ),
    ] = None,
    executor_cores: Annotated[
        int | None,
        typer.Option(
            "--executor-cores",
            help="Cores per executor. Default: the worker's vCPUs minus one (at least 1); "
            "locally see --executors.",
            show_default=False,
        ),
    ] = None,
    executor_memory: Annotated[
        str | None,
        typer.Option(
            "--executor-memory",
            help="Heap per executor on the cluster (e.g. 2g). Default: 40% of a worker's "
            "memory, less Spark's 384 MiB overhead, so a default job fits next to its "
            "driver. Locally refused: use --driver-memory.",
            show_default=False,
        ),
    ] = None,
    driver_memory: DriverMemoryOption = None,
    conf: Annotated[
        list[str] | None,
        typer.Option(
            "--conf",
            help="A Spark property KEY=VALUE (repeatable), on the cluster and locally. "
            "Default: none.",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            help="Where the files the application writes under $SPARKUBE_OUTPUT end up "
            "(downloaded from the cluster; locally $SPARKUBE_OUTPUT is this folder). "
            "Default: ./sparkube-runs/JOB-ID/ when it wrote any.",
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Stream the driver's log while it runs (always, locally)."
        ),
    ] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Print the job id and return once it is submitted (cluster only).",
        ),
    ] = False,
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "--files",
            help="A file or folder inside the current folder that the application opens "
            "by its relative path (repeatable): on the cluster the driver and every "
            "executor find it at the same path in their working directory. Default: none.",
            show_default=False,
        ),
    ] = None,
    py_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--py-files",
            help="A module (.py), package folder or .zip the application imports "
            "(repeatable), inside the current folder; importable on the driver and "
            "every executor. Default: none.",
            show_default=False,
        ),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option(
            "--requirements",
            "-r",
            help="A pip requirements file: the packages are installed for the cluster "
            "image's Python and platform (wheels only; kept in the cluster's bucket, so "
            "the same requirements are built once), or locally into a cached folder. "
            "Default: none.",
            show_default=False,
        ),
    ] = None,
    pip: Annotated[
        list[str] | None,
        typer.Option(
            "--pip",
            help="A package to install for the job, as pip takes it (repeatable), e.g. "
            "--pip numpy==2.2.6. Default: none.",
            show_default=False,
        ),
    ] = None,
    dash_o: OldOutputOption = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run your own Spark application and exit with its exit code.

    On the cluster the driver runs inside it (no Java needed here); the application
    finds an s3a:// folder for its results in $SPARKUBE_OUTPUT. Locally its output
    streams to the terminal and $SPARKUBE_OUTPUT is a local folder, so the same script
    runs unchanged. A failure ends with the exception in one line; Spark's own log is
    in the job's folder. Put options meant for the application after [bold]--[/bold].

    Example: [bold]sparkube submit etl.py --input data/ --executors 3 -- --day 2026-11-25[/bold]
    """
    _refuse_dash_o(dash_o)
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    conf_map = jobs.parse_conf(conf or [])  # exit 2 wherever the job would run
    driver_memory = _driver_memory(driver_memory)
    conf_memory = conf_map.get("spark.driver.memory")
    if driver_memory is not None and conf_memory is not None and conf_memory != driver_memory:
        raise UsageError(
            f"--driver-memory {driver_memory} and --conf spark.driver.memory={conf_memory} "
            "disagree; pass only one of them."
        )
    app_path = application if application.is_absolute() else env.cwd / application
    extras = jobs.JobExtras(
        files=tuple(files or ()), py_files=tuple(py_files or ()),
        requirements=(env.cwd / requirements) if requirements else None,
        pip=tuple(pip or ()), cwd=env.cwd, environ=env.environ,
    ).checked()  # fmt: skip
    placement = jobs.choose_placement(env, spec.name, local_flag=local_)
    app_args = [*(args or []), *ctx.args]
    input_paths = [p if p.is_absolute() else env.cwd / p for p in inputs or []]
    if not placement.local:
        _submit_cluster(
            env, ui, spec.name, app_path, app_args,
            inputs=input_paths, main_class=main_class, executors=executors,
            executor_cores=executor_cores, executor_memory=executor_memory,
            driver_memory=driver_memory, conf=conf_map, output_dir=output_dir,
            follow=follow, no_wait=no_wait, verbose=verbose, extras=extras,
        )  # fmt: skip
        return
    if executor_memory is not None:
        raise UsageError(
            "--executor-memory sizes the cluster's executors; locally they are threads "
            "of one JVM, so give it more with --driver-memory instead."
        )
    if no_wait:
        raise UsageError(
            "--no-wait needs a cluster (a local job lives in this process); drop it, or "
            "run 'sparkube up' first and submit there."
        )
    for flag, value in (("--executors", executors), ("--executor-cores", executor_cores)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be at least 1 (got {value}).")
    java = find_java(env.environ)
    jobs.check_application(app_path, main_class)
    for path in input_paths:
        if not path.exists():
            raise InputError(f"Input {path} does not exist; check the path.")
    settings = local.LocalSettings.from_environ(
        env.environ,
        verbose=verbose,
        interactive=env.interactive,
        driver_memory=driver_memory or conf_memory,
    )
    settings = replace(settings, extra_conf=conf_map)
    how = ""
    if executors is not None or executor_cores is not None:
        settings = replace(settings, cores=(executors or 1) * (executor_cores or 1))
        how = f" = --executors {executors or 1} × --executor-cores {executor_cores or 1}"
    job_id = jobs.new_job_id("job")
    lead = "Running" if local_ else f"No cluster {spec.name} is up; running"
    ui.note(_local_banner(lead, settings, java.major, job_id, how))
    _run_local_submit(
        env, ui, app_path, [*app_args, *(str(p) for p in input_paths)],
        settings=settings, job_id=job_id, main_class=main_class, output_dir=output_dir,
        verbose=verbose, python_path=extras.local_python_path(),
    )  # fmt: skip


def _run_local_submit(
    env: Environment,
    ui: UI,
    app_path: Path,
    app_args: list[str],
    *,
    settings: local.LocalSettings,
    job_id: str,
    main_class: str | None,
    output_dir: Path | None,
    verbose: bool,
    python_path: list[str],
) -> None:
    """Run the application on embedded Spark: its stdout and its own stderr lines as
    they come, Spark's records only in the job's log (all of it with --verbose), and a
    failure as the application's traceback and one line naming the exception."""
    sorter = failures.StderrSorter()
    lock = threading.Lock()

    with StartingSpark(ui.err) as starting:

        def show(name: str, line: str) -> None:
            starting.stop()
            console = ui.out if name == "stdout" else ui.err
            console.print(line, markup=False, highlight=False, soft_wrap=True)

        def stream(name: str, line: str) -> None:
            with lock:
                if name == "stdout":
                    if verbose or not failures.is_noise(line):
                        show(name, line)
                    return
                released = sorter.feed(line)
                if verbose:
                    show(name, line)
                    return
                for each in released:
                    show(name, each)

        result = jobs.run_submit_local(
            app_path,
            app_args,
            environ=env.environ,
            settings=settings,
            job_id=job_id,
            cwd=env.cwd,
            output_dir=output_dir,
            on_line=stream,
            main_class=main_class,
            keep_log=lambda: sorter.hidden > 0,
            python_path=python_path,
        )
    block = sorter.release() if sorter.holding else []
    failure = None
    if result.exit_code != 0:
        failure = failures.parse_failure(sorter.last_traceback if block else result.stderr_tail)
    if result.outputs:
        n = len(result.outputs)
        where = _display_path(result.output_dir, env.cwd)
        ui.note(f"{n} output file{'s' if n != 1 else ''} in {where}")
    if result.log is not None:
        shown = "" if verbose else " (--verbose shows it here)"
        ui.note(f"Spark's log: {_display_path(result.log, env.cwd)}{shown}")
    if not verbose:  # the traceback held back, condensed when it ended the job
        lines = list(failure.traceback) if failure is not None and block else block
        for line in lines:
            ui.err.print(line, markup=False, highlight=False, soft_wrap=True)
    name = app_path.name
    if result.exit_code == 0:
        ui.ok(f"{name} succeeded on embedded Spark (job {job_id})")
        return
    if result.out_of_memory:
        raise JobError(
            f"{name} ran out of memory (driver memory {settings.driver_memory}); pass "
            f"--driver-memory {local.larger_memory(settings.driver_memory)}.",
            exit_code=result.exit_code,
        )
    if failure is not None:
        raise JobError(f"{name} failed: {failure.summary}", exit_code=result.exit_code)
    raise JobError(f"{name} exited with code {result.exit_code}.", exit_code=result.exit_code)


def _progress_line(p: Progress) -> str:
    minutes, seconds = divmod(int(p.elapsed), 60)
    if p.driver_phase == "Queued":
        said = queue_message(p.position, p.waits_for)
        return f"Queued ({said}) · {minutes}:{seconds:02d}"
    if p.dynamic:
        executors = f"{p.executors_running} executors (dynamic {p.dynamic})"
    else:
        executors = f"{p.executors_running}/{p.executors_wanted} executors"
    if p.executors_pending:
        executors += f" ({p.executors_pending} pending)"
    detail = f" ({p.detail})" if p.detail else ""
    return f"driver {p.driver_phase}{detail} · {executors} · {minutes}:{seconds:02d}"


@contextlib.contextmanager
def _job_interrupts(
    ui: UI, env: Environment, api: cluster_jobs.ClusterJobs, job_id: str
) -> Iterator[None]:
    """Ctrl-C while a job runs: on a terminal, ask whether to cancel it or leave it
    running; without one, cancel it. Either way sparkube then exits 130."""
    try:
        yield
    except KeyboardInterrupt:
        cancel = True
        if env.interactive:
            try:
                cancel = typer.confirm(
                    f"Cancel job {job_id} (delete its pods)? No leaves it running", default=True
                )
            except (KeyboardInterrupt, typer.Abort):
                cancel = True
        if cancel:
            api.cancel(job_id)
            raise Interrupted(f"Interrupted; job {job_id} was cancelled.") from None
        raise Interrupted(
            f"Interrupted; job {job_id} keeps running: sparkube logs {job_id} --follow, "
            f"sparkube cancel {job_id}."
        ) from None


def _submit_cluster(
    env: Environment,
    ui: UI,
    cluster: str,
    app_path: Path,
    app_args: list[str],
    *,
    inputs: list[Path],
    main_class: str | None,
    executors: int | None,
    executor_cores: int | None,
    executor_memory: str | None,
    driver_memory: str | None,
    conf: dict[str, str],
    output_dir: Path | None,
    follow: bool,
    no_wait: bool,
    verbose: bool,
    extras: jobs.JobExtras,
) -> None:
    jobs.check_application(app_path, main_class)
    if output_dir is not None:
        from sparkube.spark.inputs import check_output_dir

        check_output_dir(output_dir if output_dir.is_absolute() else env.cwd / output_dir)
    api = jobs.open_cluster(env, cluster)
    config = api.config()
    res = jobs.resources_for(
        config, executors=executors, executor_cores=executor_cores,
        executor_memory=executor_memory, driver_memory=driver_memory, api=api,
    )  # fmt: skip
    job_id = jobs.new_job_id("job")
    size = api.effective_size(res, conf)  # (what --conf makes of it)
    ui.note(f"Running on cluster {cluster} ({size.describe()})  job {job_id}")
    with ui.err.status("Uploading…") as status:
        submission = jobs.prepare_submit_cluster(
            api, app_path, app_args, job_id=job_id, inputs=inputs, main_class=main_class,
            resources=res, conf=conf, on_status=lambda text: status.update(text),
            extras=extras,
        )  # fmt: skip
        uploaded = sum(u.size for u in submission.uploads if u.uploaded)
        if submission.uploads:
            ui.ok(
                f"inputs in s3://{config.bucket}/ ({_human_size(uploaded)} uploaded, "
                f"{sum(1 for u in submission.uploads if not u.uploaded)} already there)"
            )
        status.update("submitting the driver")
        api.submit(submission.spec)
    if no_wait:
        ui.out.print(job_id)
        ui.note(f"Submitted; follow it with sparkube logs {job_id} --follow.")
        return

    view = DriverLog(ui, verbose=verbose)
    with _job_interrupts(ui, env, api, job_id), ui.err.status("driver Pending") as status:
        outcome = api.wait(
            job_id,
            on_progress=lambda p: status.update(_progress_line(p)),
            on_log=view.line if (follow or verbose) else None,
            on_interruption=ui.note,
        )
    if not (follow or verbose):  # the program's own output, as a local run shows it
        for line in outcome.log:
            view.line(line)
    view.end(outcome.failure if outcome.exit_code != 0 else None)
    if outcome.exit_code == 0:
        ui.ok(f"{app_path.name} succeeded on the cluster (job {job_id})")
    wanted = output_dir is not None
    out = output_dir or Path(jobs.RUNS_DIR) / job_id
    out = out if out.is_absolute() else env.cwd / out
    written = jobs.download_outputs(api, job_id, out) if outcome.exit_code == 0 or wanted else []
    if written:
        ui.note(f"{len(written)} output file{'s' if len(written) != 1 else ''} in {out}")
    if outcome.exit_code != 0:
        if view.hidden and not verbose:
            ui.note(f"Spark's log: sparkube logs {job_id} --verbose")
        raise JobError(
            outcome.diagnosis or f"{app_path.name} exited with code {outcome.exit_code}.",
            exit_code=outcome.exit_code,
        )


class DriverLog:
    """A cluster driver's log as a person reads it: the program's own lines on stdout,
    Spark's records and Java stacks hidden (all of it with ``verbose``), and a failure as
    the application's traceback on stderr (the driver's stdout and stderr arrive merged
    in its container log)."""

    def __init__(self, ui: UI, *, verbose: bool) -> None:
        import threading

        self.ui, self.verbose = ui, verbose
        self.sorter = failures.StderrSorter()
        self._lock = threading.Lock()

    @property
    def hidden(self) -> int:
        return self.sorter.hidden

    def _print(self, line: str) -> None:
        self.ui.out.print(line, markup=False, highlight=False, soft_wrap=True)

    def line(self, line: str) -> None:
        line = line.rstrip("\n")
        with self._lock:
            if self.verbose:
                self._print(line)
                return
            for shown in self.sorter.feed(line):
                self._print(shown)

    def end(self, failure: failures.AppFailure | None) -> None:
        """After the last line: a held traceback, condensed when it ended the job."""
        with self._lock:
            held = self.sorter.release() if self.sorter.holding else []
            if self.verbose:
                return
            if failure is not None and held:
                for line in failure.traceback:
                    self.ui.err.print(line, markup=False, highlight=False, soft_wrap=True)
                return
            for line in held:
                self._print(line)


# --------------------------------------------------------------------------- jobs, logs, cancel


@app.command(name="jobs", rich_help_panel="Jobs")
def jobs_command(
    ctx: typer.Context,
    output: OutputOption = "text",
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """List the cluster's Spark jobs, running and finished (kept in its bucket).

    Example: [bold]sparkube jobs --output json[/bold]
    """
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    output = check_output(output)
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    api = jobs.open_jobs(env, spec.name, spec.region)
    records = api.records()
    if api.bucket_only:
        ui.note(
            f"Read from the bucket of cluster {spec.name} (no kubeconfig for it on this "
            "machine): jobs not ended show their last recorded state."
        )
    costs = _interruption_costs(api, records)
    if output == "json":
        ui.out.print_json(data=[
            {**r.to_json(), "interruption_cost": (costs[r.job_id].to_json()
                                                  if r.job_id in costs else None)}
            for r in records
        ])  # fmt: skip
        return
    if not records:
        ui.note(f"No jobs on cluster {spec.name} yet; run one with sparkube wordcount FILE.")
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    numbers = ("queued", "duration", "executors")
    for col in ("job", "app", "state", "submitted", *numbers):
        table.add_column(col, justify="right" if col in numbers else "left")

    def clock(value: float | None) -> str:
        minutes, seconds = divmod(int(value or 0), 60)
        return f"{minutes}:{seconds:02d}" if value is not None else ""

    for r in records:
        state = r.state + (f" ({r.exit_code})" if r.exit_code not in (None, 0) else "")
        table.add_row(
            r.job_id, escape(r.app), state, r.submitted.replace("T", " ").rstrip("Z"),
            clock(r.queued_seconds), clock(r.duration),
            _executors_cell(r),
        )  # fmt: skip
    ui.out.print(table)
    for r in records:
        if r.state == "Queued" and r.message:
            ui.out.print(f"{r.job_id} queued: {escape(r.message)}", highlight=False)
        for entry in interruptions.parse(r.interruptions):
            said = interruptions.describe(entry, r.decommission)
            ui.out.print(f"{r.job_id} {escape(said)}", highlight=False)
        if r.job_id in costs:
            ui.out.print(f"{r.job_id} {_cost_text(costs[r.job_id])}", highlight=False)


def _interruption_costs(
    api: cluster_jobs.ClusterJobs, records: list[JobRecord]
) -> dict[str, Rework]:
    """The work each job that lost pods to an interruption did again, from its event log
    in the bucket (only jobs whose log is there and readable)."""
    hit = [r.job_id for r in records if any(e.evicts for e in interruptions.parse(r.interruptions))]
    if not hit:
        return {}
    from sparkube.cost.jobs import read_rework

    bucket = api.config().bucket
    out: dict[str, Rework] = {}
    for job_id in hit:
        with contextlib.suppress(Exception):  # unreadable: nothing said of its cost
            rework = read_rework(api.s3, bucket, job_id)
            if rework is not None:
                out[job_id] = rework
    return out


def _cost_text(rework: Rework) -> str:
    """``interruption cost ≈ 41 s of task time (3 tasks re-run, 1 stage re-attempted)``,
    or ``interruption cost: no task re-run``."""
    if not rework.tasks and not rework.stage_attempts:
        return "interruption cost: no task re-run"
    seconds = rework.task_seconds
    spent = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    what = [f"{rework.tasks} task{'s' if rework.tasks != 1 else ''} re-run"]
    if rework.stage_attempts:
        count = len(rework.stage_attempts)
        what.append(f"{count} stage{'s' if count != 1 else ''} re-attempted")
    return f"interruption cost ≈ {spent} of task time ({', '.join(what)})"


def _executors_cell(r: JobRecord) -> str:
    count = r.dynamic_executors or str(r.executors)
    return f"{count} × {r.executor_cores}" if r.executor_cores else count


@app.command(rich_help_panel="Jobs")
def logs(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The job id (see sparkube jobs).", show_default=False)],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming while the job runs.")
    ] = False,
    cluster: ClusterOption = None,
    region: RegionOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Print what a job's driver printed: live while it runs, from the bucket once it
    ended. The program's own lines and its traceback are shown; Spark's log records and
    Java stacks only with --verbose.

    Example: [bold]sparkube logs wc-20261125-1203-4f2a --follow[/bold]
    """
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    view = DriverLog(ui, verbose=verbose)
    lines: list[str] = []
    api = jobs.open_jobs(env, spec.name, spec.region)
    if api.bucket_only and follow:
        raise UsageError(
            f"--follow needs the cluster's API (no kubeconfig for cluster {spec.name} on this "
            "machine); drop it to read the log kept in the cluster's bucket."
        )
    for line in api.logs(job, follow=follow):
        lines.append(line.rstrip("\n"))
        view.line(line)
    view.end(failures.parse_failure(lines) if view.sorter.holding else None)
    if view.hidden and not verbose:
        ui.note(f"{view.hidden} lines of Spark's log hidden; --verbose shows them.")


@app.command(rich_help_panel="Jobs")
def cancel(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="The job id (see sparkube jobs).", show_default=False)],
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Stop a job: delete its driver, executors and their objects.

    Example: [bold]sparkube cancel wc-20261125-1203-4f2a[/bold]
    """
    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    api = jobs.open_cluster(env, spec.name)
    if not api.cancel(job):
        raise UsageError(f"No running job {job} on cluster {spec.name}; see sparkube jobs.")
    api.wait_gone(job)
    ui.ok(f"cancelled {job}; its pods are gone")
