"""Run Spark applications on embedded Spark (pyspark's bundled Spark, ``local[N]``).

Jobs run in a child process rather than in sparkube's own interpreter: the JVM's
lifetime, memory and exit code then belong to the job, a user's script sees exactly
what it would see on the cluster (``__main__``, ``sys.argv``), and Ctrl-C stops the JVM
with the job. Python applications run as ``python APP`` with the spark-submit options in
``PYSPARK_SUBMIT_ARGS`` (their stdout and stderr stay apart); JARs go through
``spark-submit``. Spark's console noise (log4j WARN/INFO lines, progress bars) is turned
off through a bundled log4j2 file unless ``verbose`` is set; output lines are handed to
a callback so the CLI decides what to show.

The JVM collects garbage with the parallel collector (batch work: ~10% less CPU than G1
on the 200 MB WordCount) and maps a class-data-sharing archive when one has been built
(:mod:`sparkube.spark.cds`: Spark starts on about half the CPU).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import IO

from sparkube.errors import ConfigError, EnvironmentProblem, Interrupted
from sparkube.spark import cds
from sparkube.spark.apps import wordcount as wordcount_app
from sparkube.spark.java import JavaRuntime, find_java

log = logging.getLogger(__name__)

LineHandler = Callable[[str, str], None]
"""Called with (stream name "stdout"|"stderr", line without newline)."""


#: Spark's exit code when the driver JVM hits OutOfMemoryError.
JVM_OUT_OF_MEMORY = 52


@dataclass(frozen=True)
class LocalSettings:
    cores: int = field(default_factory=lambda: os.cpu_count() or 2)
    driver_memory: str = "2g"
    verbose: bool = False
    extra_conf: Mapping[str, str] = field(default_factory=dict)
    #: Added to the driver JVM's options (the CDS archive, or its build).
    java_options: tuple[str, ...] = ()
    #: A person started the run (stdin is a terminal): it may start a CDS archive
    #: build when it ends (``SPARKUBE_CDS=on`` builds in any case).
    interactive: bool = False

    @property
    def master(self) -> str:
        return f"local[{self.cores}]"

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        verbose: bool = False,
        interactive: bool = False,
        driver_memory: str | None = None,
    ) -> LocalSettings:
        """Defaults; the driver's memory from ``driver_memory`` (``--driver-memory``),
        else ``SPARKUBE_DRIVER_MEMORY`` (e.g. ``6g``) when set, else 2g."""
        if driver_memory is not None:
            memory = memory_size(driver_memory, f"--driver-memory {driver_memory!r}")
            return cls(verbose=verbose, driver_memory=memory, interactive=interactive)
        memory = environ.get("SPARKUBE_DRIVER_MEMORY", "").strip().lower()
        if not memory:
            return cls(verbose=verbose, interactive=interactive)
        memory = memory_size(memory, f"SPARKUBE_DRIVER_MEMORY={memory!r}")
        return cls(verbose=verbose, driver_memory=memory, interactive=interactive)


def memory_size(text: str, what: str) -> str:
    """``text`` as a JVM size (``4g``, ``2048m``), lower-cased; exit 2 naming ``what``."""
    memory = text.strip().lower()
    if not re.fullmatch(r"[1-9][0-9]*[kmgt]?", memory):
        raise ConfigError(f"{what} is not a size like 4g or 2048m; fix it.")
    return memory


def larger_memory(size: str) -> str:
    """A size to suggest after an out-of-memory error: three times ``size``, in g when
    that is whole (``2g`` -> ``6g``, ``1536m`` -> ``4608m``)."""
    m = re.fullmatch(r"([0-9]+)([kmgt]?)", size.strip().lower())
    if not m:
        return "6g"
    number, unit = int(m.group(1)) * 3, m.group(2)
    if unit == "m" and number % 1024 == 0:
        return f"{number // 1024}g"
    return f"{number}{unit}"


@dataclass
class LocalResult:
    exit_code: int
    stdout_tail: list[str]
    stderr_tail: list[str]
    #: The JVM reported java.lang.OutOfMemoryError (the exit code alone does not tell:
    #: a Python app's exit code is Python's, not the JVM's 52).
    out_of_memory: bool = False


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError:  # pragma: no cover - pyspark is a dependency
        raise EnvironmentProblem(
            "pyspark is not installed; reinstall sparkube with pip install sparkube."
        ) from None
    return Path(pyspark.__file__).parent


def app_path(name: str) -> Path:
    """Path of a built-in application shipped in the package."""
    return Path(str(resources.files("sparkube.spark.apps").joinpath(f"{name}.py")))


def quiet_log_config() -> Path:
    return Path(str(resources.files("sparkube.spark").joinpath("log4j2-quiet.properties")))


@dataclass(frozen=True)
class LocalCommand:
    """How to start a local job: argv plus environment additions."""

    argv: list[str]
    env: dict[str, str]


def _submit_options(settings: LocalSettings, main_class: str | None) -> list[str]:
    java_opts = ["-Duser.language=en", "-Duser.country=US", "-XX:+UseParallelGC"]
    if not settings.verbose:
        java_opts.append(f"-Dlog4j2.configurationFile=file:{quiet_log_config()}")
    java_opts += settings.java_options
    user_conf = dict(settings.extra_conf)
    # The user's own JVM options go after sparkube's (quiet logging, CDS), not instead.
    if user_java := user_conf.pop("spark.driver.extraJavaOptions", "").strip():
        java_opts.append(user_java)
    # --driver-memory below is the one driver size (spark-submit ignores the property).
    user_conf.pop("spark.driver.memory", None)
    conf = {
        "spark.ui.showConsoleProgress": "false" if not settings.verbose else "true",
        "spark.ui.enabled": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.shuffle.partitions": str(max(4, settings.cores * 2)),
        # Smaller input splits than the 128 MB default keep every core busy on a
        # single large file (2 cores and a 200 MB file would otherwise get 128 + 72).
        "spark.sql.files.maxPartitionBytes": "32m",
        "spark.driver.extraJavaOptions": " ".join(java_opts),
        **user_conf,
    }
    options = ["--master", settings.master, "--driver-memory", settings.driver_memory]
    if main_class:
        options += ["--class", main_class]
    for key, value in conf.items():
        options += ["--conf", f"{key}={value}"]
    return options


def build_command(
    app: Path,
    args: Sequence[str],
    *,
    settings: LocalSettings,
    main_class: str | None = None,
) -> LocalCommand:
    """The command for a local run (pure: unit-tested).

    A Python application runs as ``python APP ARGS`` with the spark-submit options in
    ``PYSPARK_SUBMIT_ARGS`` (pyspark starts its JVM through spark-submit with them).
    Unlike ``spark-submit APP.py``, which merges the script's stderr into its stdout,
    this keeps the two streams apart and the exit code is the script's own. A JAR goes
    through ``spark-submit``.
    """
    options = _submit_options(settings, main_class)
    if app.suffix == ".py":
        return LocalCommand(
            [sys.executable, str(app), *args],
            {"PYSPARK_SUBMIT_ARGS": shlex.join([*options, "pyspark-shell"])},
        )
    return LocalCommand([str(spark_home() / "bin" / "spark-submit"), *options, str(app), *args], {})


def child_environment(environ: Mapping[str, str], java: JavaRuntime) -> dict[str, str]:
    env = dict(environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers (executors)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["JAVA_HOME"] = str(java.path.parent.parent)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Always pyspark's own bundled Spark, never another install the user points at.
    env.pop("SPARK_HOME", None)
    return env


class _Log:
    """The job's log file: every line of both streams, in the order they came."""

    def __init__(self, path: Path | None) -> None:
        self.file = path.open("a", encoding="utf-8") if path is not None else None
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            if self.file is not None:
                self.file.write(line + "\n")

    def close(self) -> None:
        with self.lock:
            if self.file is not None:
                self.file.close()
                self.file = None


def _pump(
    stream: IO[str],
    name: str,
    tail: deque[str],
    handler: LineHandler | None,
    signals: set[str],
    log_file: _Log,
) -> None:
    for raw in stream:
        line = raw.rstrip("\n")
        log_file.write(line)
        if "java.lang.OutOfMemoryError" in line:
            signals.add("oom")
        elif line.startswith(cds.CRASH_MARKER, 2):  # "# A fatal error ..."
            signals.add("crash")
        elif "[cds" in line and any(m in line for m in cds.REFUSED_MARKERS):
            signals.add("cds-refused")
        tail.append(line)
        if handler is not None:
            handler(name, line)


def _archive(environ: Mapping[str, str], java: JavaRuntime, settings: LocalSettings) -> Path:
    key = cds.archive_key(java.path, java.version, spark_home(), settings.driver_memory)
    return cds.cache_dir(environ) / f"{key}.jsa"


def run_local_app(
    app: Path,
    args: Sequence[str],
    *,
    environ: Mapping[str, str],
    settings: LocalSettings,
    on_line: LineHandler | None = None,
    main_class: str | None = None,
    cwd: Path | None = None,
    rerun_safe: bool = False,
    extra_env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
) -> LocalResult:
    """Run one application (``.py`` or ``.jar``) on embedded Spark and wait for it.

    With a CDS archive in place the JVM maps it; if the JVM refuses the archive, or
    crashes with it, the archive is removed. After a crash, an application that may run
    twice (``rerun_safe``: the built-in WordCount) starts again without it; a user's
    application is not run a second time. After a successful run without an archive, a
    build may start (:mod:`sparkube.spark.cds`).

    ``extra_env`` is added to the child's environment (``SPARKUBE_OUTPUT``); every line
    of its output is appended to ``log_file`` when given."""
    java = find_java(environ)
    environ = {**environ, **(extra_env or {})}
    cds_mode = cds.mode(environ)
    archive = _archive(environ, java, settings) if cds_mode != "off" else None
    if archive is not None and cds.usable(archive):
        with tempfile.TemporaryDirectory(prefix="sparkube-cds-log-") as log_dir:
            cds_log = Path(log_dir) / "cds.log"
            options = (*settings.java_options, *cds.java_options(archive, cds_log))
            result, signals = _run_once(
                app, args, environ, java, replace(settings, java_options=options),
                on_line, main_class, cwd, log_file,
            )  # fmt: skip
            if signals & {"cds-refused", "crash"} or cds.refused(cds_log):
                log.debug("the JVM refused or crashed on %s; removed", archive)
                cds.discard(archive)
        if "crash" not in signals or not rerun_safe:
            return result
    result, signals = _run_once(
        app, args, environ, java, settings, on_line, main_class, cwd, log_file
    )
    if (
        archive is not None
        and result.exit_code == 0
        and (cds_mode == "on" or settings.interactive)
        and not cds.usable(archive)
    ):
        cds.start_build(archive, environ, settings.driver_memory)
    return result


def _run_once(
    app: Path,
    args: Sequence[str],
    environ: Mapping[str, str],
    java: JavaRuntime,
    settings: LocalSettings,
    on_line: LineHandler | None,
    main_class: str | None,
    cwd: Path | None,
    log_file: Path | None = None,
) -> tuple[LocalResult, set[str]]:
    command = build_command(app, args, settings=settings, main_class=main_class)
    child_env = {**child_environment(environ, java), **command.env}
    log.debug("running %s", command)
    out_tail: deque[str] = deque(maxlen=200)
    err_tail: deque[str] = deque(maxlen=200)
    signals: set[str] = set()
    proc = subprocess.Popen(
        command.argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=child_env,
        cwd=cwd,
    )
    assert proc.stdout is not None and proc.stderr is not None
    job_log = _Log(log_file)
    pumps = [
        threading.Thread(
            target=_pump, args=(proc.stdout, "stdout", out_tail, on_line, signals, job_log)
        ),
        threading.Thread(
            target=_pump, args=(proc.stderr, "stderr", err_tail, on_line, signals, job_log)
        ),
    ]
    for pump in pumps:
        pump.daemon = True
        pump.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise Interrupted("Interrupted; the Spark job was stopped.") from None
    finally:
        if proc.returncode is not None:
            for pump in pumps:
                pump.join(timeout=5)
        job_log.close()
    oom = "oom" in signals or code == JVM_OUT_OF_MEMORY
    return LocalResult(code, list(out_tail), list(err_tail), out_of_memory=oom), signals


@dataclass(frozen=True)
class Stage:
    """What the built-in WordCount says it is doing (a ``SPARKUBE_STAGE`` line)."""

    name: str
    #: Input splits counted so far and in all (``counting`` only, once known).
    done: int | None = None
    total: int | None = None


def parse_stage(line: str) -> Stage | None:
    """The stage a ``SPARKUBE_STAGE {json}`` line reports; None for any other line."""
    if not line.startswith(wordcount_app.STAGE_MARKER):
        return None
    try:
        value = json.loads(line[len(wordcount_app.STAGE_MARKER) :])
        name = value["stage"]
        done, total = value.get("done"), value.get("total")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(name, str):
        return None
    if isinstance(done, int) and isinstance(total, int):
        return Stage(name, done, total)
    return Stage(name)


def parse_summary(lines: Sequence[str]) -> dict[str, object] | None:
    for line in reversed(lines):
        if line.startswith(wordcount_app.SUMMARY_MARKER):
            value = json.loads(line[len(wordcount_app.SUMMARY_MARKER) :])
            return value if isinstance(value, dict) else None
    return None
