"""sparkube's built-in WordCount, a standalone PySpark application.

The same file runs on embedded Spark (``spark-submit --master local[*]``) and, uploaded
to the cluster's bucket, in the driver pod on Kubernetes. It therefore imports nothing
from sparkube.

Semantics (DESIGN.md): a word is a maximal run of Unicode letters and numbers (general
categories L* and N*); a single ``'`` or ``’`` between two such characters joins the
parts. Words are extracted first, then lower-cased (so a lower-casing that produces a
combining mark, as for U+0130, cannot split a word). Output is ``word,count`` sorted by
count descending, then word ascending (code point order, as Spark compares strings).

Everything runs in Spark SQL functions (Java regex, no Python UDF), so the work scales
with executors and the input never has to fit in the driver. The sorted result is
written as range-partitioned part files; concatenating them in part order gives the
globally sorted CSV.

Usage: wordcount.py --output DIR [--top N] [--parts-name NAME] INPUT...
The last stdout line is ``SPARKUBE_SUMMARY {json}`` with totals and the top N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

WORD_PATTERN = r"[\p{L}\p{N}]+(?:['\u2019][\p{L}\p{N}]+)*"
SUMMARY_MARKER = "SPARKUBE_SUMMARY "
HEADER = "word,count\n"
RESULT_FILE = "wordcount.csv"


def merge_parts(parts_dir: Path, target: Path) -> None:
    """Concatenate sorted part files (in part order) under a header into ``target``."""
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(HEADER.encode())
        for part in sorted(parts_dir.glob("part-*")):
            if part.name.endswith(".crc"):
                continue
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    tmp.replace(target)


def _is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file")


def _local_path(uri: str) -> Path:
    return Path(urlparse(uri).path) if uri.startswith("file:") else Path(uri)


def run(inputs: list[str], output: str, top: int, parts_name: str) -> dict[str, object]:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    started = time.monotonic()
    spark = SparkSession.builder.appName("sparkube-wordcount").getOrCreate()
    try:
        lines = spark.read.text(inputs)
        words = lines.select(
            F.explode(F.regexp_extract_all("value", F.lit(WORD_PATTERN), 0)).alias("raw")
        ).select(F.lower("raw").alias("word"))
        counts = words.groupBy("word").count().persist()
        ordered = counts.orderBy(F.desc("count"), F.asc("word"))
        parts = output.rstrip("/") + "/" + parts_name
        ordered.select(
            F.concat_ws(",", "word", F.col("count").cast("string")).alias("line")
        ).write.mode("overwrite").text(parts)
        totals = counts.agg(F.sum("count").alias("words"), F.count("*").alias("distinct"))
        row = totals.collect()[0]
        top_rows = ordered.limit(top).collect() if top > 0 else []
        counts.unpersist()
    finally:
        spark.stop()

    if _is_local(output):
        out_dir = _local_path(output)
        merge_parts(out_dir / parts_name, out_dir / RESULT_FILE)
        shutil.rmtree(out_dir / parts_name, ignore_errors=True)
    return {
        "words": int(row["words"] or 0),
        "distinct": int(row["distinct"] or 0),
        "top": [[r["word"], int(r["count"])] for r in top_rows],
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
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args(argv)
    summary = run(args.inputs, args.output, args.top, args.parts_name)
    sys.stdout.write(SUMMARY_MARKER + json.dumps(summary, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
