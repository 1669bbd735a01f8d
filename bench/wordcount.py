"""Benchmark: sparkube's local WordCount against the PySpark jobs people write first.

Generates a text of the given size (default 200 MB) with the tricky vocabulary the tests
use, plus a one-line file, then in the same run, each Spark program in its own process
(JVM start included), timed from launch to exit:

Large input (throughput):

1. ``sparkube wordcount --local CORPUS`` (the CLI, end to end: input check, Spark SQL
   functions with a Java regex, no Python UDF, merged ``wordcount.csv``), with the JVM's
   class-data-sharing archive in place (a later run). Before it, the first run in a
   fresh cache folder is timed too (no archive yet), then the archive build it starts in
   the background is waited for and timed (its cost, paid once per Java/pyspark pair);
2. the naive WordCount a new user writes first: ``textFile`` -> ``flatMap`` of Python
   ``re.findall(r"[^\\W_]+(?:['’][^\\W_]+)*", line.lower())`` -> ``map((w, 1))`` ->
   ``reduceByKey`` -> ``sortBy`` (count desc, word asc) -> CSV written by the driver
   (its rule differs from sparkube's, so its result is timed, not compared);
3. a PySpark RDD job with sparkube's exact rule (Python regex per line in
   ``mapPartitions``, ``reduceByKey``), checked to give the identical result;
4. a single-process ``collections.Counter`` over the same Python regex (checked too).

Tiny input (start-up cost): ``sparkube wordcount --local`` (archive in place) on a
one-line file against a bare PySpark session that counts ten rows
(``spark.range(10).count()``), alternated and repeated; medians are compared.

Every baseline gets sparkube's local settings where they change the machine's work
(``local[N]``, driver memory, Spark UI off, quiet log), so only the programs differ.
Targets: sparkube at least 1.5x faster than the naive job on the large input, and at
most 1.2x the bare session on the one-line file. The machine may be shared: the load
average is printed with every group of runs; compare ratios, not seconds.

    python bench/wordcount.py [--size-mb 200] [--cores N] [--tiny-repeat 3]
                              [--skip-counter] [--skip-rdd]
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.spark import local  # noqa: E402
from tests.wordref import generate_text, python_word_regex  # noqa: E402

DRIVER_MEMORY = local.LocalSettings().driver_memory

NAIVE = r"""
import csv, re, sys
from operator import add
from pyspark.sql import SparkSession

corpus, out, master, memory = sys.argv[1:5]
spark = (
    SparkSession.builder.master(master).config("spark.driver.memory", memory)
    .config("spark.ui.enabled", "false").getOrCreate()
)
counts = (
    spark.sparkContext.textFile(corpus)
    .flatMap(lambda line: re.findall(r"[^\W_]+(?:['’][^\W_]+)*", line.lower()))
    .map(lambda w: (w, 1))
    .reduceByKey(add)
    .sortBy(lambda kv: (-kv[1], kv[0]))
)
with open(out, "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["word", "count"])
    writer.writerows(counts.collect())
spark.stop()
"""

SAME_RULE_RDD = r"""
import csv, re, sys
from operator import add
from pyspark.sql import SparkSession

corpus, out, master, memory, pattern_file = sys.argv[1:6]
pattern_text = open(pattern_file, encoding="utf-8").read()
spark = (
    SparkSession.builder.master(master).config("spark.driver.memory", memory)
    .config("spark.ui.enabled", "false").getOrCreate()
)

def words(lines):
    pattern = re.compile(pattern_text)  # once per partition
    for line in lines:
        for word in pattern.findall(line):
            yield word.lower()

counts = (
    spark.sparkContext.textFile(corpus).mapPartitions(words)
    .map(lambda w: (w, 1)).reduceByKey(add).sortBy(lambda kv: (-kv[1], kv[0]))
)
with open(out, "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["word", "count"])
    writer.writerows(counts.collect())
spark.stop()
"""

BARE = r"""
import sys
from pyspark.sql import SparkSession

master, memory = sys.argv[1:3]
spark = (
    SparkSession.builder.master(master).config("spark.driver.memory", memory)
    .config("spark.ui.enabled", "false").getOrCreate()
)
assert spark.range(10).count() == 10
spark.stop()
"""


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


def spark_env() -> dict[str, str]:
    """The environment for baseline Spark programs: sparkube's quiet log, loopback."""
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env["PYSPARK_SUBMIT_ARGS"] = shlex.join(
        ["--driver-java-options", f"-Dlog4j2.configurationFile=file:{local.quiet_log_config()}",
         "--conf", "spark.ui.showConsoleProgress=false", "pyspark-shell"]
    )  # fmt: skip
    env.pop("SPARK_HOME", None)
    return env


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def run_sparkube(corpus: Path, out: Path, cds_dir: Path) -> float:
    """The CLI with its CDS archive in ``cds_dir`` (built after a run if missing)."""
    sparkube = str(Path(sys.executable).with_name("sparkube"))
    env = {**os.environ, "SPARKUBE_CDS": "on", "SPARKUBE_CDS_DIR": str(cds_dir)}
    argv = [sparkube, "wordcount", "--local", str(corpus), "--output-dir", str(out), "--top", "20"]
    return timed(argv, env)


def wait_for_archive(cds_dir: Path, timeout: float = 1800) -> tuple[float, int]:
    """Seconds until the background build has put its archive in place, and its size."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        archives = [p.with_suffix("") for p in cds_dir.glob("*.jsa.json")]
        if archives and not list(cds_dir.glob("*.lock")):
            return time.monotonic() - started, archives[0].stat().st_size
        if not list(cds_dir.glob("*.lock")) and time.monotonic() - started > 30:
            raise SystemExit(f"no CDS archive was built in {cds_dir}")
        time.sleep(0.5)
    raise SystemExit("the CDS archive build did not finish")


def run_script(script: str, *args: str) -> float:
    return timed([sys.executable, "-c", script, *args], spark_env())


def run_counter(corpus: Path) -> tuple[float, list[tuple[str, int]]]:
    started = time.monotonic()
    pattern = python_word_regex()
    counts: Counter[str] = Counter()
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            counts.update(w.lower() for w in pattern.findall(line))
    elapsed = time.monotonic() - started
    return elapsed, sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--tiny-repeat", type=int, default=3)
    parser.add_argument("--skip-counter", action="store_true")
    parser.add_argument("--skip-rdd", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    master = f"local[{args.cores}]"
    # The CLI takes its cores from the machine; --cores only makes sense at the default.
    if args.cores != (os.cpu_count() or 2):
        parser.error("sparkube uses every core; run with the default --cores")

    with tempfile.TemporaryDirectory(prefix="sparkube-bench-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus.txt"
        t0 = time.monotonic()
        make_corpus(corpus, args.size_mb)
        size_mb = corpus.stat().st_size / 1e6
        one_line = tmp / "one-line.txt"
        one_line.write_text("The quick brown fox doesn't jump over the lazy dog.\n")
        pattern_file = tmp / "pattern.txt"
        pattern_file.write_text(python_word_regex().pattern, encoding="utf-8")
        print(
            f"corpus: {size_mb:.1f} MB generated in {time.monotonic() - t0:.1f} s; "
            f"{args.cores} cores; {load()}"
        )

        seconds: dict[str, float] = {}
        rows: dict[str, list[tuple[str, int]]] = {}
        sparkube_name = "sparkube wordcount --local"
        first_name = "sparkube, first run (no CDS)"
        cds_dir = tmp / "cds"
        first = run_sparkube(corpus, tmp / "out-first", cds_dir)
        rows[first_name] = rows_from_csv(tmp / "out-first" / "wordcount.csv")
        build_seconds, archive_size = wait_for_archive(cds_dir)
        print(
            f"first run {first:.1f} s; CDS archive built in the background in "
            f"{build_seconds:.1f} s after it, {archive_size / 1e6:.0f} MB; {load()}"
        )
        seconds[sparkube_name] = run_sparkube(corpus, tmp / "out", cds_dir)
        rows[sparkube_name] = rows_from_csv(tmp / "out" / "wordcount.csv")
        naive_name = "naive PySpark (re on lower)"
        seconds[naive_name] = run_script(
            NAIVE, str(corpus), str(tmp / "naive.csv"), master, DRIVER_MEMORY
        )
        naive_distinct = len(rows_from_csv(tmp / "naive.csv"))
        if not args.skip_rdd:
            name = "PySpark RDD, same rule"
            seconds[name] = run_script(
                SAME_RULE_RDD, str(corpus), str(tmp / "rdd.csv"), master, DRIVER_MEMORY,
                str(pattern_file),
            )  # fmt: skip
            rows[name] = rows_from_csv(tmp / "rdd.csv")
        if not args.skip_counter:
            name = "Python Counter, 1 process"
            seconds[name], rows[name] = run_counter(corpus)
        print(f"after the large runs: {load()}")

        tiny: dict[str, list[float]] = {sparkube_name: [], "bare session, 10 rows": []}
        for i in range(args.tiny_repeat):
            tiny[sparkube_name].append(run_sparkube(one_line, tmp / f"tiny-{i}", cds_dir))
            tiny["bare session, 10 rows"].append(run_script(BARE, master, DRIVER_MEMORY))
        print(f"after the one-line runs: {load()}")

    reference = rows[sparkube_name]
    identical = all(r == reference for r in rows.values())
    title = f"implementation ({size_mb:.0f} MB)"
    print(f"\n{title:<32} {'seconds':>8} {'MB/s':>8}")
    for name, secs in seconds.items():
        print(f"{name:<32} {secs:8.1f} {size_mb / secs:8.2f}")
    base = seconds[sparkube_name]
    for name, secs in seconds.items():
        if name != sparkube_name:
            print(f"speed-up sparkube vs {name}: {secs / base:.2f}x")
    print(f"results identical (same rule): {identical} ({len(reference):,} distinct words)")
    print(f"naive job: {naive_distinct:,} distinct words (its own rule, not compared)")

    print(f"\n{'one-line file':<32} {'median s':>8}   runs")
    for name, runs in tiny.items():
        print(f"{name:<32} {statistics.median(runs):8.1f}   {', '.join(f'{r:.1f}' for r in runs)}")
    ratio = statistics.median(tiny[sparkube_name]) / statistics.median(
        tiny["bare session, 10 rows"]
    )
    speedup = seconds[naive_name] / base
    print(f"one-line: sparkube / bare session = {ratio:.2f}x (target <= 1.2x)")
    print(f"{size_mb:.0f} MB: naive / sparkube = {speedup:.2f}x (target >= 1.5x)")
    print(
        f"{size_mb:.0f} MB, first run (no CDS archive yet): naive / sparkube = "
        f"{seconds[naive_name] / first:.2f}x; archive build {build_seconds:.1f} s, "
        f"{archive_size / 1e6:.0f} MB"
    )
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
