"""Cluster jobs commit their S3 output with the S3A magic committer (issue 16, item 8).

On the shared real-node cluster (tests/fixtures/bedcluster.py: drivers and executors as
pods on the workers, moto for S3 reached through the node with the instance role's
credentials), a job submitted with `sparkube submit` writes DataFrames under
$SPARKUBE_OUTPUT. Hadoop's
FileOutputCommitter would "rename" its task output on S3 by copy and delete; the magic
committer writes each file as a multipart upload left open and completes them all at
job commit. What shows it did: the JSON `_SUCCESS` manifest the S3A committers write
(FileOutputCommitter's is empty), no `__magic` path and no multipart upload left in the
bucket, the right rows, and `submit --output-dir` downloading the same files as before.
A write of the same job that asks for the FileOutputCommitter is the control.
"""

from __future__ import annotations

import json
import re
import textwrap

from sparkube.spark.records import output_prefix
from tests.fixtures.bedcluster import BedLab
from tests.fixtures.nodebed import REAL_NODES

pytestmark = REAL_NODES

PARTS = 6
ROWS = 3000

#: Writes the same rows as text (one file per partition) and as Parquet, and once more as
#: text with the FileOutputCommitter; reads the Parquet back on the cluster, and prints how
#: long the first two writes (tasks plus commit) took.
APP = textwrap.dedent(
    """
    import os, time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    out = os.environ["SPARKUBE_OUTPUT"]
    df = spark.range(0, {rows}, numPartitions={parts}).selectExpr(
        "id", "concat('row-', id) AS line"
    )
    t0 = time.monotonic()
    df.select("line").write.mode("overwrite").text(out + "lines")
    t1 = time.monotonic()
    df.write.mode("overwrite").parquet(out + "numbers")
    t2 = time.monotonic()
    # the control: this write alone asks for Hadoop's FileOutputCommitter
    df.select("line").write.option("fs.s3a.committer.name", "file").text(out + "control")
    back = spark.read.parquet(out + "numbers")
    print("PARQUET", back.count(), back.selectExpr("sum(id)").first()[0])
    print("WRITE_SECONDS text=%.2f parquet=%.2f" % (t1 - t0, t2 - t1))
    spark.stop()
    """
).format(rows=ROWS, parts=PARTS)


def submit(lab: BedLab, out: str) -> tuple[str, str]:
    """Run the app with `sparkube submit`, its output downloaded to ``out``; returns its
    driver log (`sparkube logs`) and the job's id."""
    (lab.env.cwd / "commit.py").write_text(APP)
    res = lab.run("submit", "commit.py", "--output-dir", out, "--executors", "2")
    assert res.exit_code == 0, res.stderr[-4000:]
    found = re.search(r"succeeded on the cluster \(job ([^)\s]+)\)", res.stdout + res.stderr)
    assert found, res.stderr[-3000:]
    logged = lab.run("logs", found.group(1))  # what the app printed
    assert logged.exit_code == 0, logged.stderr[-3000:]
    return logged.stdout, found.group(1)


def body(lab: BedLab, key: str) -> bytes:
    data: bytes = lab.s3.get_object(Bucket=lab.bucket, Key=key)["Body"].read()
    return data


def write_seconds(log: str) -> str:
    found = re.search(r"WRITE_SECONDS [^\n]*", log)
    return found.group(0) if found else "WRITE_SECONDS ?"


def test_s3_output_is_committed_by_the_magic_committer(bed_lab: BedLab) -> None:
    lab = bed_lab
    log, job_id = submit(lab, "out")
    output = output_prefix(job_id)
    rows = sorted(f"row-{i}" for i in range(ROWS))

    # (1) the result is right, in S3 and as downloaded
    assert f"PARQUET {ROWS} {ROWS * (ROWS - 1) // 2}" in log
    s3_keys = lab.keys(output)
    text_parts = sorted(k for k in s3_keys if k.startswith(output + "lines/part-"))
    assert len(text_parts) == PARTS, s3_keys
    assert len([k for k in s3_keys if k.startswith(output + "numbers/part-")]) == PARTS
    lines = b"".join(body(lab, k) for k in text_parts).decode().splitlines()
    assert sorted(lines) == rows

    # (2) the magic committer did the commit: the S3A committers' JSON _SUCCESS names
    # it and the files it committed (FileOutputCommitter leaves an empty _SUCCESS)
    for table, parts in (("lines", text_parts), ("numbers", None)):
        manifest = json.loads(body(lab, f"{output}{table}/_SUCCESS"))
        assert manifest["committer"] == "magic", manifest
        committed = sorted(name.lstrip("/") for name in manifest["filenames"])  # /KEY
        if parts is not None:
            assert committed == parts
        assert len(committed) == PARTS
        # each file was a multipart upload that the job commit completed
        assert manifest["iostatistics"]["counters"]["committer_commits_completed"] == PARTS

    # ... and the check tells committers apart: the write that asked for Hadoop's
    # FileOutputCommitter (one .option) has the same rows and an empty _SUCCESS
    control = sorted(k for k in s3_keys if k.startswith(output + "control/part-"))
    assert sorted(b"".join(body(lab, k) for k in control).decode().splitlines()) == rows
    assert body(lab, f"{output}control/_SUCCESS") == b""

    # (3) nothing of the commit is left behind: no __magic paths, no open uploads
    every_key = lab.keys("")
    assert not [k for k in every_key if "__magic" in k]
    uploads = lab.s3.list_multipart_uploads(Bucket=lab.bucket)
    assert not uploads.get("Uploads"), uploads["Uploads"]

    # (4) submit's download of $SPARKUBE_OUTPUT gives the same files as before: every
    # object of the output (parts and _SUCCESS), nothing of the committer's own
    out = lab.env.cwd / "out"
    local = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = sorted(k[len(output) :] for k in s3_keys if not k.endswith("/"))
    assert local == expected
    for table in ("lines", "numbers", "control"):
        names = [p.split("/", 1)[1] for p in local if p.startswith(table + "/")]
        assert names.count("_SUCCESS") == 1
        assert len([n for n in names if n.startswith("part-")]) == PARTS == len(names) - 1
    assert not [p for p in local if "__magic" in p or p.endswith((".pending", ".pendingset"))]
    downloaded = sorted(
        line for part in sorted(out.glob("lines/part-*")) for line in part.read_text().splitlines()
    )
    assert downloaded == rows
    print(f"\n{write_seconds(log)}")
