"""Job records in the bucket (moto): the index keeps `jobs`/`usage` cheap as jobs pile up."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparkube.aws.session import AwsClients, CallCounter, observe_calls
from sparkube.spark.cluster import ClusterJobs
from sparkube.spark.config import ClusterConfig
from sparkube.spark.records import record_key
from tests.fixtures.moto_server import REGION, MotoAws

pytestmark = pytest.mark.integration


def _jobs(moto_aws: MotoAws, n: int, running: int = 0) -> tuple[ClusterJobs, Any]:
    s3: Any = moto_aws.client("s3")
    s3.create_bucket(Bucket="sparkube-jobs-test")
    for i in range(n):
        state = "Running" if i < running else "Succeeded"
        rec = {"job_id": f"job-{i:04d}", "app": "a.py", "kind": "submit", "state": state,
               "submitted": "2026-12-02T12:00:00Z", "executors": 1}  # fmt: skip
        s3.put_object(
            Bucket="sparkube-jobs-test",
            Key=record_key(rec["job_id"]),
            Body=json.dumps(rec).encode(),
        )
    api = ClusterJobs(None, lambda region: AwsClients(moto_aws.env.environ, region).s3)
    api._config = ClusterConfig(cluster="c", bucket="sparkube-jobs-test", region=REGION)
    return api, s3


def test_reads_write_no_index_and_a_write_path_keeps_it(moto_aws: MotoAws) -> None:
    api, _ = _jobs(moto_aws, 60, running=2)
    first = CallCounter()
    with observe_calls(first):
        records = api._bucket_records()
    assert len(records) == 60
    assert first.calls["s3.GetObject"] == 61  # the (missing) index + every record
    assert first.writes() == {}  # a read command writes nothing (issue 17)

    # the write path that ends a job (a watcher's finish, cancel) adds it to the index
    for rec in records.values():
        if rec.state == "Succeeded":
            api._add_to_index(rec.to_json())
    api._update_record("job-0000", state="Cancelled", message="cancelled by the user")

    second = CallCounter()
    with observe_calls(second):  # another machine: a new client, nothing cached
        other = ClusterJobs(None, lambda region: AwsClients(moto_aws.env.environ, region).s3)
        other._config = api._config
        again = other._bucket_records()
    assert {k: v for k, v in again.items() if k != "job-0000"} == {
        k: v for k, v in records.items() if k != "job-0000"
    }
    assert again["job-0000"].state == "Cancelled"
    # the index, plus the one running job whose record may still change
    assert second.calls["s3.GetObject"] == 2
    assert second.writes() == {}
