from __future__ import annotations

import shlex
import sys
from pathlib import Path

from sparkube.spark import local


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
    assert local.is_noise("WARNING: Using incubator modules: jdk.incubator.vector")
