"""WordCount on real embedded Spark, checked against an independent reference."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkube.env import Environment
from tests.fixtures.common import CliResult
from tests.wordref import generate_text, reference_count, sorted_rows

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def read_csv(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["word", "count"]
    return [(word, int(count)) for word, count in rows[1:]]


def test_directory_gzip_and_files_match_reference(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    work = sparkube_env.cwd
    texts = [generate_text(4000, seed=s) for s in range(7)]
    corpus = work / "corpus"
    (corpus / "nested").mkdir(parents=True)
    (corpus / "one.txt").write_text(texts[0], encoding="utf-8")
    (corpus / "nested" / "two.txt.gz").write_bytes(gzip.compress(texts[1].encode()))
    (corpus / "blank.txt").write_text("\n\n   \n", encoding="utf-8")
    (corpus / ".hidden.txt").write_text("hidden words never counted", encoding="utf-8")
    extra = work / "extra [draft].txt"  # glob characters in a name must not confuse Spark
    extra.write_text(texts[2], encoding="utf-8")
    crlf = work / "windows.txt"
    crlf.write_bytes(texts[3].replace("\n", "\r\n").encode())
    # Names Hadoop would skip or misparse, named explicitly: they must still be counted.
    (work / "_underscore.txt").write_text(texts[4], encoding="utf-8")
    (work / "a:b.txt").write_text(texts[5], encoding="utf-8")
    (corpus / "upload._COPYING_").write_text(texts[6], encoding="utf-8")
    # A folder of the user's that happens to sit in the output directory survives.
    (work / "out" / "parts").mkdir(parents=True)
    (work / "out" / "parts" / "thesis.tex").write_text("keep me")

    result = cli(
        "wordcount", "corpus", str(extra), "windows.txt", "_underscore.txt", "a:b.txt",
        "--top", "7", "-o", "out",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    expected = sorted_rows(reference_count(texts))
    assert read_csv(work / "out" / "wordcount.csv") == expected
    assert "No cluster 'sparkube' is up; running on embedded Spark" in result.stderr
    total = sum(c for _, c in expected)
    assert f"{total:,} words · {len(expected):,} distinct" in result.stdout
    lines = result.stdout.splitlines()
    for word, count in expected[:7]:
        assert any(line.split() == [word, f"{count:,}"] for line in lines), (word, lines)
    assert "hidden" not in dict(expected)
    assert (work / "out" / "parts" / "thesis.tex").read_text() == "keep me"
    assert sorted(p.name for p in (work / "out").iterdir()) == ["parts", "wordcount.csv"]
    # Spark's own log lines are hidden without --verbose.
    assert "WARN" not in result.stderr and "INFO" not in result.stderr


def test_shipped_sample_local_flag_and_default_output(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    sample = REPO / "examples" / "genesis-kjv.txt"
    result = cli("wordcount", str(sample), "--local", "--top", "3")
    assert result.exit_code == 0, result.stderr
    runs = list((sparkube_env.cwd / "sparkube-runs").glob("wc-*/wordcount.csv"))
    assert len(runs) == 1
    expected = reference_count([sample.read_text(encoding="utf-8")])
    assert read_csv(runs[0]) == sorted_rows(expected)
    assert "No cluster" not in result.stderr  # --local says nothing about clusters
    assert Counter(dict(read_csv(runs[0])))["and"] == expected["and"]
