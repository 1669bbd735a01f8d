"""Programs of the kind Spark ships as examples (our own copies in
tests/data/spark_examples: wordcount, sql basic, k-means with pyspark.ml), unmodified,
run with ``sparkube submit`` locally and on the shared real-node cluster (issue 18): each is
checked on its own terms (counts equal to an independent count), and
the cluster's output must equal the local one. They find their data files by relative
path (``--files``) and k-means needs numpy (``--pip``, from a local wheelhouse that
scripts/test.sh fills: the tests reach no index). The bed's Spark image has Debian 12's
Python 3.11 where the real image has 3.10 (tools/nodes/README.md), so the k-means test
sets the cluster's ``python_version`` to 3.11 for its packages (the fixture puts up's
value back). pi.py is in the folder but not run here: SparkPi runs on the cluster in
test_2_spark_pi.py, and a second pi cost the bed 40 s for nothing new."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from sparkube.env import Environment
from tests.fixtures.bedcluster import BedLab
from tests.fixtures.common import CliResult
from tests.fixtures.nodebed import REAL_NODES
from tests.fixtures.wheels import local_index

pytestmark = REAL_NODES

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "spark_examples"
TEXT = "the quick brown fox\njumps over the lazy dog\nthe end\n"


def wheelhouse() -> Path:
    folder = Path(
        os.environ.get("SPARKUBE_WHEELHOUSE") or Path.home() / ".cache/sparkube/wheelhouse"
    )
    if not list(folder.glob("numpy-*.whl")):
        if os.environ.get("SPARKUBE_REQUIRE_STANDINS"):
            pytest.fail(f"no numpy wheel in {folder}; scripts/test.sh downloads it")
        pytest.skip(f"no numpy wheel in {folder} (scripts/test.sh downloads it)")
    return folder


@pytest.fixture
def lab(bed_lab: BedLab) -> BedLab:
    return bed_lab


@pytest.fixture
def examples_env(lab: BedLab) -> Environment:
    shutil.copytree(EXAMPLES, lab.env.cwd, dirs_exist_ok=True)
    (lab.env.cwd / "text.txt").write_text(TEXT)
    return lab.env


def both(lab: BedLab, env: Environment, *args: str) -> tuple[CliResult, CliResult]:
    local = lab.run_env(env, "submit", *args, "--local")
    assert local.exit_code == 0, local.stderr[-3000:]
    cluster = lab.run_env(env, "submit", *args, "--executors", "1")
    assert cluster.exit_code == 0, cluster.stderr[-3000:]
    return local, cluster


def test_wordcount_counts_equal_an_independent_count(
    lab: BedLab, examples_env: Environment
) -> None:
    expected = collections.Counter(w for line in TEXT.splitlines() for w in line.split(" "))
    local, cluster = both(lab, examples_env, "wordcount.py", "--input", "text.txt")
    for res in (local, cluster):
        counted = dict(line.rsplit(": ", 1) for line in res.stdout.splitlines())
        assert {w: int(c) for w, c in counted.items()} == dict(expected)


def test_sql_basic_finds_its_json_by_relative_path(lab: BedLab, examples_env: Environment) -> None:
    local, cluster = both(
        lab, examples_env, "sql_basic.py", "--files", "examples/src/main/resources/people.json"
    )
    assert cluster.stdout == local.stdout
    tables = [t for t in cluster.stdout.split("\n\n") if t.strip()]
    assert tables[0].splitlines()[3:6] == ["|NULL|Michael|", "|  30|   Andy|", "|  19| Justin|"]
    assert "|   Andy|       31|" in tables[2]  # age + 1
    assert tables[3].splitlines()[3] == "| 30|Andy|"  # age > 21
    assert tables[-1].splitlines()[3] == "|Justin|"  # the teenager of the SQL query


def test_kmeans_with_numpy_from_pip(lab: BedLab, examples_env: Environment) -> None:
    # the bed image's Python (Debian 12's 3.11), for the packages' wheels
    patch = json.dumps({"data": {"python_version": "3.11"}})
    lab.kubectl(f"-n spark patch configmap sparkube-cluster --type=merge -p '{patch}'")
    env = dataclasses.replace(
        examples_env, environ={**examples_env.environ, **local_index(wheelhouse())}
    )
    numpy = next(wheelhouse().glob("numpy-*.whl")).name.split("-")[1]
    local, cluster = both(
        lab, env, "kmeans.py", "--files", "data/mllib/sample_kmeans_data.txt",
        "--pip", f"numpy=={numpy}",
    )  # fmt: skip
    assert cluster.stdout == local.stdout
    lines = cluster.stdout.splitlines()
    silhouette = float(lines[0].rsplit(" ", 1)[1])
    assert silhouette > 0.9  # two far-apart groups of three
    assert lines[1:] == [
        "Center: 0.1000000000 0.1000000000 0.1000000000",
        "Center: 9.1000000000 9.1000000000 9.1000000000",
    ]
