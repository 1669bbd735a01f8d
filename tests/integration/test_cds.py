"""The embedded JVM's class-data-sharing archive, with a real JVM: a build writes an
archive that later runs map, and a damaged archive never fails a run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparkube.spark import cds, cds_build, local
from sparkube.spark.java import find_java

pytestmark = pytest.mark.integration


def _environ(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SPARKUBE_CDS_DIR": str(tmp_path / "cds"), "SPARKUBE_CDS": "on"}


def _run(tmp_path: Path, environ: dict[str, str], name: str, *java_options: str) -> list[str]:
    book = tmp_path / "book.txt"
    book.write_text("one two two three three three\n", encoding="utf-8")
    lines: list[str] = []
    result = local.run_local_app(
        local.app_path("wordcount"),
        ["--output", str(tmp_path / name), "--top", "1", str(book)],
        environ=environ,
        settings=local.LocalSettings(java_options=java_options),
        on_line=lambda stream, line: lines.append(line),
    )
    assert result.exit_code == 0, "\n".join(result.stderr_tail)
    assert (tmp_path / name / "wordcount.csv").read_text() == "word,count\nthree,3\ntwo,2\none,1\n"
    return lines


def test_a_built_archive_is_mapped_by_later_runs(tmp_path: Path) -> None:
    environ = _environ(tmp_path)
    archive = local._archive(environ, find_java(environ), local.LocalSettings())
    assert cds_build.build(archive, "2g", environ)  # what the detached process does
    assert cds.usable(archive)
    assert archive.stat().st_size > 20 << 20
    assert not list(archive.parent.glob("*.partial")) and not list(archive.parent.glob("*.lock"))
    lines = _run(tmp_path, environ, "with", "-Xlog:cds=info")
    assert any("Mapped dynamic region" in line for line in lines), lines[:20]
    assert cds.usable(archive)


def test_a_corrupt_archive_is_removed_and_the_run_succeeds_without_it(tmp_path: Path) -> None:
    environ = _environ(tmp_path)
    archive = local._archive(environ, find_java(environ), local.LocalSettings())
    archive.parent.mkdir(parents=True)
    # A file that passes the size check but is not an archive; a truncated archive
    # crashes the JVM the same way when it is mapped.
    archive.write_bytes(b"\0" * (1 << 20))
    Path(f"{archive}.json").write_text(json.dumps(cds._record_of(archive)))
    assert cds.usable(archive)
    lines = _run(tmp_path, {**environ, "SPARKUBE_CDS": "auto"}, "out")
    assert not archive.exists()  # removed; the next interactive run rebuilds it
    assert any("SPARKUBE_SUMMARY" in line for line in lines)
