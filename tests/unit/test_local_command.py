from __future__ import annotations

from pathlib import Path

from sparkube.spark import local


def test_quiet_command_hides_spark_noise() -> None:
    cmd = local.build_command(
        Path("/x/app.py"), ["a", "--b"], settings=local.LocalSettings(cores=3)
    )
    assert cmd[0].endswith("bin/spark-submit")
    assert cmd[cmd.index("--master") + 1] == "local[3]"
    assert cmd[-3:] == ["/x/app.py", "a", "--b"]
    joined = " ".join(cmd)
    assert "spark.ui.showConsoleProgress=false" in joined
    assert "log4j2.configurationFile=file:" in joined
    assert local.quiet_log_config().is_file()


def test_verbose_command_keeps_spark_logging() -> None:
    cmd = local.build_command(
        Path("/x/app.jar"), [], settings=local.LocalSettings(verbose=True), main_class="a.B"
    )
    assert "log4j2.configurationFile" not in " ".join(cmd)
    assert cmd[cmd.index("--class") + 1] == "a.B"


def test_summary_parsing_takes_last_marker() -> None:
    lines = ["noise", 'SPARKUBE_SUMMARY {"words": 1}', 'SPARKUBE_SUMMARY {"words": 2}', "tail"]
    assert local.parse_summary(lines) == {"words": 2}
    assert local.parse_summary(["nothing"]) is None
    assert local.is_noise("WARNING: Using incubator modules: jdk.incubator.vector")
