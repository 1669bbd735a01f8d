"""WordCount on real embedded Spark, checked against an independent reference."""

from __future__ import annotations

import csv
import gzip
import os
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkube.env import Environment
from sparkube.spark import local
from sparkube.spark.java import find_java
from tests.fixtures.common import CliResult
from tests.wordref import PUNCTUATION, VOCABULARY, generate_text, reference_count, sorted_rows

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
        "--top", "7", "--output-dir", "out",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    expected = sorted_rows(reference_count(texts))
    assert read_csv(work / "out" / "wordcount.csv") == expected
    assert "No cluster sparkube is up; running on embedded Spark" in result.stderr
    assert result.stderr.count("embedded Spark") == 1  # one line says where it runs
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


# Hand-picked cases of DESIGN.md's rule, each on its own line and in running text.
TRICKY = (
    "The \u00e9cole, the e\u0301cole and the E\u0301COLE; \u0301cole.\n"
    "हिन्दी हिन्दी नमस्ते — ที่นี่ น้ำ ภาษาไทย — שָׁלוֹם בְּרֵאשִׁית\n"
    "The dogs' bones, the dogs\u2019 toys: don't, DON\u2019T, don\u02bct, don\u2018t.\n"
    "'Tis o''clock; it's' rock'n'roll l\u2019Homme don'\u0301t x\u0301'y\n"
    "2026 3.14 1'000 \u0663\u0664\u0665 x\u00b2 \u00bd \u216b k8s \u0130stanbul \u0130\n"
    "\U00011013\U00011038 a\u20dd snake_case e-mail C++ \u03a3\u039f\u03a3\n"
)


def expected_csv(counts: Counter[str]) -> bytes:
    body = "".join(f"{word},{count}\n" for word, count in sorted_rows(counts))
    return ("word,count\n" + body).encode("utf-8")


def test_tricky_cases_exact_bytes(cli: Callable[..., CliResult], sparkube_env: Environment) -> None:
    (sparkube_env.cwd / "tricky.txt").write_text(TRICKY, encoding="utf-8")
    result = cli("wordcount", "tricky.txt", "--local", "--output-dir", "out", "--top", "3")
    assert result.exit_code == 0, result.stderr
    expected = reference_count([TRICKY])
    assert (sparkube_env.cwd / "out" / "wordcount.csv").read_bytes() == expected_csv(expected)
    # The reference itself, spot-checked against the rule.
    assert expected["the"] == 5 and expected["dogs"] == 2 and expected["don't"] == 1
    assert expected["\u00e9cole"] == 1 and expected["e\u0301cole"] == 2
    assert expected["हिन्दी"] == 2 and expected["ที่นี่"] == 1 and expected["בְּרֵאשִׁית"] == 1
    assert expected["i\u0307stanbul"] == 1 and expected["1'000"] == 1 and expected["ⅻ"] == 1
    assert "cole" in expected and "tis" in expected and "don\u02bct" in expected


def run_app(
    tmp_path: Path, name: str, inputs: list[Path], *, small_input_bytes: int
) -> tuple[bytes, dict[str, object]]:
    out = tmp_path / name
    settings = local.LocalSettings(
        cores=2,
        extra_conf={
            "spark.sql.files.maxPartitionBytes": "64k",
            "spark.sql.shuffle.partitions": "5",
        },
    )
    result = local.run_local_app(
        local.app_path("wordcount"),
        [
            "--output", str(out), "--top", "4", "--parts-name", "parts",
            "--small-input-bytes", str(small_input_bytes), *map(str, inputs),
        ],
        environ=dict(os.environ),
        settings=settings,
    )  # fmt: skip
    assert result.exit_code == 0, "\n".join(result.stderr_tail)
    summary = local.parse_summary(result.stdout_tail)
    assert summary is not None
    assert sorted(p.name for p in out.iterdir()) == ["wordcount.csv"]
    return (out / "wordcount.csv").read_bytes(), summary


def test_range_partitioned_parts_concatenate_to_the_single_partition_result(
    tmp_path: Path,
) -> None:
    """A large input is sorted by range into many parts, a small one in one partition:
    the parts, concatenated in name order, are the same bytes either way."""
    texts = [generate_text(30000, seed=s) for s in (11, 12)]
    inputs = []
    for i, text in enumerate(texts):
        inputs.append(tmp_path / f"in-{i}.txt")
        inputs[-1].write_text(text, encoding="utf-8")
    counts = reference_count(texts)
    expected = expected_csv(counts)
    many, many_summary = run_app(tmp_path, "many", inputs, small_input_bytes=0)
    one, one_summary = run_app(tmp_path, "one", inputs, small_input_bytes=1 << 40)
    assert many == expected and one == expected
    top = [[w, c] for w, c in sorted_rows(counts)[:4]]
    for summary in (many_summary, one_summary):
        assert summary["words"] == sum(counts.values())
        assert summary["distinct"] == len(counts)
        assert summary["top"] == top


def test_empty_input_gives_a_header_only(tmp_path: Path) -> None:
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  --  \u0301 ''\n", encoding="utf-8")
    data, summary = run_app(tmp_path, "out", [blank], small_input_bytes=1 << 40)
    assert data == b"word,count\n"
    assert summary["words"] == 0 and summary["distinct"] == 0 and summary["top"] == []


JAVA_CATEGORIES = """
public class Categories {
    public static void main(String[] args) {
        StringBuilder out = new StringBuilder();
        for (String arg : args) {
            int cp = Integer.parseInt(arg, 16);
            out.append(arg).append(' ').append(Character.getType(cp)).append('\\n');
        }
        System.out.print(out);
    }
}
"""

# java.lang.Character.getType constants -> the first letter of Unicode's category.
JAVA_TYPE_CLASS = {1: "L", 2: "L", 3: "L", 4: "L", 5: "L", 6: "M", 7: "M", 8: "M", 9: "N"}
JAVA_TYPE_CLASS.update({10: "N", 11: "N"})


def test_test_characters_have_the_same_category_in_java_and_python(tmp_path: Path) -> None:
    """Java 17 has Unicode 13 tables, Python 3.11 Unicode 14: the characters the tests
    use must be classified alike, or the reference and Spark would disagree."""
    chars = sorted({c for text in [*VOCABULARY, *PUNCTUATION, TRICKY] for c in text})
    source = tmp_path / "Categories.java"
    source.write_text(JAVA_CATEGORIES)
    java = find_java(dict(os.environ))
    proc = subprocess.run(
        [str(java.path), str(source), *(f"{ord(c):x}" for c in chars)],
        capture_output=True,
        text=True,
        check=True,
    )
    in_java = {
        chr(int(code, 16)): JAVA_TYPE_CLASS.get(int(kind), "-")
        for code, kind in (line.split() for line in proc.stdout.splitlines())
    }
    in_python = {c: unicodedata.category(c)[0] for c in chars}
    in_python = {c: k if k in "LMN" else "-" for c, k in in_python.items()}
    assert in_java == in_python
    assert set(in_python.values()) == {"L", "M", "N", "-"}


def test_quick_start_adds_to_the_driver_java_options_it_finds() -> None:
    from sparkube.spark.apps.wordcount import QUICK_START_JAVA_OPTION as C1
    from sparkube.spark.apps.wordcount import quick_start_submit_args

    conf = "--master local[2] --conf 'spark.driver.extraJavaOptions=-Da=b' pyspark-shell"
    assert quick_start_submit_args(conf) == (
        f"--master 'local[2]' --conf 'spark.driver.extraJavaOptions=-Da=b {C1}' pyspark-shell"
    )
    opts = "--driver-java-options -Da=b pyspark-shell"
    assert quick_start_submit_args(opts) == f"--driver-java-options '-Da=b {C1}' pyspark-shell"
    assert quick_start_submit_args("pyspark-shell") == f"--driver-java-options {C1} pyspark-shell"


def test_even_splits_give_every_core_the_same_number() -> None:
    from sparkube.spark.apps.wordcount import MAX_SPLIT_BYTES, even_split_bytes

    for total, cores in [(200_187_109, 2), (10**10, 8), (5 << 20, 4), (65 << 20, 2)]:
        split = even_split_bytes(total, cores)
        assert split <= MAX_SPLIT_BYTES
        assert -(-total // split) % cores == 0 or total < cores << 20
