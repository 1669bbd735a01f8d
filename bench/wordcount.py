"""Benchmark: sparkube's local WordCount against a plain PySpark RDD job and a Counter.

Generates a text of the given size (default 200 MB) with the tricky vocabulary the tests
use, then in the same run:

1. sparkube's WordCount on embedded Spark (``sparkube.spark.jobs.run_wordcount_local``:
   Spark SQL functions, Java regex, no Python UDF), JVM start included;
2. a straightforward PySpark RDD job with the same semantics (Python regex per
   line in ``mapPartitions``, ``reduceByKey``), JVM start included;
3. a single-process ``collections.Counter`` over the same Python regex.

It checks the three results are identical and prints seconds, MB/s and ratios.
Target (issue 2): sparkube's job at least 1.3x the RDD version's throughput.

    python bench/wordcount.py [--size-mb 200] [--cores N] [--skip-counter]
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.spark import jobs, local  # noqa: E402
from sparkube.spark.inputs import resolve_inputs  # noqa: E402
from tests.wordref import generate_text, python_word_regex  # noqa: E402


def make_corpus(path: Path, size_mb: int) -> None:
    """Write ``size_mb`` MB by repeating generated 1 MB blocks with different seeds."""
    blocks = [generate_text(170_000, seed=s) for s in range(8)]
    target = size_mb * 1_000_000
    written = 0
    with path.open("w", encoding="utf-8") as out:
        i = 0
        while written < target:
            block = blocks[i % len(blocks)]
            out.write(block)
            written += len(block.encode())
            i += 1


def rows_from_csv(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [(w, int(c)) for w, c in reader]


def run_sparkube(corpus: Path, out: Path, cores: int) -> tuple[float, list[tuple[str, int]]]:
    files = resolve_inputs([corpus], check_text=False)
    started = time.monotonic()
    jobs.run_wordcount_local(
        files,
        output_dir=out,
        top=20,
        job_id="bench",
        environ=dict(os.environ),
        settings=local.LocalSettings(cores=cores, driver_memory="4g"),
    )
    return time.monotonic() - started, rows_from_csv(out / "wordcount.csv")


def run_rdd(corpus: Path, cores: int) -> tuple[float, list[tuple[str, int]]]:
    from operator import add

    from pyspark.sql import SparkSession

    started = time.monotonic()
    os.environ["PYSPARK_SUBMIT_ARGS"] = shlex.join(
        ["--driver-java-options", f"-Dlog4j2.configurationFile=file:{local.quiet_log_config()}",
         "pyspark-shell"]
    )  # fmt: skip
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    pattern_text = python_word_regex().pattern

    def words(lines: Iterator[str]) -> Iterator[str]:
        import re

        pattern = re.compile(pattern_text)  # once per partition
        for line in lines:
            for word in pattern.findall(line):
                yield word.lower()

    try:
        counts = (
            spark.sparkContext.textFile(str(corpus))
            .mapPartitions(words)
            .map(lambda w: (w, 1))
            .reduceByKey(add)
            .collect()
        )
    finally:
        spark.stop()
    elapsed = time.monotonic() - started
    return elapsed, sorted(counts, key=lambda kv: (-kv[1], kv[0]))


def run_counter(corpus: Path) -> tuple[float, list[tuple[str, int]]]:
    started = time.monotonic()
    pattern = python_word_regex()
    counts: Counter[str] = Counter()
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            counts.update(w.lower() for w in pattern.findall(line))
    elapsed = time.monotonic() - started
    return elapsed, sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-counter", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    with tempfile.TemporaryDirectory(prefix="sparkube-bench-") as tmp:
        corpus = Path(tmp) / "corpus.txt"
        t0 = time.monotonic()
        make_corpus(corpus, args.size_mb)
        size_mb = corpus.stat().st_size / 1e6
        print(
            f"corpus: {size_mb:.1f} MB generated in {time.monotonic() - t0:.1f} s; "
            f"{args.cores} cores"
        )

        results: dict[str, tuple[float, list[tuple[str, int]]]] = {}
        results["sparkube (Spark SQL)"] = run_sparkube(corpus, Path(tmp) / "out", args.cores)
        results["PySpark RDD + Python regex"] = run_rdd(corpus, args.cores)
        if not args.skip_counter:
            results["Python Counter, 1 process"] = run_counter(corpus)

    reference = results["sparkube (Spark SQL)"][1]
    identical = all(rows == reference for _, rows in results.values())
    print(f"{'implementation':<30} {'seconds':>8} {'MB/s':>8}")
    for name, (seconds, _) in results.items():
        print(f"{name:<30} {seconds:8.1f} {size_mb / seconds:8.2f}")
    base = results["sparkube (Spark SQL)"][0]
    for name, (seconds, _) in results.items():
        if not name.startswith("sparkube"):
            print(f"throughput ratio sparkube / {name}: {seconds / base:.2f}x")
    print(f"results identical: {identical} ({len(reference):,} distinct words)")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
