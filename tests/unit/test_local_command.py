from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from sparkube.errors import ConfigError
from sparkube.spark import failures, local


def test_python_app_runs_under_python_with_submit_args() -> None:
    cmd = local.build_command(
        Path("/x/app.py"), ["a", "--b"], settings=local.LocalSettings(cores=3)
    )
    assert cmd.argv == [sys.executable, "/x/app.py", "a", "--b"]
    options = shlex.split(cmd.env["PYSPARK_SUBMIT_ARGS"])
    assert options[-1] == "pyspark-shell"
    assert options[options.index("--master") + 1] == "local[3]"
    assert "spark.ui.showConsoleProgress=false" in options
    java_opts = next(o for o in options if o.startswith("spark.driver.extraJavaOptions="))
    assert "-Duser.language=en" in java_opts  # one argument despite the spaces
    assert "log4j2.configurationFile=file:" in java_opts
    assert local.quiet_log_config().is_file()


def test_jar_goes_through_spark_submit_and_verbose_keeps_logging() -> None:
    cmd = local.build_command(
        Path("/x/app.jar"), ["1"], settings=local.LocalSettings(verbose=True), main_class="a.B"
    )
    assert cmd.argv[0].endswith("bin/spark-submit")
    assert cmd.argv[cmd.argv.index("--class") + 1] == "a.B"
    assert cmd.argv[-2:] == ["/x/app.jar", "1"]
    assert "log4j2.configurationFile" not in " ".join(cmd.argv)
    assert cmd.env == {}


def test_driver_memory_from_environment() -> None:
    assert local.LocalSettings.from_environ({"SPARKUBE_DRIVER_MEMORY": "6G"}).driver_memory == "6g"
    assert local.LocalSettings.from_environ({}).driver_memory == "2g"


def test_summary_parsing_takes_last_marker() -> None:
    lines = ["noise", 'SPARKUBE_SUMMARY {"words": 1}', 'SPARKUBE_SUMMARY {"words": 2}', "tail"]
    assert local.parse_summary(lines) == {"words": 2}
    assert local.parse_summary(["nothing"]) is None
    assert failures.is_noise("WARNING: Using incubator modules: jdk.incubator.vector")


def test_conf_reaches_spark_and_keeps_sparkube_java_options() -> None:
    settings = local.LocalSettings(
        driver_memory="3g",
        extra_conf={
            "spark.sql.shuffle.partitions": "7",
            "spark.driver.extraJavaOptions": "-Dmine=1",
            "spark.driver.memory": "9g",
        },
    )
    options = shlex.split(local.build_command(Path("/x/a.py"), [], settings=settings).env[
        "PYSPARK_SUBMIT_ARGS"
    ])  # fmt: skip
    assert "spark.sql.shuffle.partitions=7" in options
    java_opts = next(o for o in options if o.startswith("spark.driver.extraJavaOptions="))
    assert "log4j2.configurationFile" in java_opts and java_opts.endswith(" -Dmine=1")
    # One driver size: --driver-memory (spark-submit would ignore the property anyway).
    assert options[options.index("--driver-memory") + 1] == "3g"
    assert not any(o.startswith("spark.driver.memory=") for o in options)


def test_driver_memory_flag_wins_over_the_variable() -> None:
    environ = {"SPARKUBE_DRIVER_MEMORY": "6g"}
    assert local.LocalSettings.from_environ(environ, driver_memory="4G").driver_memory == "4g"
    with pytest.raises(ConfigError, match="--driver-memory 'lots' is not a size"):
        local.LocalSettings.from_environ(environ, driver_memory="lots")
    assert local.larger_memory("2g") == "6g" and local.larger_memory("1536m") == "4608m"
    assert local.larger_memory("1024m") == "3g"


FAILURES = Path(__file__).resolve().parents[1] / "data" / "local_failures"


def stderr_of(name: str) -> list[str]:
    return (FAILURES / name).read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    ("sample", "summary", "frames"),
    [
        # A UDF's ZeroDivisionError (pyspark 4.1.2): the driver's line, then the worker's.
        ("udf-4.1.2.txt", "ZeroDivisionError: integer division or modulo by zero",
         ["line 4, in <module>", "line 3, in <lambda>"]),
        # The same in an RDD map: a Py4JJavaError wrapping the worker's traceback (4.1.2)
        # or a PythonException (4.3.0).
        ("rdd-4.1.2.txt", "ZeroDivisionError: division by zero",
         ["line 3, in <module>", "line 3, in <lambda>"]),
        ("rdd-4.3.0.txt", "ZeroDivisionError: division by zero",
         ["line 3, in <module>", "line 3, in <lambda>"]),
        # A Java exception through Py4J: its class and message.
        ("py4j-java.txt", "java.io.FileNotFoundException: x (No such file or directory)",
         ["line 4, in <module>"]),
    ],
)  # fmt: skip
def test_failure_is_the_exception_and_the_apps_own_frames(
    sample: str, summary: str, frames: list[str]
) -> None:
    failure = failures.parse_failure(stderr_of(sample))
    assert failure is not None
    assert failure.summary == summary
    shown = failure.traceback
    assert shown[0] == failures.TRACEBACK
    assert [line.split(", ", 1)[1] for line in shown if line.startswith('  File "')] == frames
    assert all("/home/ana/" in line for line in shown if line.startswith('  File "'))
    text = "\n".join(shown)
    assert "\tat " not in text and "        at " not in text and "ERROR" not in text
    assert len(shown) <= 12, text


def test_sorter_shows_the_apps_lines_and_holds_spark_and_the_traceback() -> None:
    lines = [
        "WARNING: Using incubator modules: jdk.incubator.vector",
        "loading 3 files",
        *stderr_of("udf-4.1.2.txt"),
    ]
    second = [i for i, line in enumerate(lines) if " ERROR Executor:" in line][1]
    lines.insert(second, "still going")  # the app printing between two JVM records
    # Spark's structured (JSON) log records are Spark's too.
    record = '{"ts":"2026-12-06T12:03:08.123Z","level":"ERROR","msg":"Exception in task"}'
    lines.insert(second, record)
    sorter = failures.StderrSorter()
    shown = [out for line in lines for out in sorter.feed(line)]
    assert shown == ["loading 3 files", "still going"], shown
    assert sorter.holding and sorter.hidden > 50
    assert sorter.release()[-2] == "ZeroDivisionError: integer division or modulo by zero"


def test_a_traceback_the_app_went_on_from_is_released_and_is_not_the_failure() -> None:
    handled = [
        failures.TRACEBACK,
        '  File "/home/ana/job.py", line 9, in <module>',
        "    int('x')",
        "ValueError: invalid literal for int() with base 10: 'x'",
    ]
    sorter = failures.StderrSorter()
    shown = [out for line in [*handled, "skipping that row"] for out in sorter.feed(line)]
    assert shown == [*handled, "skipping that row"]
    assert failures.parse_failure([*handled, "skipping that row"]) is None
    # A JAR's uncaught exception: the JVM's own line.
    jar = ['Exception in thread "main" java.lang.IllegalStateException: no input', "\tat A.main"]
    failure = failures.parse_failure(jar)
    assert failure is not None
    assert failure.summary == "java.lang.IllegalStateException: no input"
