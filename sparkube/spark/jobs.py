"""Jobs: where they run, their ids, and the local (embedded Spark) runs of them.

``wordcount`` and ``submit`` share one rule (DESIGN.md): with ``--local`` on embedded
Spark; otherwise on the cluster if it is up, else on embedded Spark with one line saying
so. This module returns typed records; the CLI renders them.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sparkube.env import Environment
from sparkube.errors import ClusterError, InputError, JobError
from sparkube.spark import local
from sparkube.spark.apps import wordcount as wordcount_app
from sparkube.spark.inputs import InputFile, check_output_dir, resolve_inputs

RUNS_DIR = "sparkube-runs"


def new_job_id(prefix: str, *, now: datetime | None = None) -> str:
    """``wc-20261125-1203-4f2a``: sortable by time, unique enough per user."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M")
    return f"{prefix}-{stamp}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Placement:
    local: bool
    reason: str


def choose_placement(env: Environment, cluster: str, *, local_flag: bool) -> Placement:
    if local_flag:
        return Placement(True, "--local")
    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if not kubeconfig.exists():
        return Placement(True, f"No cluster '{cluster}' is up; running on embedded Spark instead.")
    raise ClusterError(
        f"Cluster '{cluster}' has a kubeconfig, but this sparkube version cannot run jobs "
        "on a cluster yet; pass --local to run on embedded Spark."
    )


@dataclass(frozen=True)
class WordCountResult:
    job_id: str
    words: int
    distinct: int
    top: list[tuple[str, int]]
    seconds: float
    output_dir: Path
    csv: Path
    inputs: list[InputFile]


def prepare_wordcount(
    inputs: Sequence[Path], *, top: int, output_dir: Path | None, env: Environment, job_id: str
) -> tuple[list[InputFile], Path, Path | None]:
    """Validate everything a word count needs before starting Spark (exit-2 errors).

    Returns the input files, the output folder (created), and the outermost folder this
    call created (``None`` if it existed), which a failed run removes again if empty.
    """
    if top < 1:
        raise InputError(f"--top must be at least 1 (got {top}); pass e.g. --top 20.")
    out = output_dir if output_dir is not None else env.cwd / RUNS_DIR / job_id
    out = out if out.is_absolute() else env.cwd / out
    check_output_dir(out)
    files = resolve_inputs(p if p.is_absolute() else env.cwd / p for p in inputs)
    created = make_output_dir(out)
    return files, out, created


def _clean_after_failure(output_dir: Path, parts_name: str, created: Path | None) -> None:
    """Leave nothing behind a job that failed or was interrupted: its part files, and the
    folders sparkube created for it if they are empty (never a folder of the user's)."""
    shutil.rmtree(output_dir / parts_name, ignore_errors=True)
    if created is None:
        return
    for folder in (output_dir, *output_dir.parents):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty
        if folder == created:
            break


def make_output_dir(path: Path) -> Path | None:
    """Create ``path``; return the outermost folder created, or None if it existed."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"Output directory {path} cannot be created ({exc.strerror}); choose another "
            "--output-dir."
        ) from None
    return missing[-1] if missing else None


def stage_inputs(files: Sequence[InputFile], folder: Path) -> str:
    """Give Spark every input under a name it cannot misread.

    Hadoop's file listing skips names starting with ``_`` or ``.`` (even when named
    explicitly), reads ``:`` as a URI scheme and ``[*?{`` as glob syntax, and picks a
    codec by extension. Symbolic links named ``input-NNNNN.txt`` (or ``.gz`` for gzip)
    in a private folder avoid all of that: every file the user named is read as text.
    The folder itself is the job's one input argument, so any number of files fits on
    the command line.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for index, file in enumerate(files):
        link = folder / f"input-{index:06d}{'.gz' if file.compressed else '.txt'}"
        link.symlink_to(file.path)
    return str(folder)


def run_wordcount_local(
    files: Sequence[InputFile],
    *,
    output_dir: Path,
    top: int,
    job_id: str,
    environ: Mapping[str, str],
    settings: local.LocalSettings,
    on_line: local.LineHandler | None = None,
    created: Path | None = None,
) -> WordCountResult:
    """Run the built-in WordCount on embedded Spark. ``created`` is the folder that
    :func:`prepare_wordcount` made, removed again (if empty) when the job fails."""
    started = time.monotonic()
    make_output_dir(output_dir)
    parts_name = f"_sparkube-parts-{job_id}"
    if (output_dir / parts_name).exists():
        raise InputError(
            f"{output_dir / parts_name} already exists; remove it or choose another --output-dir."
        )
    try:
        with tempfile.TemporaryDirectory(prefix="sparkube-inputs-") as staging:
            result = local.run_local_app(
                local.app_path("wordcount"),
                [
                    "--output", str(output_dir), "--top", str(top), "--parts-name", parts_name,
                    stage_inputs(files, Path(staging)),
                ],
                environ=environ,
                settings=settings,
                on_line=on_line,
            )  # fmt: skip
    except BaseException:
        _clean_after_failure(output_dir, parts_name, created)
        raise
    summary = local.parse_summary(result.stdout_tail)
    if result.exit_code != 0 or summary is None:
        _clean_after_failure(output_dir, parts_name, created)
    if result.exit_code != 0 and result.out_of_memory:
        raise JobError(
            f"Spark ran out of memory (driver memory {settings.driver_memory}); set "
            "SPARKUBE_DRIVER_MEMORY (e.g. 6g) or split very long lines.",
            detail="\n".join(result.stderr_tail[-10:]) or None,
        )
    if result.exit_code != 0 or summary is None:
        raise JobError(
            f"WordCount failed on embedded Spark (exit code {result.exit_code}); run again with "
            "--verbose to see Spark's log.",
            detail="\n".join(result.stderr_tail[-15:]) or None,
        )
    top_rows = summary.get("top", [])
    assert isinstance(top_rows, list)
    words = summary.get("words", 0)
    distinct = summary.get("distinct", 0)
    assert isinstance(words, int) and isinstance(distinct, int)
    return WordCountResult(
        job_id=job_id,
        words=words,
        distinct=distinct,
        top=[(str(w), int(c)) for w, c in top_rows],
        seconds=time.monotonic() - started,
        output_dir=output_dir,
        csv=output_dir / wordcount_app.RESULT_FILE,
        inputs=list(files),
    )


def run_submit_local(
    app: Path,
    args: Sequence[str],
    *,
    environ: Mapping[str, str],
    settings: local.LocalSettings,
    on_line: local.LineHandler | None = None,
    main_class: str | None = None,
    cwd: Path | None = None,
) -> int:
    """Run a user's application; return its exit code (the CLI exits with it)."""
    if not app.is_file():
        raise InputError(f"Application {app} does not exist; check the path.")
    if app.suffix not in (".py", ".jar"):
        raise InputError(f"Application {app} must be a .py script or a .jar; pass one of those.")
    if app.suffix == ".jar" and not main_class:
        raise InputError(f"{app} is a JAR; pass its main class with --class.")
    result = local.run_local_app(
        app.resolve(),
        list(args),
        environ=environ,
        settings=settings,
        on_line=on_line,
        main_class=main_class,
        cwd=cwd,
    )
    return result.exit_code
