"""The build of the class-data-sharing archive (:mod:`sparkube.spark.cds`), run by the
detached process :func:`sparkube.spark.cds.start_build` starts: the built-in WordCount
on a small sample with ``-XX:ArchiveClassesAtExit``, then a JVM with ``-Xshare:on``
that must map the result, then the rename into place. Everything that goes wrong is
logged (the process's stderr is the cache folder's ``build.log``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sparkube.errors import SparkubeError
from sparkube.spark import local
from sparkube.spark.cds import _lock, _record_of, _record_path, dump_options
from sparkube.spark.java import find_java

log = logging.getLogger(__name__)


#: A sample for the build: every script and rule the app's regex meets, a few hundred
#: lines, counted with the range-partitioned plan so its classes are archived too.
_SAMPLE = (
    "The quick brown fox doesn't jump over the lazy dog. L’homme naïve école STRASSE\n"
    "Ωμέγα Москва 東京 日本語 שָׁלוֹם ที่นี่ नमस्ते 42 Ⅻ rock'n'roll C++ İstanbul\n"
)


def build(archive: Path, driver_memory: str, environ: Mapping[str, str]) -> bool:
    """Build the archive (the detached process's work); True if it is now in place."""
    lock = _lock(archive)
    if lock is None:
        log.info("another build of %s is running", archive.name)
        return False
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    try:
        java = find_java(environ)
        with tempfile.TemporaryDirectory(prefix="sparkube-cds-") as tmp_name:
            tmp = Path(tmp_name)
            sample = tmp / "sample.txt"
            sample.write_text(_SAMPLE * 200, encoding="utf-8")
            settings = local.LocalSettings(
                driver_memory=driver_memory, java_options=tuple(dump_options(partial))
            )
            command = local.build_command(
                local.app_path("wordcount"),
                ["--output", str(tmp / "out"), "--top", "0", "--small-input-bytes", "0",
                 str(sample)],
                settings=settings,
            )  # fmt: skip
            env = {
                **local.child_environment(environ, java),
                **command.env,
                "SPARK_PRINT_LAUNCH_COMMAND": "1",
            }
            # The pipes close when the JVM exits, after it has written the archive.
            proc = subprocess.run(
                command.argv, env=env, capture_output=True, text=True, errors="replace",
                cwd=tmp, check=False,
            )  # fmt: skip
            if proc.returncode != 0 or not partial.is_file():
                log.warning(
                    "the build run failed (exit %s, archive written: %s); its last output:\n%s",
                    proc.returncode, partial.is_file(), proc.stderr[-4000:],
                )  # fmt: skip
                return False
            if not _check(partial, proc.stderr):
                return False
        os.replace(partial, archive)
        _record_path(archive).write_text(json.dumps(_record_of(archive)), encoding="utf-8")
        return True
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
        with contextlib.suppress(OSError):
            lock.unlink()


def _check(partial: Path, launch_output: str) -> bool:
    """Map the new archive in a JVM with the same class path and options as Spark's,
    with ``-Xshare:on`` (fails rather than ignoring an archive it cannot use)."""
    line = next((ln for ln in launch_output.splitlines() if ln.startswith("Spark Command: ")), None)
    if line is None:
        log.warning("the build run printed no Spark Command line; cannot check the archive")
        return False
    argv = shlex.split(line[len("Spark Command: ") :])
    try:
        main = argv.index("org.apache.spark.deploy.SparkSubmit")
    except ValueError:
        log.warning("no SparkSubmit in the launch command: %s", line)
        return False
    options = [
        a for a in argv[1:main] if not a.startswith(("-XX:ArchiveClassesAtExit", "-Xlog:cds"))
    ]
    check = [argv[0], *options, f"-XX:SharedArchiveFile={partial}", "-Xshare:on", "-version"]
    try:
        proc = subprocess.run(check, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("the check of the new archive did not run: %s", exc)
        return False
    if proc.returncode != 0:
        tail = (proc.stderr + proc.stdout).decode(errors="replace")[-2000:]
        log.warning("a JVM refused the new archive (exit %s):\n%s", proc.returncode, tail)
    return proc.returncode == 0


def main(argv: list[str]) -> int:
    """The detached build: its output (this log) goes to the cache folder's build.log."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    archive, driver_memory = Path(argv[0]), argv[1]
    log.info("building %s (pid %s)", archive.name, os.getpid())
    try:
        done = build(archive, driver_memory, os.environ)
    except Exception as exc:  # kept in the log: a build never fails a run
        message = exc.message if isinstance(exc, SparkubeError) else None
        log.error("the build failed: %s", message or exc, exc_info=message is None)
        return 1
    log.info("%s %s", "built" if done else "no archive:", archive.name)
    return 0 if done else 1
