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
    assert_usage_error(
        cli("wordcount", str(text_file), "--output-dir", "/proc/sparkube-out"), "/proc"
    )


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
    assert "No cluster sparkube is up" in failed.stderr


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


@pytest.fixture
def script(sparkube_env: Environment) -> Path:
    path = sparkube_env.cwd / "job.py"
    path.write_text("print('never runs')\n")
    return path


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--conf", "novalue"], ["'novalue' is not KEY=VALUE"]),
        (["--executor-memory", "2g"], ["--executor-memory", "--driver-memory"]),
        (["--no-wait"], ["--no-wait needs a cluster", "sparkube up"]),
        (["--executors", "0"], ["--executors must be at least 1"]),
        (["--driver-memory", "lots"], ["--driver-memory 'lots' is not a size"]),
        (["--driver-memory", "4g", "--conf", "spark.driver.memory=2g"], ["disagree"]),
    ],
)
def test_local_submit_refuses_what_it_cannot_do(
    cli: Callable[..., CliResult], script: Path, flags: list[str], fragments: list[str]
) -> None:
    assert_usage_error(cli("submit", "--local", str(script), *flags), *fragments)


def test_malformed_conf_is_refused_before_reaching_a_cluster(
    cli: Callable[..., CliResult], sparkube_env: Environment, script: Path
) -> None:
    # A kubeconfig makes the job go to the cluster; the bad --conf stops it before.
    folder = sparkube_env.cluster_dir("sparkube")
    folder.mkdir(parents=True)
    (folder / "kubeconfig").write_text("not: used\n")
    assert_usage_error(cli("submit", str(script), "--conf", "=1"), "is not KEY=VALUE")


@pytest.mark.parametrize("command", ["wordcount", "submit"])
def test_dash_o_is_no_longer_the_output_folder(
    cli: Callable[..., CliResult], script: Path, command: str
) -> None:
    assert_usage_error(cli(command, str(script), "-o", "out"), "pass --output-dir out")
    # After --, -o is the application's own.
    if command == "submit":
        script.write_text("import sys; print(sys.argv[1:])\n")
        passed = cli(command, "--local", str(script), "--", "-o", "out")
        assert passed.exit_code == 0 and "['-o', 'out']" in passed.stdout


def test_empty_input_answers_without_spark(
    cli: Callable[..., CliResult], sparkube_env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkube.spark import local

    def no_spark(*args: object, **kwargs: object) -> None:
        raise AssertionError("Spark was started")

    monkeypatch.setattr(local, "run_local_app", no_spark)
    (sparkube_env.cwd / "empty.txt").write_bytes(b"")
    result = cli("wordcount", "empty.txt", "--output-dir", "out")
    assert result.exit_code == 0, result.stderr
    assert "0 words · 0 distinct" in result.stdout
    assert "no Spark job run" in result.stderr
    assert (sparkube_env.cwd / "out" / "wordcount.csv").read_bytes() == b"word,count\n"


def test_local_submit_failure_reads_in_one_glance(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    """A stand-in application (no Spark: the runner is the same) that logs like the JVM,
    writes under $SPARKUBE_OUTPUT like Spark's local file system, then dies of a
    ZeroDivisionError."""
    sample = (REPO / "tests" / "data" / "local_failures" / "udf-4.1.2.txt").read_text()
    stderr = sample[: sample.index("\n", sample.index("ERROR TaskSetManager")) + 1]  # the JVM's
    app = sparkube_env.cwd / "app.py"
    app.write_text(
        "import os, pathlib, sys\n"
        "out = pathlib.Path(os.environ['SPARKUBE_OUTPUT'])\n"
        "(out / 'counts').mkdir()\n"
        "(out / 'counts' / 'part-00000.csv').write_text('a,1\\n')\n"
        "(out / 'counts' / '.part-00000.csv.crc').write_bytes(b'crc')\n"
        "print('counted', file=sys.stderr)\n"
        f"sys.stderr.write({stderr!r})\n"
        "print('rows: 2')\n"
        "1/0\n"
    )
    result = cli("submit", "--local", "app.py")
    assert result.exit_code == 1
    assert "rows: 2" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "Error: app.py failed: ZeroDivisionError: division by zero"
    assert lines[-6:-1] == [
        "Traceback (most recent call last):",
        f'  File "{app}", line 9, in <module>',
        "    1/0",
        "    ~^~",
        "ZeroDivisionError: division by zero",
    ]
    assert "counted" in lines and " at " not in result.stderr and "ERROR" not in result.stderr
    assert len(lines) <= 12, result.stderr
    # One line says where the job runs; Spark's log and the outputs are in its folder.
    assert sum("embedded Spark" in line for line in lines) == 1
    (job,) = (sparkube_env.cwd / "sparkube-runs").iterdir()
    log = job / "driver.log"
    assert f"Spark's log: ./sparkube-runs/{job.name}/driver.log" in result.stderr
    assert "ERROR Executor" in log.read_text() and "rows: 2" in log.read_text()
    assert (job / "counts" / "part-00000.csv").read_text() == "a,1\n"
    assert not (job / "counts" / ".part-00000.csv.crc").exists()
    assert f"1 output file in ./sparkube-runs/{job.name}" in result.stderr

    # --verbose shows Spark's lines too; the last line is the same.
    verbose = cli("submit", "--local", "app.py", "--verbose")
    assert "ERROR Executor" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == lines[-1]


def test_local_submit_that_writes_nothing_leaves_nothing(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    (sparkube_env.cwd / "ok.py").write_text("import os; print(os.environ['SPARKUBE_OUTPUT'])\n")
    result = cli("submit", "--local", "ok.py", "--executors", "3", "--executor-cores", "2")
    assert result.exit_code == 0, result.stderr
    assert "local[6] = --executors 3 × --executor-cores 2" in result.stderr
    assert result.stdout.strip().startswith(str(sparkube_env.cwd / "sparkube-runs" / "job-"))
    assert not (sparkube_env.cwd / "sparkube-runs").exists()
    mine = sparkube_env.cwd / "mine"
    result = cli("submit", "--local", "ok.py", "--output-dir", "mine")
    assert result.stdout.strip() == f"{mine}/" and not mine.exists()  # made, then unused


@pytest.mark.integration
def test_local_submit_honours_flags_and_a_udf_failure_is_one_line(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    """One real Spark run: --conf, --executors × --executor-cores, --driver-memory and
    $SPARKUBE_OUTPUT reach the job; a UDF's exception ends it in one line."""
    (sparkube_env.cwd / "etl.py").write_text(
        "import os\n"
        "from pyspark.sql import SparkSession, functions as F\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "conf = spark.sparkContext.getConf()\n"
        "print('seen', spark.sparkContext.master, conf.get('spark.driver.memory'),\n"
        "      spark.conf.get('spark.sql.shuffle.partitions'))\n"
        "spark.range(3).write.csv(os.environ['SPARKUBE_OUTPUT'] + 'nums')\n"
        "inverse = F.udf(lambda x: 1 // x, 'int')\n"
        "spark.range(3).select(inverse('id')).collect()\n"
    )
    result = cli(
        "submit", "etl.py", "--local", "--executors", "2", "--executor-cores", "2",
        "--conf", "spark.sql.shuffle.partitions=7", "--driver-memory", "1g",
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    assert "seen local[4] 1g 7" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert (
        lines[-1] == "Error: etl.py failed: ZeroDivisionError: integer division or modulo by zero"
    )
    frames = [line for line in lines if line.startswith('  File "')]
    assert [f.rsplit(", ", 1)[-1] for f in frames] == ["in <module>", "in <lambda>"], lines
    assert all("etl.py" in f for f in frames)
    assert len(lines) <= 14, result.stderr
    assert " at " not in result.stderr and "ERROR" not in result.stderr
    (job,) = (sparkube_env.cwd / "sparkube-runs").iterdir()
    assert "at org.apache.spark" in (job / "driver.log").read_text()
    written = sorted(p.name for p in (job / "nums").iterdir())
    assert "_SUCCESS" in written and not any(n.endswith(".crc") for n in written)
    assert any(n.startswith("part-") for n in written)
