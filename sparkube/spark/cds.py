"""A class-data-sharing archive (AppCDS) for the embedded Spark JVM.

A local Spark JVM loads about 20,000 classes from ~280 jars before it counts a word;
parsing and verifying them is most of its start-up. Java's dynamic CDS archive
(``-XX:ArchiveClassesAtExit`` to write, ``-XX:SharedArchiveFile`` to use) keeps them
pre-parsed in one file that later JVMs map; a local run then needs about half the CPU
to start Spark (measured in ``bench/wordcount.py``).

The archive is about 160 MB and lives in ``~/.cache/sparkube/cds/`` (``XDG_CACHE_HOME``
is honoured; ``SPARKUBE_CDS_DIR`` overrides), named by a key over everything the JVM
checks it against: the Java runtime, pyspark's version, jars and their sizes and the
heap mode. ``SPARKUBE_CDS=off`` turns it off; ``SPARKUBE_CDS=on`` also builds it when
no person is watching (by default only runs on a terminal start a build).

It is built after a local run, never during one: a detached, low-priority process runs
the built-in WordCount on a small sample with ``-XX:ArchiveClassesAtExit``, waits until
that JVM has exited (the archive is complete only then), checks it with a JVM started
with ``-Xshare:on`` (which refuses an archive it cannot use) and only then renames it
into place with a record of its size and time. A run uses the archive only if the
record still matches, so a truncated or replaced file is never mapped (the JVM would
crash on it); a run whose JVM reports it cannot use the archive, or crashes with it,
removes it, and :func:`sparkube.spark.local.run_local_app` then runs again without it.
Nothing here ever fails a run: any problem means no archive, and the build's reasons are
kept in ``build.log`` in the cache folder.

The build itself is :mod:`sparkube.spark.cds_build` (it runs the embedded Spark of
:mod:`sparkube.spark.local`, which imports this module: no import circle).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

ENV_SWITCH = "SPARKUBE_CDS"
ENV_DIR = "SPARKUBE_CDS_DIR"
#: A build whose lock is older than this is taken to have died.
STALE_LOCK_SECONDS = 30 * 60
#: Free space needed in the cache folder before a build starts.
MIN_FREE_BYTES = 1 << 30
#: Lines a JVM prints when it cannot use (or crashed on) the archive it was given.
REFUSED_MARKERS = ("Unable to use shared archive", "shared class paths mismatch")
CRASH_MARKER = "A fatal error has been detected by the Java Runtime Environment"


def mode(environ: Mapping[str, str]) -> str:
    """``off``, ``on`` or ``auto`` (the default) from ``SPARKUBE_CDS``."""
    value = environ.get(ENV_SWITCH, "").strip().lower()
    if value in ("0", "off", "no", "false"):
        return "off"
    if value in ("1", "on", "yes", "true"):
        return "on"
    return "auto"


def cache_dir(environ: Mapping[str, str]) -> Path:
    if environ.get(ENV_DIR):
        return Path(environ[ENV_DIR])
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "sparkube" / "cds"


def _heap_bytes(memory: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    memory = memory.strip().lower()
    if memory and memory[-1] in units:
        return int(memory[:-1]) * units[memory[-1]]
    return int(memory)


def archive_key(java_path: Path, java_version: str, spark_home: Path, driver_memory: str) -> str:
    """A name for the archive that changes whenever the JVM would refuse it: another
    Java (path, version, size of its libjvm), another pyspark (version, jar names and
    sizes) or another object layout (compressed pointers stop above 32 GB of heap)."""
    digest = hashlib.sha256()
    real_java = java_path.resolve()
    digest.update(f"{real_java}\0{java_version}\0".encode())
    for libjvm in sorted(real_java.parent.parent.glob("lib/*/libjvm.so")):
        stat = libjvm.stat()
        digest.update(f"{libjvm}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    try:
        from pyspark.version import __version__ as pyspark_version
    except ImportError:  # pragma: no cover - pyspark is a dependency
        pyspark_version = "?"
    digest.update(f"{pyspark_version}\0{spark_home.resolve()}\0".encode())
    jars = spark_home / "jars"
    for jar in sorted(jars.glob("*.jar")) if jars.is_dir() else []:
        digest.update(f"{jar.name}\0{jar.stat().st_size}\0".encode())
    compressed = _heap_bytes(driver_memory) < (32 << 30)
    digest.update(f"compressed-oops={compressed}".encode())
    return f"spark-{pyspark_version}-java{java_version}-{digest.hexdigest()[:16]}"


def _record_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".json")


def _record_of(archive: Path) -> dict[str, int]:
    stat = archive.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def usable(archive: Path) -> bool:
    """The archive exists and is the very file a build checked and recorded."""
    try:
        record = json.loads(_record_path(archive).read_text(encoding="utf-8"))
        return bool(record == _record_of(archive))
    except (OSError, ValueError):
        return False


def discard(archive: Path) -> None:
    """Remove an archive (and its record) a JVM refused; the next run rebuilds it."""
    for path in (_record_path(archive), archive):
        with contextlib.suppress(OSError):
            path.unlink()


def java_options(archive: Path, log_file: Path) -> list[str]:
    """Map ``archive``; the JVM's CDS messages go to ``log_file`` (see :func:`mapped`).
    Quoted for Spark's option parser, which splits ``extraJavaOptions`` at spaces."""
    return [
        shlex.quote(f"-XX:SharedArchiveFile={archive}"),
        shlex.quote(f"-Xlog:cds=info:file={log_file}"),
    ]


#: What a JVM logs (``-Xlog:cds=info``) once it has mapped a dynamic archive. A JVM
#: that cannot use the archive says why at info level only and goes on without it.
MAPPED_MARKER = "Mapped dynamic region"


def refused(log_file: Path) -> bool:
    """A JVM started with :func:`java_options` and did not map the archive."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # no JVM started (the app failed first, or never starts Spark)
    return MAPPED_MARKER not in text


def dump_options(target: Path) -> list[str]:
    """JVM options that write the archive at exit, without its warnings about classes
    it skips (signed jars, generated classes) on the output."""
    return [f"-XX:ArchiveClassesAtExit={target}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]


def _lock(archive: Path) -> Path | None:
    lock = archive.with_name(archive.name + ".lock")
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - lock.stat().st_mtime < STALE_LOCK_SECONDS:
                return None
            lock.unlink()
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError:
            return None
    except OSError:
        return None
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    return lock


#: The build's own log (its errors and the JVM's last lines when it fails), next to
#: the archives; cut when it grows past this.
BUILD_LOG = "build.log"
MAX_LOG_BYTES = 1 << 20
#: Run by the detached build: the sparkube package this process runs (``sys.argv[1]``
#: is put on the path only if it is not there), never one of the user's folder, since
#: ``-P`` keeps the working directory off ``sys.path`` (and it is the cache folder).
_BOOT = (
    "import sys; root = sys.argv[1]; "
    "root in sys.path or sys.path.insert(0, root); "
    "from sparkube.spark.cds_build import main; sys.exit(main(sys.argv[2:]))"
)


def build_log(archive: Path) -> Path:
    return archive.parent / BUILD_LOG


def build_argv(archive: Path, driver_memory: str) -> list[str]:
    """The detached build's command line (see :data:`_BOOT`)."""
    root = str(Path(__file__).resolve().parents[2])  # the folder holding sparkube/
    return [sys.executable, "-P", "-c", _BOOT, root, str(archive), driver_memory]


def start_build(archive: Path, environ: Mapping[str, str], driver_memory: str) -> bool:
    """Start a detached, low-priority process that builds ``archive`` (in
    :mod:`sparkube.spark.cds_build`), isolated from the user's folder: it runs in the
    cache folder and writes what goes wrong to :func:`build_log` there. False if one is
    running already or there is no room."""
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        free = os.statvfs(archive.parent)
        if free.f_bavail * free.f_frsize < MIN_FREE_BYTES:
            log.debug("no room for a CDS archive in %s", archive.parent)
            return False
        log_path = build_log(archive)
        with contextlib.suppress(OSError):
            if log_path.stat().st_size > MAX_LOG_BYTES:
                log_path.unlink()
        with log_path.open("ab") as log_file:
            subprocess.Popen(
                build_argv(archive, driver_memory),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                cwd=archive.parent,
                env=dict(environ),
                start_new_session=True,
                preexec_fn=lambda: os.nice(10),
            )
    except OSError as exc:
        log.debug("CDS archive build not started: %s", exc)
        return False
    return True
