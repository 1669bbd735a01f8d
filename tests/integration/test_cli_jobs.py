"""The job commands' contract: exit codes, one-sentence errors, user script exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from sparkube.env import Environment
from tests.fixtures.common import CliResult, subprocess_environ

REPO = Path(__file__).resolve().parents[2]


def assert_usage_error(result: CliResult, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one sentence, no traceback
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def fake_java(tmp_path: Path, version: str) -> str:
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2020-01-01' >&2\n")
    java.chmod(0o755)
    return str(home)


@pytest.fixture
def text_file(sparkube_env: Environment) -> Path:
    path = sparkube_env.cwd / "book.txt"
    path.write_text("one two two\n", encoding="utf-8")
    return path


def test_missing_input(cli: Callable[..., CliResult]) -> None:
    assert_usage_error(cli("wordcount", "nope.txt"), "nope.txt does not exist")


def test_empty_directory(cli: Callable[..., CliResult], sparkube_env: Environment) -> None:
    (sparkube_env.cwd / "empty").mkdir()
    assert_usage_error(cli("wordcount", "empty"), "contains no files")


def test_binary_file(cli: Callable[..., CliResult], sparkube_env: Environment) -> None:
    (sparkube_env.cwd / "a.out").write_bytes(b"\x7fELF\x02\x01\x00\x00")
    assert_usage_error(cli("wordcount", "a.out"), "a.out looks binary")


def test_non_utf8_file(cli: Callable[..., CliResult], sparkube_env: Environment) -> None:
    (sparkube_env.cwd / "latin.txt").write_bytes("déjà vu".encode("latin-1"))
    assert_usage_error(cli("wordcount", "latin.txt"), "latin.txt is not UTF-8", "iconv")


@pytest.mark.parametrize("top", ["0", "-3"])
def test_bad_top(cli: Callable[..., CliResult], text_file: Path, top: str) -> None:
    assert_usage_error(cli("wordcount", str(text_file), "--top", top), "--top must be at least 1")


def test_output_dir_is_a_file(cli: Callable[..., CliResult], text_file: Path) -> None:
    assert_usage_error(
        cli("wordcount", str(text_file), "--output-dir", str(text_file)), "is a file"
    )


def test_no_java(
    cli: Callable[..., CliResult], sparkube_env: Environment, text_file: Path, tmp_path: Path
) -> None:
    environ = {k: v for k, v in sparkube_env.environ.items() if k != "JAVA_HOME"}
    environ["PATH"] = str(tmp_path / "empty-bin")
    result = cli("wordcount", str(text_file), env=replace(sparkube_env, environ=environ))
    assert_usage_error(result, "Java was not found", "openjdk-17")


def test_old_java(
    cli: Callable[..., CliResult], sparkube_env: Environment, text_file: Path, tmp_path: Path
) -> None:
    environ = {**sparkube_env.environ, "JAVA_HOME": fake_java(tmp_path, "11.0.20")}
    app = sparkube_env.cwd / "job.py"
    app.write_text("print('never runs')\n")
    result = cli("submit", "--local", str(app), env=replace(sparkube_env, environ=environ))
    assert_usage_error(result, "Java 11.0.20", "too old")


def test_unwritable_output_dir(cli: Callable[..., CliResult], text_file: Path) -> None:
    assert_usage_error(cli("wordcount", str(text_file), "-o", "/proc/sparkube-out"), "/proc")


def test_other_compression_is_refused(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    (sparkube_env.cwd / "book.txt.bz2").write_bytes(b"BZh91AY&SY")
    assert_usage_error(cli("wordcount", "book.txt.bz2"), "only .gz is supported")


def test_bad_driver_memory(
    cli: Callable[..., CliResult], sparkube_env: Environment, text_file: Path
) -> None:
    environ = {**sparkube_env.environ, "SPARKUBE_DRIVER_MEMORY": "lots"}
    result = cli("wordcount", str(text_file), env=replace(sparkube_env, environ=environ))
    assert_usage_error(result, "SPARKUBE_DRIVER_MEMORY")


def test_stdin_closed_is_not_a_crash(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sparkube", "wordcount", str(tmp_path / "none.txt")],
        stdin=None, capture_output=True, text=True, check=False,
        env=subprocess_environ(tmp_path), cwd=tmp_path,
        close_fds=True, preexec_fn=lambda: os.close(0),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_config(
    cli: Callable[..., CliResult], sparkube_env: Environment, text_file: Path
) -> None:
    (sparkube_env.cwd / "sparkube.yaml").write_text("name: ok\nworkers: [\n")
    assert_usage_error(cli("wordcount", str(text_file)), "sparkube.yaml line", "YAML")


def test_invalid_cluster_name(cli: Callable[..., CliResult], text_file: Path) -> None:
    assert_usage_error(cli("wordcount", str(text_file), "-c", "My_Cluster"), "My_Cluster")


def test_unknown_option_is_usage_error(cli: Callable[..., CliResult], text_file: Path) -> None:
    result = cli("wordcount", str(text_file), "--frobnicate")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def sparkube_process(base: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sparkube", *args],
        capture_output=True,
        text=True,
        env=subprocess_environ(base, COLUMNS="120", **env),
        cwd=base / "work",
        check=False,
    )


def test_help_and_version(tmp_path: Path) -> None:
    help_text = sparkube_process(tmp_path / "a", "--help")
    assert help_text.returncode == 0
    assert "wordcount" in help_text.stdout and "submit" in help_text.stdout
    wc_help = sparkube_process(tmp_path / "b", "wordcount", "--help")
    assert "Example" in wc_help.stdout and "--top" in wc_help.stdout
    version = sparkube_process(tmp_path / "c", "--version")
    assert version.returncode == 0 and version.stdout.startswith("sparkube ")


def test_process_exit_code_and_debug_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.txt")
    proc = sparkube_process(tmp_path / "a", "wordcount", missing)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    proc = sparkube_process(tmp_path / "b", "wordcount", missing, SPARKUBE_DEBUG="1")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_submit_missing_app(cli: Callable[..., CliResult]) -> None:
    assert_usage_error(cli("submit", "--local", "nothere.py"), "nothere.py does not exist")


@pytest.mark.integration
def test_submit_streams_output_and_exit_codes(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    app = sparkube_env.cwd / "job.py"
    app.write_text(
        "import sys\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "print('rows', spark.range(10).count(), 'args', sys.argv[1:])\n"
        "if sys.argv[1] == 'raise':\n"
        "    raise ValueError('boom from the user script')\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    ok = cli("submit", "job.py", "3", "--local")
    assert ok.exit_code == 3, ok.stderr
    assert "rows 10 args ['3']" in ok.stdout
    assert "job.py exited with code 3" in ok.stderr
    assert "incubator" not in ok.stderr  # JVM noise hidden

    failed = cli("submit", "job.py", "raise")
    assert failed.exit_code == 1
    # The script's stderr stays on stderr, apart from its stdout.
    assert "ValueError: boom from the user script" in failed.stderr
    assert "Traceback" not in failed.stdout and "rows 10" in failed.stdout
    assert "No cluster 'sparkube' is up" in failed.stderr


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    proc = subprocess.run(
        # The test's own interpreter (sys.executable), never whatever `python` is on PATH.
        ["bash", "-c", 'set -o pipefail; "$0" -m sparkube manifests | head -1', sys.executable],
        capture_output=True, text=True, check=False,
        env=subprocess_environ(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# --- pod network")
    assert proc.stderr == ""
