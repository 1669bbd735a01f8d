"""Job facts from the bucket alone (moto over HTTP, no cluster): the ledger's jobs from
records and the drivers' event logs, and ``jobs``/``logs`` that make no write call."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sparkube.aws import storage
from sparkube.aws.session import CallCounter, observe_calls
from sparkube.cost.jobs import job_facts
from sparkube.spark import jobs as spark_jobs
from sparkube.spark.records import INDEX_KEY, log_key, record_key
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import ACCOUNT, REGION, MotoAws

pytestmark = pytest.mark.integration

CLUSTER = "facts"
MIB = 2**20
T0 = 1796570760000  # 2026-12-06T15:26:00Z, Spark's milliseconds
Cli = Callable[..., CliResult]


def at(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _event(name: str, millis: int, **fields: object) -> str:
    return json.dumps({"Event": name, "Timestamp": millis, **fields})


def _log(job_id: str, *, ended: bool) -> bytes:
    lines = [
        json.dumps({"Event": "SparkListenerLogStart", "Spark Version": "4.1.2"}),
        _event("SparkListenerApplicationStart", T0, **{"App Name": f"sparkube-{job_id}",
                                                        "App ID": job_id, "User": "spark"}),
        _event("SparkListenerExecutorAdded", T0 + 15_000, **{
            "Executor ID": "1", "Executor Info": {"Host": "10.244.2.7", "Total Cores": 1}}),
        _event("SparkListenerExecutorRemoved", T0 + 50_000, **{
            "Executor ID": "1", "Removed Reason": "finished"}),
    ]  # fmt: skip
    if ended:
        lines.append(_event("SparkListenerApplicationEnd", T0 + 60_000, ExitCode=0))
    return ("\n".join(lines) + "\n").encode()


def _record(job_id: str, state: str, **more: object) -> dict[str, Any]:
    return {
        "job_id": job_id, "app": "etl.py", "kind": "submit", "state": state,
        "submitted": "2026-12-06T15:25:50Z", "executors": 1, "executor_cores": 1,
        "executor_memory": "1g",
        "driver_request": {"cpu": 0.5, "memory_bytes": 1408 * MIB},
        "executor_request": {"cpu": 1.0, "memory_bytes": 1408 * MIB}, **more,
    }  # fmt: skip


def _seed(moto_aws: MotoAws) -> tuple[Any, str]:
    s3: Any = moto_aws.client("s3")
    bucket = storage.bucket_name(CLUSTER, REGION, ACCOUNT)
    s3.create_bucket(Bucket=bucket)

    def put(key: str, body: bytes) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    # an unwatched job: submitted with --no-wait, ended while no CLI looked
    put(record_key("job-unwatched"), json.dumps(_record("job-unwatched", "Running")).encode())
    put("spark-events/eventlog_v2_job-unwatched/events_1_job-unwatched",
        _log("job-unwatched", ended=True))  # fmt: skip
    put("spark-events/eventlog_v2_job-unwatched/appstatus_job-unwatched", b"")
    # a watched job that ended (its record says so) and is not in the index yet
    put(record_key("job-watched"), json.dumps(_record(
        "job-watched",
        "Succeeded", started="2026-12-06T15:26:00Z", finished="2026-12-06T15:27:05Z",
        exit_code=0)).encode())  # fmt: skip
    put(log_key("job-watched"), b"hello from the driver\n")
    # an older record: no requests, no event log
    old = _record(
        "job-old", "Failed", started="2026-12-06T15:26:00Z", finished="2026-12-06T15:26:30Z"
    )
    del old["driver_request"], old["executor_request"]
    put(record_key("job-old"), json.dumps(old).encode())
    # a driver log being written (a single-file log, cut mid-line)
    cut = _log("job-cut", ended=False)
    put(record_key("job-cut"), json.dumps(_record("job-cut", "Running")).encode())
    put("spark-events/job-cut.inprogress", cut + b'{"Event":"SparkListenerExecutorAdd')
    return s3, bucket


def test_job_facts_from_the_bucket_alone(moto_aws: MotoAws) -> None:
    s3, bucket = _seed(moto_aws)
    api = spark_jobs.open_jobs(moto_aws.env, CLUSTER, REGION)
    assert api.bucket_only
    counter = CallCounter()
    with observe_calls(counter):
        facts, notes = job_facts(api, now=at(T0 + 3_600_000))
    assert counter.writes() == {}, counter.writes()
    by_id = {j.job_id: j for j in facts}
    assert set(by_id) == {"job-unwatched", "job-watched", "job-old", "job-cut"}

    unwatched = by_id["job-unwatched"]
    driver, executor = unwatched.pods
    assert (driver.ran.start, driver.ran.end) == (at(T0), at(T0 + 60_000))
    assert (executor.ran.start, executor.ran.end) == (at(T0 + 15_000), at(T0 + 50_000))
    assert (driver.cpu, driver.memory_bytes) == (0.5, 1408 * MIB)
    assert (executor.cpu, executor.memory_bytes) == (1.0, 1408 * MIB)
    assert "event log" in unwatched.source

    watched = by_id["job-watched"]
    assert {(p.ran.start, p.ran.end) for p in watched.pods} == {
        (at(T0), datetime(2026, 12, 6, 15, 27, 5, tzinfo=UTC))
    }
    old = by_id["job-old"]
    assert [(p.cpu, p.memory_bytes) for p in old.pods] == [
        (0.5, 1408 * MIB),  # the driver's defaults then
        (1.0, (1024 + 384) * MIB),
    ]
    cut = by_id["job-cut"]  # no cluster to say it still runs: costed to what is known
    assert cut.pods[0].ran.end == at(T0 + 50_000)
    assert "end unknown" in cut.source
    assert any("job-cut" in n and "last known moment" in n for n in notes)
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=INDEX_KEY).get("Contents")


def test_jobs_logs_and_usage_make_no_write_call(cli: Cli, moto_aws: MotoAws) -> None:
    s3, bucket = _seed(moto_aws)
    keys_before = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    counter = CallCounter()
    with observe_calls(counter):
        listed = cli("jobs", "--cluster", CLUSTER, "-o", "json", env=moto_aws.env)
        assert listed.exit_code == 0, listed.stderr
        text = cli("jobs", "--cluster", CLUSTER, env=moto_aws.env)
        assert text.exit_code == 0, text.stderr
        log = cli("logs", "job-watched", "--cluster", CLUSTER, env=moto_aws.env)
        assert log.exit_code == 0, log.stderr
        missing = cli("logs", "job-unwatched", "--cluster", CLUSTER, env=moto_aws.env)
        assert missing.exit_code != 0
        usage = cli("usage", "--cluster", CLUSTER, "--since", "all", "-o", "json",
                    env=moto_aws.env)  # fmt: skip
        assert usage.exit_code == 0, usage.stderr
    assert counter.total > 0
    assert counter.writes() == {}, counter.writes()
    keys_after = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys_after == keys_before  # no index written by a read
    assert "hello from the driver" in log.stdout
    costed = {j["job_id"]: j for j in json.loads(usage.stdout)["jobs"]}
    assert costed["job-unwatched"]["state"] == "Succeeded"
    assert costed["job-unwatched"]["finished"] == "2026-12-06T15:27:00Z"  # its event log's end
    records = {r["job_id"]: r for r in json.loads(listed.stdout)}
    assert records["job-watched"]["driver_request"] == {"cpu": 0.5, "memory_bytes": 1408 * MIB}
