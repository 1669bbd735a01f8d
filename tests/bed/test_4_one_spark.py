"""One Spark: the same PySpark app gives the same bytes locally and on the cluster.

sparkube pins pyspark to the Spark of the cluster image (``SPARK_IMAGE``), so a job tried
with ``submit --local`` is the job the cluster runs. The app below aggregates (count,
exact sums of doubles and decimals, averages, an exact median, distinct counts, sorted
sets, dates), runs a Python UDF on the executors, sorts, and writes one CSV with a header
and the Spark version in every row. It runs through the CLI on embedded Spark and on the
shared real-node cluster (tests/fixtures/bedcluster.py: driver and executor pods of the
bed's Spark image on the workers, S3 on moto), and the two CSVs must be equal byte for
byte.

The values are chosen so the result does not depend on how rows are split or in which
order partial aggregates meet (local[N] and two executors split differently): doubles are
multiples of 1/8 (sums exact), the median is ``percentile`` (exact), sets are sorted.

Locally the app writes to the folder given as its argument; on the cluster, given none,
to ``$SPARKUBE_OUTPUT`` (the job's ``output/`` in the cluster's bucket), read here
straight from the bucket: the bytes the cluster wrote, not a copy of them.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from sparkube.spark.image import SPARK_IMAGE
from tests.fixtures.bedcluster import BedLab
from tests.fixtures.nodebed import REAL_NODES

pytestmark = REAL_NODES


APP = textwrap.dedent(
    """
    import os
    import sys

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    out = sys.argv[1] if len(sys.argv) > 1 else os.environ["SPARKUBE_OUTPUT"]
    spark = (
        SparkSession.builder.appName("one-spark")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    cities = ["Zürich", "São Paulo", "İstanbul", "Kraków", "東京", "Ålesund", "naïve", "Ǆemal"]
    rows = spark.range(0, 20000, numPartitions=7).select(
        F.element_at(
            F.array(*[F.lit(c) for c in cities]), (F.col("id") % len(cities) + 1).cast("int")
        ).alias("city"),
        ((F.col("id") * 37) % 1000 / 8).alias("x"),
        ((F.col("id") % 997).cast("decimal(12,2)") / 4).alias("amount"),
        F.date_add(F.lit("2026-01-01").cast("date"), (F.col("id") % 365).cast("int")).alias("day"),
        (F.col("id") % 13).alias("m13"),
        (F.col("id") % 5).cast("string").alias("m5"),
    )
    upside_down = F.udf(lambda s: s[::-1].upper(), "string")  # Python on the executors
    summary = (
        rows.groupBy("city", F.month("day").alias("month"))
        .agg(
            F.count("*").alias("n"),
            F.sum("x").alias("sum_x"),
            F.avg("x").alias("avg_x"),
            F.percentile("x", 0.5).alias("median_x"),
            F.sum("amount").alias("amount"),
            F.min("day").alias("first"),
            F.max("day").alias("last"),
            F.count_distinct("m13").alias("d13"),
            F.concat_ws("|", F.sort_array(F.collect_set("m5"))).alias("m5s"),
        )
        .withColumn("city_up", upside_down("city"))
        .withColumn("spark", F.lit(spark.version))
        .orderBy(F.desc("n"), "city", "month")
    )
    summary.coalesce(1).write.option("header", True).csv(out.rstrip("/") + "/summary")
    print("ONE_SPARK rows", summary.count(), "spark", spark.version)
    spark.stop()
    """
)


def _csv(folder: Path) -> bytes:
    """The one CSV part Spark wrote under ``folder`` (coalesce(1): exactly one)."""
    parts = sorted(folder.glob("part-*.csv"))
    assert len(parts) == 1, sorted(p.name for p in folder.iterdir())
    return parts[0].read_bytes()


def _bucket_csv(lab: BedLab, job_id: str) -> bytes:
    """The one CSV part the cluster job wrote under its ``output/summary/``."""
    listed = lab.keys(f"jobs/{job_id}/")
    parts = [k for k in listed if "/output/summary/part-" in k and k.endswith(".csv")]
    assert len(parts) == 1, listed
    body: bytes = lab.s3.get_object(Bucket=lab.bucket, Key=parts[0])["Body"].read()
    return body


def test_the_same_app_gives_the_same_bytes_locally_and_on_the_cluster(bed_lab: BedLab) -> None:
    lab = bed_lab
    app = lab.env.cwd / "one_spark.py"
    app.write_text(APP, encoding="utf-8")

    local_out = lab.env.cwd / "local-out"
    local = lab.run("submit", "one_spark.py", str(local_out), "--local")
    assert local.exit_code == 0, local.stderr[-4000:]
    assert f"ONE_SPARK rows 96 spark {SPARK_IMAGE.spark_version}" in local.stdout

    remote = lab.run("submit", "one_spark.py", "--executors", "2")
    assert remote.exit_code == 0, remote.stderr[-4000:]
    assert f"Running on cluster {lab.cluster.name} (2 executors" in remote.stderr
    found = re.search(r"job (job-[\w-]+)", remote.stderr)
    assert found, remote.stderr[-2000:]

    here = _csv(local_out / "summary")
    there = _bucket_csv(lab, found.group(1))
    assert here == there

    lines = here.decode("utf-8").splitlines()
    assert lines[0] == "city,month,n,sum_x,avg_x,median_x,amount,first,last,d13,m5s,city_up,spark"
    assert len(lines) == 1 + 8 * 12
    # Spark's own version is in every row: both sides ran the pinned Spark.
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {SPARK_IMAGE.spark_version}
    # The Python UDF ran (on the executors of each side) and the sort held.
    assert "İstanbul" in here.decode() and "LUBNATSİ" in here.decode()
    counts = [int(line.split(",")[2]) for line in lines[1:]]
    assert counts == sorted(counts, reverse=True) and sum(counts) == 20000
