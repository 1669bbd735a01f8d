"""Local WordCount progress (issue 11) and the embedded JVM's options and CDS archive
bookkeeping: the parts that need no JVM. A real run's stage lines and a real archive
are tested in tests/integration/test_wordcount_progress.py and test_cds.py."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
from pathlib import Path

from rich.console import Console

from sparkube.cli.stages import LocalProgress, StartingSpark, stage_text
from sparkube.errors import Interrupted
from sparkube.spark import cds, local
from sparkube.spark.apps import wordcount as app


class Clock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def stage_line(**record: object) -> str:
    return app.STAGE_MARKER + json.dumps(record)


def test_stage_lines_parse_and_anything_else_is_not_a_stage() -> None:
    assert local.parse_stage(stage_line(stage="starting")) == local.Stage("starting")
    assert local.parse_stage(stage_line(stage="counting", done=3, total=7)) == local.Stage(
        "counting", 3, 7
    )
    assert local.parse_stage("SPARKUBE_SUMMARY {}") is None
    assert local.parse_stage(app.STAGE_MARKER + "{not json") is None
    assert local.parse_stage(app.STAGE_MARKER + '{"done": 1}') is None
    assert local.parse_stage(app.STAGE_MARKER + "[1, 2]") is None
    assert local.parse_stage("counting words") is None


def test_stage_text_shows_splits_only_when_asked() -> None:
    stage = local.Stage("counting", 3, 7)
    assert stage_text(stage, with_counts=True) == "counting words · 3/7 splits"
    assert stage_text(stage, with_counts=False) == "counting words"
    assert stage_text(local.Stage("writing"), with_counts=True) == "sorting and writing"


def test_without_a_terminal_each_stage_is_one_plain_line_with_elapsed_time() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    clock = Clock()
    with LocalProgress(console, "1 file (2.0 MB)", clock_fn=clock) as progress:
        clock.t += 4
        progress.on_line("stdout", stage_line(stage="starting"))  # same text: no line
        progress.on_line("stderr", "WARNING: Using incubator modules")  # not verbose
        progress.on_line("stdout", stage_line(stage="counting"))
        clock.t += 61
        for done in range(4):
            progress.on_line("stdout", stage_line(stage="counting", done=done, total=4))
        progress.on_line("stdout", stage_line(stage="writing"))
        clock.t += 2
        progress.on_line("stdout", stage_line(stage="merging"))
    assert out.getvalue().splitlines() == [
        "… wordcount       1 file (2.0 MB)",
        "   0:00 spark     starting Spark",
        "   0:04 spark     counting words",
        "   1:05 spark     sorting and writing",
        "   1:07 spark     merging the parts",
        "✓ wordcount       counted 1 file (2.0 MB)  1:07",
    ]


def test_on_a_terminal_the_live_block_shows_stage_splits_and_elapsed_time() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=30, color_system=None)
    clock = Clock()
    with LocalProgress(console, "1 file (200.2 MB)", clock_fn=clock) as progress:
        clock.t += 9
        progress.on_line("stdout", stage_line(stage="counting", done=5, total=14))
        clock.t += 3
        frame = io.StringIO()
        Console(file=frame, width=100, color_system=None).print(progress.reporter._render())
    rows = [re.sub(r"\s+", " ", line).strip() for line in frame.getvalue().splitlines()]
    assert rows[0].endswith("wordcount 1 file (200.2 MB) 0:12")
    assert rows[1] == "spark counting words · 5/14 splits 0:03"
    assert "✓ wordcount" in out.getvalue() and "0:12" in out.getvalue().splitlines()[-1]


def test_a_failed_run_ends_the_display_in_red_and_verbose_shows_spark_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    try:
        with LocalProgress(console, "1 file", verbose=True, clock_fn=Clock()) as progress:
            progress.on_line("stderr", "24/01/01 ERROR Executor: boom")
            raise RuntimeError("failed")
    except RuntimeError:
        pass
    lines = out.getvalue().splitlines()
    assert "24/01/01 ERROR Executor: boom" in lines
    assert lines[-1].startswith("✗ wordcount") and "failed" in lines[-1]


def test_driver_jvm_collects_in_parallel_and_takes_extra_options() -> None:
    settings = local.LocalSettings(java_options=("-XX:SharedArchiveFile=/c/a.jsa",))
    cmd = local.build_command(Path("/x/app.py"), [], settings=settings)
    options = shlex.split(cmd.env["PYSPARK_SUBMIT_ARGS"])
    java_opts = next(o for o in options if o.startswith("spark.driver.extraJavaOptions="))
    assert "-XX:+UseParallelGC" in java_opts.split()
    assert "-XX:SharedArchiveFile=/c/a.jsa" in java_opts.split()


def test_cds_switch_folder_and_key() -> None:
    assert cds.mode({}) == "auto"
    assert cds.mode({"SPARKUBE_CDS": "off"}) == "off"
    assert cds.mode({"SPARKUBE_CDS": "0"}) == "off"
    assert cds.mode({"SPARKUBE_CDS": "on"}) == "on"
    assert cds.cache_dir({"HOME": "/h"}) == Path("/h/.cache/sparkube/cds")
    assert cds.cache_dir({"HOME": "/h", "XDG_CACHE_HOME": "/x"}) == Path("/x/sparkube/cds")
    assert cds.cache_dir({"HOME": "/h", "SPARKUBE_CDS_DIR": "/d"}) == Path("/d")
    java = Path("/usr/bin/java")
    home = local.spark_home()
    key = cds.archive_key(java, "17.0.9", home, "2g")
    assert key == cds.archive_key(java, "17.0.9", home, "8g")  # same object layout
    assert key != cds.archive_key(java, "17.0.9", home, "40g")  # no compressed pointers
    assert key != cds.archive_key(java, "17.0.10", home, "2g")


def test_an_archive_is_used_only_while_it_is_the_file_its_build_recorded(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsa"
    assert not cds.usable(archive)
    archive.write_bytes(b"x" * 1000)
    assert not cds.usable(archive)  # no record: a build did not finish
    (tmp_path / "a.jsa.json").write_text(json.dumps(cds._record_of(archive)))
    assert cds.usable(archive)
    log = tmp_path / "cds.log"
    assert cds.java_options(archive, log) == [
        f"-XX:SharedArchiveFile={archive}",
        f"-Xlog:cds=info:file={log}",
    ]
    assert not cds.refused(log)  # no JVM ran: nothing to hold against the archive
    log.write_text("[info][cds] UseSharedSpaces: The shared archive file has a bad magic number.")
    assert cds.refused(log)
    log.write_text(f"[info][cds] {cds.MAPPED_MARKER} #0 at base 0x7f")
    assert not cds.refused(log)
    with archive.open("r+b") as handle:
        handle.truncate(500)  # e.g. a full disk
    assert not cds.usable(archive)
    cds.discard(archive)
    assert not archive.exists() and not (tmp_path / "a.jsa.json").exists()


def test_only_one_build_at_a_time_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    archive = tmp_path / "a.jsa"
    lock = cds._lock(archive)
    assert lock is not None and lock.is_file()
    assert cds._lock(archive) is None
    old = lock.stat().st_mtime - cds.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    assert cds._lock(archive) == lock


def test_ctrl_c_ends_the_display_as_interrupted_not_failed() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    try:
        with LocalProgress(console, "1 file", clock_fn=Clock()):
            raise Interrupted("Interrupted; the Spark job was stopped.")
    except Interrupted:
        pass
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("✗ wordcount") and "interrupted" in last and "failed" not in last


def test_starting_spark_shows_until_the_apps_first_line() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with StartingSpark(console) as starting:
        assert starting.status is not None
        starting.status._live.refresh()
        starting.stop()  # the application's first line
        assert starting.status is None
        starting.stop()  # every later line: nothing to do
    assert "starting Spark…" in out.getvalue()
    quiet = io.StringIO()
    with StartingSpark(Console(file=quiet, force_terminal=False)) as starting:
        assert starting.status is None
    assert quiet.getvalue() == ""
