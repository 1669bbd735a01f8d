"""The background class-data-sharing build runs isolated from the user's folder and
keeps its errors in the cache folder; spark/cds.py and spark/local.py import in one
direction only."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sparkube.spark.cds
from sparkube.spark import cds


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_cds_imports_nothing_of_local() -> None:
    # Anywhere in the module, functions included: the circle was an import inside build.
    imported = _imports(Path(sparkube.spark.cds.__file__))
    assert not {name for name in imported if "local" in name.split(".")}, imported
    fresh = subprocess.run(
        [sys.executable, "-c", "import sys, sparkube.spark.cds; "
         "print('sparkube.spark.local' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert fresh.stdout.strip() == "False"


def _wait_for(path: Path, text: str, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        content = path.read_text(encoding="utf-8") if path.is_file() else ""
        if text in content:
            return content
        time.sleep(0.2)
    pytest.fail(f"{text!r} not in {path} after {seconds} s: {content!r}")


def test_build_ignores_a_sparkube_folder_in_the_cwd_and_logs_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "project"
    shadow = user / "sparkube"
    shadow.mkdir(parents=True)
    marker = tmp_path / "shadow-was-imported"
    (shadow / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(user)
    archive = tmp_path / "cache" / "spark-test.jsa"
    # No Java: the build fails at once, and must say so in the cache folder's log.
    environ = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}

    assert cds.start_build(archive, environ, "2g")
    log = _wait_for(cds.build_log(archive), "the build failed")
    assert f"JAVA_HOME points to {tmp_path / 'no-java'}, which has no bin/java" in log
    assert "building spark-test.jsa" in log
    assert not marker.exists()  # the user's ./sparkube was never imported
    lock = archive.with_name(archive.name + ".lock")
    _deadline = time.monotonic() + 10
    while lock.exists() and time.monotonic() < _deadline:
        time.sleep(0.1)
    assert not lock.exists()


def test_build_command_is_isolated(tmp_path: Path) -> None:
    argv = cds.build_argv(tmp_path / "a.jsa", "2g")
    assert argv[:3] == [sys.executable, "-P", "-c"]
    # The package the parent runs, whatever the working directory holds.
    assert Path(argv[4], "sparkube", "spark", "cds.py") == Path(cds.__file__).resolve()


def test_a_long_build_log_is_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "cache" / "x.jsa"
    archive.parent.mkdir()
    cds.build_log(archive).write_bytes(b"old\n" * (cds.MAX_LOG_BYTES // 4 + 1))
    started: list[list[str]] = []

    class _Popen:
        def __init__(self, argv: list[str], **kwargs: object) -> None:
            started.append(argv)
            assert kwargs["cwd"] == archive.parent

    monkeypatch.setattr(cds.subprocess, "Popen", _Popen)
    assert cds.start_build(archive, {}, "2g")
    assert started and cds.build_log(archive).stat().st_size == 0
