"""The ``sparkube`` command: the Typer app and the one place errors become exit codes.

Commands live in sibling modules (one per command or area) and register themselves on
``app``.
They parse, confirm and render; the work happens in the layers below (phases, aws,
nodes, kube, spark, monitoring), which never print.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import traceback
from types import FrameType
from typing import IO, Annotated

import typer
from typer._click import exceptions as click_exceptions  # Typer vendors Click

from sparkube import __version__
from sparkube.cli.helptext import HelpGroup
from sparkube.cli.ui import UI, AppContext
from sparkube.env import Environment
from sparkube.errors import ExitStatus, describe

app = typer.Typer(
    name="sparkube",
    cls=HelpGroup,
    help=(
        "A self-managed Kubernetes cluster on AWS EC2 for Apache Spark jobs: "
        "create it, run jobs, see what it costs, remove every trace.\n\n"
        "Without a cluster, jobs run on embedded Spark: "
        "[bold]sparkube wordcount book.txt[/bold]"
    ),
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _print_version(ctx: typer.Context, name: str, value: bool) -> None:
    # --version and -v are both eager, so both callbacks run before anything else (and
    # before Typer loads pydantic for --help); the second one to run prints.
    seen = ctx.meta.setdefault("sparkube.version", {})
    seen[name] = value
    if len(seen) < 2 or not seen["version"]:
        return
    typer.echo(f"sparkube {__version__}")
    if seen["verbose"]:
        from sparkube.spark.versions import spark_versions

        versions = spark_versions()
        typer.echo(versions.local_line())
        typer.echo(versions.cluster_line())
        typer.echo(versions.difference())
    raise typer.Exit()


def _version(ctx: typer.Context, value: bool) -> None:
    _print_version(ctx, "version", value)


def _verbose(ctx: typer.Context, value: bool) -> bool:
    _print_version(ctx, "verbose", value)
    return value


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit; with -v also the Spark and Python of local "
            "and cluster runs.",
            callback=_version,
            is_eager=True,
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="With --version: more detail.",
            callback=_verbose,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """sparkube: Spark on your own Kubernetes cluster on EC2."""
    if verbose:
        raise click_exceptions.UsageError(
            "-v/--verbose before the command goes only with --version "
            "(for a command's own -v, put it after the command)."
        )


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``; the order here is
    # the order of ``sparkube --help`` (lifecycle first, then access, then jobs).
    import importlib

    for module in (
        *("plan", "up", "down", "status", "ls"),  # the cluster's life, one module each
        *("access", "manifests", "jobs", "monitoring", "doctor"),
    ):
        importlib.import_module(f"sparkube.cli.{module}")


_register()


def run(
    argv: list[str] | None = None,
    *,
    env: Environment | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the CLI and return the exit code (tests call this with their own environment)."""
    env = env or Environment()
    ui = UI(stdout=stdout, stderr=stderr)
    logging.basicConfig(
        level=logging.DEBUG if env.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=stderr or sys.stderr,
    )
    try:
        result = app(
            args=argv, prog_name="sparkube", standalone_mode=False, obj=AppContext(env, ui)
        )
        return result if isinstance(result, int) else int(ExitStatus.SUCCESS)
    except typer.Exit as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # Typer's own Ctrl-C handling
            ui.error(describe(exc.__cause__).message)
        return int(exc.exit_code)
    except typer.Abort:
        ui.error("Aborted.")
        return int(ExitStatus.INTERRUPTED)
    except click_exceptions.ClickException as exc:
        exc.show(file=stderr or sys.stderr)
        return int(exc.exit_code)
    except BrokenPipeError:
        # ``sparkube ... | head``: the reader left; that is not an error of ours.
        _silence_stdout()
        return int(ExitStatus.SUCCESS)
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):  # Typer's own EPIPE handling
            _silence_stdout()
            return int(ExitStatus.SUCCESS)
        raise
    except (Exception, KeyboardInterrupt) as exc:
        outcome = describe(_translated(exc))
        if env.debug:
            ui.err.print(traceback.format_exc(), markup=False, highlight=False)
        ui.error(outcome.message, detail=outcome.detail)
        return outcome.exit_code


def _translated(exc: BaseException) -> BaseException:
    """An AWS SDK error that no layer translated (e.g. S3 during a job) becomes the same
    one sentence as everywhere else; anything else is left to :func:`describe`."""
    if type(exc).__module__.startswith("botocore"):
        from sparkube.aws.errors import translate

        return translate(exc)
    return exc


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP take the same path as Ctrl-C, so a running Spark job is stopped
    # with its parent instead of being orphaned.
    raise KeyboardInterrupt


def main() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate_as_interrupt)
    sys.exit(run(sys.argv[1:]))
