"""sparkube's built-in WordCount, a standalone PySpark application.

The same file runs on embedded Spark (``spark-submit --master local[*]``) and, uploaded
to the cluster's bucket, in the driver pod on Kubernetes. It therefore imports nothing
from sparkube.

Semantics (DESIGN.md): a word starts with a Unicode letter or number (general categories
L* and N*) and continues through letters, numbers and combining marks (M*), so
decomposed accents, Devanagari vowel signs and viramas, Thai and Hebrew points stay in
their word; a single ``'`` or ``’`` followed by a letter or number joins the parts
(``don't``, ``l’homme``). Words are found as written, then lower-cased (so a lower-casing
that produces a combining mark, as for U+0130, cannot split a word); nothing is
normalised (NFC and NFD forms are different words). Which characters are letters, marks
or numbers follows the JVM's Unicode tables (Java 17: Unicode 13). Output is
``word,count`` sorted by count descending, then word ascending (code point order, as
Spark compares strings).

Everything runs in Spark SQL functions (Java regex, no Python UDF), so the work scales
with executors and the input never has to fit in the driver. The whole count is one
Spark action: totals are observed while the sorted result is written (``observe``) and
the top N are read back from the head of the written parts, so nothing is computed
twice. The sorted result is written as part files; concatenating them in part-name
order under ``word,count`` gives the globally sorted CSV.

Two plans, chosen by input size, give the same bytes. A large input is read in splits
sized so every core gets the same number; each form is counted as written (per split
before the shuffle), lower-cased once per form, the forms' counts summed, and the result
is range-partitioned into parts. Spark 4.1.2 keeps the two aggregations apart (a second,
small shuffle of the distinct forms), and lower-casing once per form instead of once per
word took 15% less JVM CPU for the whole count on 109 MB (local[2], medians of 6: 5.1 s
against 6.0 s). A small input (at most ``SMALL_INPUT_BYTES``) lower-cases every word
and counts once (there the second aggregation costs more than it saves: 1.9 s against
1.8 s on 20 MB), and is sorted in one partition without adaptive execution, which skips
the range partitioner's sampling job; when this process is about to start its own JVM
(``python wordcount.py`` with ``PYSPARK_SUBMIT_ARGS``, as sparkube runs it locally),
that JVM also compiles with C1 only, which starts seconds faster and costs nothing on a
small input. Lower-casing is Java's
(``spark.sql.icu.caseMappings.enabled=false``): the same Unicode tables as the regex,
and no ICU start-up.

Usage: wordcount.py --output DIR [--top N] [--parts-name NAME] INPUT...
With a local OUTPUT the parts are merged into OUTPUT/wordcount.csv and removed; with any
other (``s3a://``) they stay under OUTPUT/PARTS_NAME. The last stdout line is
``SPARKUBE_SUMMARY {json}`` with words, distinct, top, seconds and output. Before it,
``SPARKUBE_STAGE {json}`` lines say what the job is doing (:data:`STAGES`): starting
Spark, counting (with the input splits done and in all, read from Spark's status
tracker while the input is scanned), writing (sorting and writing the result) and, for a
local OUTPUT, merging.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

WORD_PATTERN = r"[\p{L}\p{N}][\p{L}\p{M}\p{N}]*(?:['\u2019][\p{L}\p{N}][\p{L}\p{M}\p{N}]*)*"
SUMMARY_MARKER = "SPARKUBE_SUMMARY "
STAGE_MARKER = "SPARKUBE_STAGE "
#: The stages reported, in order.
STAGES = ("starting", "counting", "writing", "merging")
#: Seconds between two looks at Spark's status tracker while the count runs.
STAGE_POLL_SECONDS = 0.5
#: Job group of the count (its first stage is the one that scans the input).
JOB_GROUP = "sparkube-wordcount"
HEADER = "word,count\n"
RESULT_FILE = "wordcount.csv"
#: Inputs up to this size are aggregated and sorted in one partition (no sampling job).
SMALL_INPUT_BYTES = 32 << 20
#: Largest input split for a large input (the app evens them out below this).
MAX_SPLIT_BYTES = 32 << 20
#: JVM option for a quick start: C1 only (C2 pays off only on longer jobs).
QUICK_START_JAVA_OPTION = "-XX:TieredStopAtLevel=1"


def _part_files(parts_dir: Path) -> list[Path]:
    return sorted(
        p for p in parts_dir.glob("part-*") if not p.name.endswith(".crc") and p.is_file()
    )


def merge_parts(parts_dir: Path, target: Path) -> None:
    """Concatenate sorted part files (in part order) under a header into ``target``."""
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(HEADER.encode())
        for part in _part_files(parts_dir):
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    tmp.replace(target)


def _is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def _local_path(uri: str) -> Path:
    return Path(urlparse(uri).path) if uri.startswith("file:") else Path(uri)


def _parse_row(line: str) -> list[object]:
    word, count = line.rstrip("\r\n").rsplit(",", 1)
    return [word, int(count)]


def head_of_csv(path: Path, n: int) -> list[list[object]]:
    """The first ``n`` rows of a merged result file."""
    rows: list[list[object]] = []
    with path.open(encoding="utf-8", newline="\n") as handle:
        handle.readline()  # header
        for line in handle:
            if len(rows) >= n:
                break
            rows.append(_parse_row(line))
    return rows


def head_of_parts(spark: Any, parts_uri: str, n: int) -> list[list[object]]:
    """The first ``n`` rows of the sorted parts in a Hadoop file system (S3), read by the
    driver without a Spark job."""
    if n <= 0:
        return []
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(parts_uri)
    fs = path.getFileSystem(conf)
    names = sorted(
        str(status.getPath().getName())
        for status in fs.listStatus(path)
        if status.isFile() and str(status.getPath().getName()).startswith("part-")
    )
    rows: list[list[object]] = []
    for name in names:
        if len(rows) >= n:
            break
        reader = jvm.java.io.BufferedReader(
            jvm.java.io.InputStreamReader(
                fs.open(jvm.org.apache.hadoop.fs.Path(path, name)), "UTF-8"
            )
        )
        try:
            while len(rows) < n:
                line = reader.readLine()
                if line is None:
                    break
                rows.append(_parse_row(str(line)))
        finally:
            reader.close()
    return rows


def local_input_bytes(inputs: list[str]) -> int | None:
    """Total size of local inputs (compressed size for .gz); None if any is remote."""
    total = 0
    for uri in inputs:
        if not _is_local(uri):
            return None
        path = _local_path(uri)
        if path.is_dir():
            for root, _dirs, names in os.walk(path, followlinks=True):
                total += sum(os.stat(os.path.join(root, name)).st_size for name in names)
        else:
            total += os.stat(path).st_size
    return total


def remote_input_bytes(spark: Any, inputs: list[str]) -> int:
    """Total size of the inputs through Hadoop's file systems (for s3a:// inputs)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    total = 0
    for uri in inputs:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        total += int(path.getFileSystem(conf).getContentSummary(path).getLength())
    return total


def quick_start_submit_args(submit_args: str) -> str:
    """``PYSPARK_SUBMIT_ARGS`` with :data:`QUICK_START_JAVA_OPTION` added to the
    driver's Java options (appended to ones already given, never replacing them)."""
    args = shlex.split(submit_args)
    for i, arg in enumerate(args[:-1]):
        if arg == "--driver-java-options" or (
            arg == "--conf" and args[i + 1].startswith("spark.driver.extraJavaOptions=")
        ):
            args[i + 1] = f"{args[i + 1]} {QUICK_START_JAVA_OPTION}"
            return shlex.join(args)
    return shlex.join(["--driver-java-options", QUICK_START_JAVA_OPTION, *args])


def _prefer_quick_start() -> None:
    """If pyspark will start a JVM for this process, ask for a quick-starting one."""
    from pyspark import SparkContext

    submit_args = os.environ.get("PYSPARK_SUBMIT_ARGS")
    if not submit_args or "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # launched by spark-submit: the JVM is already running
    if SparkContext._active_spark_context is not None:
        return
    os.environ["PYSPARK_SUBMIT_ARGS"] = quick_start_submit_args(submit_args)


def report_stage(stage: str, done: int | None = None, total: int | None = None) -> None:
    """One ``SPARKUBE_STAGE`` line on stdout (``done``/``total``: input splits)."""
    record: dict[str, object] = {"stage": stage}
    if done is not None and total is not None:
        record.update(done=done, total=total)
    sys.stdout.write(STAGE_MARKER + json.dumps(record) + "\n")
    sys.stdout.flush()


class StageWatch:
    """While the count runs, reports how many input splits are done, then that the
    result is being sorted and written, from the status of the count's jobs.

    The count's first stage (lowest id among the jobs of :data:`JOB_GROUP`) scans the
    input; once all its tasks are done, the later stages sort and write. A line is
    printed only when the text changes. Progress must never break the count: any error
    in here ends the reporting, not the job.
    """

    def __init__(self, spark_context: Any, interval: float = STAGE_POLL_SECONDS) -> None:
        self._tracker = spark_context.statusTracker()
        self._interval = interval
        self._stop = threading.Event()
        self._last: tuple[str, int | None, int | None] = ("counting", None, None)
        self._thread = threading.Thread(target=self._loop, name="sparkube-stages", daemon=True)

    def __enter__(self) -> StageWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _state(self) -> tuple[str, int | None, int | None]:
        stage_ids = [
            stage_id
            for job_id in self._tracker.getJobIdsForGroup(JOB_GROUP)
            for info in [self._tracker.getJobInfo(job_id)]
            if info is not None
            for stage_id in info.stageIds
        ]
        scan = self._tracker.getStageInfo(min(stage_ids)) if stage_ids else None
        if scan is None:
            return ("counting", None, None)
        if scan.numCompletedTasks < scan.numTasks:
            return ("counting", scan.numCompletedTasks, scan.numTasks)
        return ("writing", None, None)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                state = self._state()
                if state != self._last:
                    self._last = state
                    report_stage(*state)
        except Exception:  # the count goes on without progress lines
            return


def even_split_bytes(total: int, parallelism: int) -> int:
    """A split size that gives every core the same number of splits (at most
    ``MAX_SPLIT_BYTES`` each), so no core idles while another reads the last one."""
    waves = max(1, -(-total // (parallelism * MAX_SPLIT_BYTES)))
    return max(1 << 20, -(-total // (parallelism * waves)))


def run(
    inputs: list[str],
    output: str,
    top: int,
    parts_name: str,
    small_input_bytes: int = SMALL_INPUT_BYTES,
) -> dict[str, object]:
    from pyspark.sql import Observation, SparkSession
    from pyspark.sql import functions as F

    started = time.monotonic()
    report_stage("starting")
    size = local_input_bytes(inputs)
    if size is not None and size <= small_input_bytes:
        _prefer_quick_start()
    spark = (
        SparkSession.builder.appName("sparkube-wordcount")
        .config("spark.sql.icu.caseMappings.enabled", "false")
        .getOrCreate()
    )
    parts = output.rstrip("/") + "/" + parts_name
    local_output = _is_local(output)
    top_rows: list[list[object]] = []
    try:
        if size is None:
            size = remote_input_bytes(spark, inputs)
        small = size <= small_input_bytes
        if small:
            spark.conf.set("spark.sql.adaptive.enabled", "false")
        elif (spark.sparkContext.master or "").startswith("local"):
            split = even_split_bytes(size, spark.sparkContext.defaultParallelism)
            spark.conf.set("spark.sql.files.maxPartitionBytes", str(split))
        lines = spark.read.text(inputs)
        found = lines.select(
            F.explode(F.regexp_extract_all("value", F.lit(WORD_PATTERN), 0)).alias("word")
        )
        order = [F.desc("count"), F.asc("word")]
        if small:
            counts = found.select(F.lower("word").alias("word")).groupBy("word").count()
            ordered = counts.coalesce(1).sortWithinPartitions(*order)
        else:
            # Each form as written, lower-cased once per form, the forms' counts summed.
            counts = (
                found.groupBy("word")
                .count()
                .select(F.lower("word").alias("word"), "count")
                .groupBy("word")
                .agg(F.sum("count").alias("count"))
            )
            ordered = counts.orderBy(*order)
        totals = Observation("sparkube-wordcount")
        observed = ordered.observe(
            totals,
            F.coalesce(F.sum("count"), F.lit(0)).alias("words"),
            F.count(F.lit(1)).alias("distinct"),
        )
        lines_out = observed.select(
            F.concat_ws(",", "word", F.col("count").cast("string")).alias("line")
        )
        report_stage("counting")
        spark.sparkContext.setJobGroup(JOB_GROUP, "count words", interruptOnCancel=False)
        with StageWatch(spark.sparkContext):
            lines_out.write.mode("overwrite").text(parts)
        metrics = totals.get
        if not local_output:
            top_rows = head_of_parts(spark, parts, top)
    finally:
        spark.stop()

    if local_output:
        report_stage("merging")
        out_dir = _local_path(output)
        merge_parts(out_dir / parts_name, out_dir / RESULT_FILE)
        shutil.rmtree(out_dir / parts_name, ignore_errors=True)
        top_rows = head_of_csv(out_dir / RESULT_FILE, top) if top > 0 else []
    return {
        "words": int(metrics.get("words") or 0),
        "distinct": int(metrics.get("distinct") or 0),
        "top": top_rows,
        "seconds": round(time.monotonic() - started, 3),
        "output": output,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sparkube WordCount")
    parser.add_argument("--output", required=True, help="output directory or s3a:// URI")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--parts-name",
        default=f"_sparkube-parts-{uuid.uuid4().hex[:12]}",
        help="folder under --output for the sorted part files (removed after merging)",
    )
    parser.add_argument(
        "--small-input-bytes",
        type=int,
        default=SMALL_INPUT_BYTES,
        help=argparse.SUPPRESS,  # tests force the range-partitioned path with 0
    )
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args(argv)
    summary = run(args.inputs, args.output, args.top, args.parts_name, args.small_input_bytes)
    sys.stdout.write(SUMMARY_MARKER + json.dumps(summary, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
