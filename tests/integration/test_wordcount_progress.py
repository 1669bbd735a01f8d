"""Issue 11: a local WordCount shows the elapsed time and the stage it is in, from the
``SPARKUBE_STAGE`` lines the real app prints on real embedded Spark."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkube.env import Environment
from sparkube.spark import local
from sparkube.spark.apps import wordcount as app
from tests.fixtures.common import CliResult
from tests.wordref import generate_text

pytestmark = pytest.mark.integration


def test_cli_without_a_terminal_prints_each_stage_once_with_its_time(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    (sparkube_env.cwd / "book.txt").write_text(generate_text(3000, seed=5), encoding="utf-8")
    result = cli("wordcount", "book.txt", "--local", "--output-dir", "out", "--top", "2")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    stages = [
        m.group(2) for m in (re.match(r"^ +(\d+:\d\d) spark +(.+)$", ln) for ln in lines) if m
    ]
    # "sorting and writing" is shown when a look at the tracker falls in it: a small
    # input may be sorted and written between two looks.
    assert stages[:2] == ["starting Spark", "counting words"]
    assert stages[-1] == "merging the parts"
    assert set(stages) <= {"starting Spark", "counting words", "sorting and writing",
                           "merging the parts"}  # fmt: skip
    assert len(stages) == len(set(stages))
    assert any(re.match(r"^✓ wordcount +counted 1 file \(.*\) +\d+:\d\d$", ln) for ln in lines)
    assert "SPARKUBE_STAGE" not in result.stderr + result.stdout


def test_range_plan_reports_splits_then_writing_in_order(tmp_path: Path) -> None:
    """The large-input plan (forced with --small-input-bytes 0) on ~8 MB: the scan takes
    several of the app's half-second looks at Spark's status tracker."""
    text = generate_text(1_200_000, seed=9)
    book = tmp_path / "book.txt"
    book.write_text(text, encoding="utf-8")
    assert book.stat().st_size > 6_000_000
    stages: list[local.Stage] = []

    def on_line(stream: str, line: str) -> None:
        stage = local.parse_stage(line)
        if stage is not None:
            assert stream == "stdout"
            stages.append(stage)

    result = local.run_local_app(
        local.app_path("wordcount"),
        ["--output", str(tmp_path / "out"), "--top", "1", "--small-input-bytes", "0", str(book)],
        environ={**os.environ, "SPARKUBE_CDS": "off"},
        settings=local.LocalSettings(),
        on_line=on_line,
    )
    assert result.exit_code == 0, "\n".join(result.stderr_tail)
    names = [s.name for s in stages]
    assert names[0] == "starting" and names[-1] == "merging"
    assert {"counting", "writing"} <= set(names)
    order = [app.STAGES.index(n) for n in names]
    assert order == sorted(order)  # never goes back to an earlier stage
    counted = [s for s in stages if s.total is not None]
    assert counted, names  # the scan was seen running, with its splits
    assert all(s.done is not None and s.total and 0 <= s.done < s.total for s in counted)
    assert len({s.total for s in counted}) == 1
    assert local.parse_summary(result.stdout_tail) is not None
