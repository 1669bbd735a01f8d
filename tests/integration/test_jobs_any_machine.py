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
