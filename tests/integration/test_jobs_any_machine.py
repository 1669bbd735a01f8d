"""``jobs`` and ``logs`` from a machine that did not run ``up`` (issue 16): with only AWS
credentials and the cluster's name they read the cluster's bucket (found from the name,
the region and the credentials' account, as ``up`` named it), against moto. Records and
logs are written as the cluster's jobs write them (sparkube.spark.records)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sparkube.aws.s3 import put_json
from sparkube.aws.storage import bucket_name
from sparkube.spark.records import JobRecord, log_key, record_key
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import ACCOUNT, REGION, MotoAws

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]


def _seed(moto_aws: MotoAws, cluster: str) -> Any:
    s3: Any = moto_aws.client("s3")
    bucket = bucket_name(cluster, REGION, ACCOUNT)
    s3.create_bucket(Bucket=bucket)
    done = JobRecord(
        job_id="job-20261206-1200-aaaa", app="etl.py", kind="submit", state="Failed",
        submitted="2026-12-06T12:00:00Z", finished="2026-12-06T12:03:00Z", exit_code=1,
        executors=2, executor_cores=1, executor_memory="1g", message="etl.py failed: boom",
    )  # fmt: skip
    running = JobRecord(
        job_id="job-20261206-1300-bbbb", app="pi.py", kind="submit", state="Running",
        submitted="2026-12-06T13:00:00Z", executors=1,
    )  # fmt: skip
    for rec in (done, running):
        put_json(s3, bucket, record_key(rec.job_id), rec.to_json())
    s3.put_object(
        Bucket=bucket,
        Key=log_key(done.job_id),
        Body=b"26/12/06 12:00:01 INFO SparkContext: Running Spark version 4.1.2\nrows 100\n",
    )
    return s3


def test_jobs_and_logs_read_the_bucket_without_a_kubeconfig(cli: Cli, moto_aws: MotoAws) -> None:
    _seed(moto_aws, "demo")
    listed = cli("jobs", "--cluster", "demo", "--output", "json", env=moto_aws.env)
    assert listed.exit_code == 0, listed.stderr
    rows = {r["job_id"]: r for r in json.loads(listed.stdout)}
    assert rows["job-20261206-1200-aaaa"]["state"] == "Failed"
    assert rows["job-20261206-1300-bbbb"]["state"] == "Running"
    assert "last recorded state" in listed.stderr
    logs = cli("logs", "job-20261206-1200-aaaa", "--cluster", "demo", env=moto_aws.env)
    assert logs.exit_code == 0, logs.stderr
    assert logs.stdout.splitlines() == ["rows 100"]
    every = cli("logs", "job-20261206-1200-aaaa", "-c", "demo", "--verbose", env=moto_aws.env)
    assert "INFO SparkContext" in every.stdout
    pending = cli("logs", "job-20261206-1300-bbbb", "--cluster", "demo", env=moto_aws.env)
    assert pending.exit_code == 1
    assert "no driver log in the cluster's bucket yet" in pending.stderr
    follow = cli("logs", "job-20261206-1300-bbbb", "-c", "demo", "--follow", env=moto_aws.env)
    assert follow.exit_code == 2
    assert "--follow needs the cluster's API" in follow.stderr


def test_a_cluster_with_no_bucket_is_no_such_cluster(cli: Cli, moto_aws: MotoAws) -> None:
    res = cli("jobs", "--cluster", "nowhere", env=moto_aws.env)
    assert res.exit_code == 2
    assert "No cluster nowhere in" in res.stderr


def test_jobs_shows_the_interruptions_a_job_met_and_what_they_cost(
    cli: Cli, moto_aws: MotoAws
) -> None:
    """A job's record keeps the interruptions the controller told its Job (its Job long
    gone): ``jobs`` says each, and what it cost from the job's event log in the bucket; a
    job without one, or with only a rebalance cordon, says no cost."""
    from tests.unit.test_cost_jobs import INTERRUPTED, LOG

    s3 = _seed(moto_aws, "demo")
    bucket = bucket_name("demo", REGION, ACCOUNT)
    spot = {"node": "worker-3", "kind": "spot", "at": "2026-12-06T14:01:00Z", "executors": 2,
            "driver": False}  # fmt: skip
    cordon = {"node": "worker-4", "kind": "rebalance", "at": "2026-12-06T14:00:00Z",
              "executors": 1, "driver": False}  # fmt: skip
    base = {"app": "etl.py", "kind": "submit", "state": "Succeeded", "exit_code": 0,
            "executors": 3, "decommission": "on"}  # fmt: skip
    records = {
        "job-20261206-1400-cccc": {**base, "interruptions": [cordon, spot]},
        "job-20261206-1410-dddd": {**base, "interruptions": [spot], "decommission": "off"},
        "job-20261206-1420-eeee": {**base, "interruptions": [cordon]},
    }
    for index, (job_id, rec) in enumerate(records.items()):
        times = {"submitted": f"2026-12-06T14:{index}0:00Z",
                 "finished": f"2026-12-06T14:{index}5:00Z"}  # fmt: skip
        put_json(s3, bucket, record_key(job_id), {"job_id": job_id, **times, **rec})
    # the first job's event log is in the bucket, rolled as Spark 4 writes it
    folder = "spark-events/eventlog_v2_job-20261206-1400-cccc/"
    lines = [*LOG[:-1], *INTERRUPTED]
    for number, part in enumerate((lines[:8], lines[8:]), start=1):
        s3.put_object(Bucket=bucket, Key=f"{folder}events_{number}_job-20261206-1400-cccc",
                      Body="\n".join(part).encode() + b"\n")  # fmt: skip
    s3.put_object(Bucket=bucket, Key=f"{folder}appstatus_job-20261206-1400-cccc", Body=b"")

    listed = cli("jobs", "--cluster", "demo", env=moto_aws.env)
    assert listed.exit_code == 0, listed.stderr
    notes = [line for line in listed.stdout.splitlines() if line.split(" ")[0] in records]
    assert notes == [
        "job-20261206-1420-eeee worker-4 cordoned (rebalance recommendation)",
        "job-20261206-1410-dddd worker-3 interrupted (spot): 2 executors lost",
        "job-20261206-1400-cccc worker-4 cordoned (rebalance recommendation)",
        "job-20261206-1400-cccc worker-3 interrupted (spot): 2 executors decommissioned",
        "job-20261206-1400-cccc interruption cost ≈ 39 s of task time (4 tasks re-run, 2 stages "
        "re-attempted)",
    ], listed.stdout
    as_json = cli("jobs", "--cluster", "demo", "--output", "json", env=moto_aws.env)
    rows = {r["job_id"]: r for r in json.loads(as_json.stdout)}
    first = rows["job-20261206-1400-cccc"]
    assert first["interruptions"] == [cordon, spot]
    assert first["interruption_cost"] == {
        "tasks_rerun": 4, "task_seconds": 39.0, "stage_attempts_rerun": 2
    }  # fmt: skip
    assert rows["job-20261206-1410-dddd"]["interruption_cost"] is None  # no event log
    assert rows["job-20261206-1420-eeee"]["interruption_cost"] is None  # a cordon only
    assert rows["job-20261206-1200-aaaa"]["interruptions"] == []  # a record from before
