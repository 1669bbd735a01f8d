"""The ledger's job facts: the driver's event log read, the pods' requests recorded at
submit, and each job's pods and times worked out from record, event log and cluster."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from sparkube.cost.jobs import (
    EventLog,
    LogFile,
    _Cluster,
    event_log_files,
    job_fact,
    parse_event_log,
    parse_rework,
    pod_request,
)
from sparkube.spark.config import ClusterConfig, Resources
from sparkube.spark.podspec import Endpoints, JobSpec, job_manifests, pod_requests, spark_properties
from sparkube.spark.records import JobRecord

MIB = 2**20
T0 = 1796570760000  # 2026-12-06T15:26:00Z in Spark's milliseconds


def at(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def event(name: str, **fields: object) -> str:
    return json.dumps({"Event": name, **fields})


#: Lines as Spark 4.1's JsonProtocol writes them (field names checked against a real
#: 4.1.2 event log: Event first, Timestamp in epoch milliseconds).
LOG = [
    event("SparkListenerLogStart", **{"Spark Version": "4.1.2"}),
    event("SparkListenerResourceProfileAdded", **{"Resource Profile Id": 0}),
    event(
        "SparkListenerExecutorAdded",
        Timestamp=T0 + 100,
        **{
            "Executor ID": "driver",
            "Executor Info": {"Host": "10.244.1.5", "Total Cores": 1, "Log Urls": {}},
        },
    ),
    event("SparkListenerEnvironmentUpdate", **{"Spark Properties": {"spark.app.id": "job-1"}}),
    event(
        "SparkListenerApplicationStart",
        Timestamp=T0,
        User="spark",
        **{
            "App Name": "sparkube-job-1",
            "App ID": "job-1",
        },
    ),
    event(
        "SparkListenerExecutorAdded",
        Timestamp=T0 + 20_000,
        **{
            "Executor ID": "1",
            "Executor Info": {
                "Host": "10.244.2.7",
                "Total Cores": 2,
                "Log Urls": {},
                "Attributes": {},
                "Resources": {},
                "Resource Profile Id": 0,
            },
        },
    ),
    event(
        "SparkListenerExecutorAdded",
        Timestamp=T0 + 21_000,
        **{
            "Executor ID": "2",
            "Executor Info": {"Host": "10.244.3.2", "Total Cores": 2},
        },
    ),
    event("SparkListenerJobStart", **{"Job ID": 0, "Submission Time": T0 + 22_000}),
    event(
        "SparkListenerExecutorRemoved",
        Timestamp=T0 + 60_000,
        **{
            "Executor ID": "2",
            "Removed Reason": "The executor with id 2 exited with exit code 137",
        },
    ),
    event(
        "SparkListenerExecutorAdded",
        Timestamp=T0 + 65_000,
        **{
            "Executor ID": "3",
            "Executor Info": {"Host": "10.244.3.9", "Total Cores": 2},
        },
    ),
    event("SparkListenerApplicationEnd", Timestamp=T0 + 120_000, ExitCode=0),
]


def test_event_log_gives_the_application_and_executor_times() -> None:
    log = parse_event_log(line.encode() for line in LOG)
    assert log.app_id == "job-1"
    assert log.start == at(T0) and log.end == at(T0 + 120_000)
    assert log.executors == {  # the driver's own block manager is no executor
        "1": [at(T0 + 20_000), None],
        "2": [at(T0 + 21_000), at(T0 + 60_000)],
        "3": [at(T0 + 65_000), None],
    }
    assert log.last == at(T0 + 120_000)


def test_a_cut_last_line_of_a_log_being_written_is_skipped() -> None:
    running = LOG[:-1]
    cut = [*running[:-1], running[-1][: len(running[-1]) // 2]]  # half an event
    log = parse_event_log(cut)  # str lines too
    assert log.start == at(T0) and log.end is None
    assert set(log.executors) == {"1", "2"}  # executor 3's event was cut
    assert log.last == at(T0 + 60_000)


def test_files_of_a_rolled_log_are_read_in_order_into_one() -> None:
    log = EventLog()
    parse_event_log(LOG[:6], log)
    parse_event_log(LOG[6:], log)
    assert log.start == at(T0) and log.end == at(T0 + 120_000) and len(log.executors) == 3


def test_event_log_files_are_found_by_application_id() -> None:
    keys = [
        "spark-events/",
        "spark-events/eventlog_v2_job-1/appstatus_job-1",
        "spark-events/eventlog_v2_job-1/events_2_job-1",
        "spark-events/eventlog_v2_job-1/events_1_job-1",
        "spark-events/eventlog_v2_job-2/appstatus_job-2.inprogress",  # running: no events yet
        "spark-events/eventlog_v2_job-3/events_1_job-3.zstd",
        "spark-events/job-4.inprogress",  # spark.eventLog.rolling.enabled=false
        "spark-events/spark-0c1d2e3f4a5b",  # a log of an app sparkube did not name
    ]
    found = event_log_files(keys)
    assert found["job-1"] == [
        LogFile("spark-events/eventlog_v2_job-1/events_1_job-1", 1, None),
        LogFile("spark-events/eventlog_v2_job-1/events_2_job-1", 2, None),
    ]
    assert "job-2" not in found
    assert found["job-3"] == [LogFile("spark-events/eventlog_v2_job-3/events_1_job-3.zstd", 1,
                                      "zstd")]  # fmt: skip
    assert found["job-4"] == [LogFile("spark-events/job-4.inprogress", 0, None)]
    assert "spark-0c1d2e3f4a5b" in found


# --------------------------------------------------------------------------- requests


def config() -> ClusterConfig:
    return ClusterConfig(cluster="c", bucket="b", region="eu-west-1", worker_cpu=4,
                            worker_memory=16 * 2**30, workers=2)  # fmt: skip


def spec(conf: dict[str, str] | None = None, app: str = "etl.py") -> JobSpec:
    return JobSpec(
        job_id="job-20261206-1526-4f2a", app_name=app, app_file=app, app_bytes=b"",
        args=(), resources=Resources(2, 3, "5888m"), conf=conf or {},
    )  # fmt: skip


def requests_for(s: JobSpec) -> tuple[dict[str, float], dict[str, float]]:
    return pod_requests(s, spark_properties(s, config(), Endpoints()))


def test_requests_are_the_pods_as_built() -> None:
    s = spec()
    driver, executor = requests_for(s)
    job, _ = job_manifests(s, config(), Endpoints(), submitted="x")
    pod = {"spec": job["spec"]["template"]["spec"]}
    assert pod_request(pod) == (driver["cpu"], driver["memory_bytes"])
    assert driver == {"cpu": 0.5, "memory_bytes": (1024 + 384) * MIB}
    # Spark's overhead: max(0.1 × heap rounded down, 384 MiB) = 588 MiB
    assert executor == {"cpu": 3.0, "memory_bytes": (5888 + 588) * MIB}


def test_conf_settings_reach_the_requests() -> None:
    _, executor = requests_for(spec({"spark.executor.memoryOverhead": "1g"}))
    assert executor["memory_bytes"] == (5888 + 1024) * MIB
    _, executor = requests_for(spec({"spark.executor.memoryOverhead": "700"}))  # MiB
    assert executor["memory_bytes"] == (5888 + 700) * MIB
    driver, executor = requests_for(spec({
        "spark.kubernetes.executor.request.cores": "500m", "spark.executor.cores": "2",
        "spark.executor.memory": "2g", "spark.driver.cores": "2", "spark.driver.memory": "3g",
        "spark.driver.memoryOverhead": "512m",
    }))  # fmt: skip
    assert executor == {"cpu": 0.5, "memory_bytes": (2048 + 384) * MIB}
    assert driver == {"cpu": 2.0, "memory_bytes": (3072 + 512) * MIB}
    off_heap = {"spark.memory.offHeap.enabled": "true", "spark.memory.offHeap.size": "1g"}
    _, executor = requests_for(spec({**off_heap, "spark.executor.pyspark.memory": "512m"}))
    # in client mode Spark does not take the app for Python (spark.kubernetes.resource.type
    # is set by cluster-mode submission only), so pyspark memory adds nothing ...
    assert executor["memory_bytes"] == (5888 + 588 + 1024) * MIB
    # ... unless the user says it is
    python = {"spark.kubernetes.resource.type": "python", "spark.executor.pyspark.memory": "512m"}
    _, executor = requests_for(spec(python))
    assert executor["memory_bytes"] == (5888 + 588 + 512) * MIB
    _, executor = requests_for(spec({"spark.executor.memoryOverheadFactor": "0.2"}))
    assert executor["memory_bytes"] == (5888 + 1177) * MIB  # 0.2 x 5888 rounded down


def test_the_record_keeps_the_requests_and_old_records_still_give_them() -> None:
    rec = JobRecord("j", "a.py", "submit", "Succeeded", "2026-12-06T15:00:00Z",
                       executors=2, executor_cores=3, executor_memory="5888m")  # fmt: skip
    driver, executor = rec.requests()  # written before sparkube kept them
    assert driver == {"cpu": 0.5, "memory_bytes": 1408 * MIB}
    assert executor == {"cpu": 3.0, "memory_bytes": (5888 + 588) * MIB}
    rec.driver_request = {"cpu": 2.0, "memory_bytes": 3584 * MIB}
    rec.executor_request = {"cpu": 0.5, "memory_bytes": 2432 * MIB}
    assert rec.requests() == (rec.driver_request, rec.executor_request)
    assert json.loads(json.dumps(rec.to_json()))["executor_request"]["cpu"] == 0.5


def test_kubernetes_quantities_are_parsed_by_the_library() -> None:
    pod = {"spec": {"containers": [
        {"resources": {"requests": {"cpu": "500m", "memory": "966367641600m"}}},
        {"resources": {"requests": {"cpu": "1", "memory": "1408Mi"}}},
    ]}}  # fmt: skip
    cpu, memory = pod_request(pod)
    assert cpu == 1.5
    assert memory == 966367642 + 1408 * MIB  # 966367641.6 bytes rounds up


def test_the_job_id_is_the_application_id() -> None:
    s = spec({"spark.app.id": "mine"})
    props = spark_properties(s, config(), Endpoints())
    assert props["spark.app.id"] == s.job_id
    assert props["spark.eventLog.compress"] == "false"
    # a Kubernetes label value (Spark labels executors spark-app-selector=ID) ...
    label = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
    assert len(s.job_id) <= 63 and label.fullmatch(s.job_id)
    # ... that Spark's event log naming (Utils.sanitizeDirName) keeps as it is
    sanitized = re.sub(r"[.${}'\"]", "_", re.sub(r"[ :/]", "-", s.job_id)).lower()
    assert sanitized == s.job_id


# --------------------------------------------------------------------------- job facts


def record(state: str = "Succeeded", **changes: object) -> JobRecord:
    rec = JobRecord(
        "job-1", "etl.py", "submit", state, "2026-12-06T15:25:50Z", executors=2,
        executor_cores=2, executor_memory="1g",
        driver_request={"cpu": 0.5, "memory_bytes": 1408 * MIB},
        executor_request={"cpu": 2.0, "memory_bytes": 1408 * MIB},
    )  # fmt: skip
    for key, value in changes.items():
        setattr(rec, key, value)
    return rec


def test_an_unwatched_job_ends_where_its_event_log_ends() -> None:
    # nobody watched: the record still says Running, the driver's own log has the end
    rec = record("Running")
    job, notes = job_fact(rec, parse_event_log(LOG), cluster=_Cluster())
    assert notes == [] and job.state == "Succeeded"  # ApplicationEnd's ExitCode 0
    driver, *executors = job.pods
    assert (driver.ran.start, driver.ran.end) == (at(T0), at(T0 + 120_000))
    assert [(p.name, p.ran.start, p.ran.end) for p in executors] == [
        ("job-1-exec-1", at(T0 + 20_000), at(T0 + 120_000)),  # removed with the app
        ("job-1-exec-2", at(T0 + 21_000), at(T0 + 60_000)),
        ("job-1-exec-3", at(T0 + 65_000), at(T0 + 120_000)),
    ]
    assert all(p.cpu == 2.0 and p.memory_bytes == 1408 * MIB for p in executors)
    assert job.source.startswith("driver start: event log; end: event log; executors: event log")


def test_without_an_event_log_the_record_gives_the_times() -> None:
    rec = record(started="2026-12-06T15:26:00Z", finished="2026-12-06T15:28:00Z")
    job, notes = job_fact(rec, None, cluster=_Cluster())
    assert notes == [] and len(job.pods) == 3
    assert {(p.ran.start, p.ran.end) for p in job.pods} == {(at(T0), at(T0 + 120_000))}
    assert "record" in job.source and "estimated from the record" in job.source


def test_a_job_gone_without_an_end_is_costed_to_its_last_known_moment() -> None:
    rec = record("Unknown", started="2026-12-06T15:26:00Z")
    log = parse_event_log(LOG[:-2])  # the driver died before it ended its log
    job, notes = job_fact(rec, log, cluster=_Cluster(asked=True), last_known=at(T0 + 90_000))
    assert {p.ran.end for p in job.pods} == {at(T0 + 90_000), at(T0 + 60_000)}
    assert "end unknown" in job.source and notes and "last known moment" in notes[0]


def test_a_running_job_in_the_cluster_is_open() -> None:
    rec = record("Running", started="2026-12-06T15:26:00Z")
    cluster = _Cluster(asked=True, jobs={"job-1"}, pods={"job-1": [{
        "metadata": {"name": "job-1-exec-1", "labels": {"spark-role": "executor"}},
        "spec": {"containers": [{"resources": {"requests": {"cpu": "2",
                                                            "memory": "1476395008000m"}}}]},
        "status": {"containerStatuses": [{"state": {"running": {
            "startedAt": "2026-12-06T15:26:20Z"}}}]},
    }]})  # fmt: skip
    job, notes = job_fact(rec, None, cluster=cluster)
    assert notes == []
    driver, executor = job.pods
    assert driver.ran.end is None and executor.ran == cj_interval(T0 + 20_000, None)
    assert executor.memory_bytes == 1476395008 and "executors: cluster" in job.source


def cj_interval(start: int, end: int | None) -> object:
    from sparkube.cost.ledger import Interval

    return Interval(at(start), at(end) if end is not None else None)


def test_a_job_that_never_started_holds_nothing() -> None:
    job, _ = job_fact(record("Pending"), None, cluster=_Cluster(asked=True, jobs={"job-1"}))
    assert job.pods == () and job.source == "never started"


@pytest.mark.parametrize("bad", ["{", "", "not json", '{"Event": "SparkListenerApplicationEnd"}'])
def test_lines_that_are_no_event_are_ignored(bad: str) -> None:
    assert parse_event_log([bad]).end is None


def test_job_facts_go_through_the_ledger_file_unchanged() -> None:
    from sparkube.cost.ledger import Ledger

    job, _ = job_fact(record("Running"), parse_event_log(LOG), cluster=_Cluster())
    ledger = Ledger("c", "eu-west-1", at(T0 + 3_600_000), jobs=(job,))
    assert Ledger.loads(ledger.dumps()).jobs == (job,)


def task_end(stage: int, attempt: int, task: int, reason: str, launched: int, ran: int,
             executor: str = "1", **why: object) -> str:  # fmt: skip
    """A SparkListenerTaskEnd as Spark 4.1's JsonProtocol writes it (trimmed: no
    metrics)."""
    return event(
        "SparkListenerTaskEnd",
        **{
            "Stage ID": stage,
            "Stage Attempt ID": attempt,
            "Task Type": "ShuffleMapTask" if stage == 0 else "ResultTask",
            "Task End Reason": {"Reason": reason, **why},
            "Task Info": {
                "Task ID": task,
                "Index": task % 4,
                "Attempt": 0,
                "Partition ID": task % 4,
                "Launch Time": T0 + launched,
                "Executor ID": executor,
                "Host": "10.244.3.2",
                "Locality": "PROCESS_LOCAL",
                "Speculative": False,
                "Getting Result Time": 0,
                "Finish Time": T0 + launched + ran,
                "Failed": reason != "Success",
                "Killed": reason == "TaskKilled",
                "Accumulables": [],
            },
            "Task Executor Metrics": {},
            "Task Metrics": {"Executor Run Time": ran},
        },
    )


def stage_submitted(stage: int, attempt: int) -> str:
    return event(
        "SparkListenerStageSubmitted",
        **{"Stage Info": {"Stage ID": stage, "Stage Attempt ID": attempt, "Number of Tasks": 4}},
    )


#: Executor 2's node reclaimed while stage 1 ran: its running task is lost, the map
#: outputs it held are resubmitted (stage 0 runs again, attempt 1), a reducer's fetch
#: from it fails (stage 1 runs again too).
INTERRUPTED = [
    stage_submitted(0, 0),
    task_end(0, 0, 0, "Success", 25_000, 9_000),
    task_end(0, 0, 1, "Success", 25_000, 10_000, executor="2"),
    task_end(0, 0, 2, "Success", 34_000, 8_000),
    task_end(0, 0, 3, "Success", 35_000, 12_000, executor="2"),
    stage_submitted(1, 0),
    task_end(
        1,
        0,
        4,
        "ExecutorLostFailure",
        45_000,
        15_000,
        executor="2",
        **{
            "Executor ID": "2",
            "Exit Caused By App": False,
            "Loss Reason": "Executor decommission: spot instance interrupted",
        },
    ),
    task_end(0, 0, 1, "Resubmitted", 25_000, 10_000, executor="2"),
    task_end(0, 0, 3, "Resubmitted", 35_000, 12_000, executor="2"),
    task_end(
        1,
        0,
        5,
        "FetchFailed",
        58_000,
        2_000,
        **{
            "Block Manager Address": {"Executor ID": "2", "Host": "10.244.3.2", "Port": 7079},
            "Shuffle ID": 0,
            "Map ID": 1,
            "Map Index": 1,
            "Reduce ID": 1,
            "Message": "Connection refused",
        },
    ),
    stage_submitted(0, 1),
    task_end(0, 1, 6, "Success", 61_000, 9_000),
    task_end(0, 1, 7, "Success", 61_000, 11_000),
    stage_submitted(1, 1),
    task_end(1, 1, 8, "Success", 73_000, 3_000),
    LOG[-1],
]


def test_the_work_an_interruption_made_spark_redo_is_read_from_the_event_log() -> None:
    rework = parse_rework(line.encode() for line in [*LOG[:-1], *INTERRUPTED])
    # the lost task, the two map outputs resubmitted, the failed fetch
    assert rework.tasks == 4
    assert rework.task_seconds == pytest.approx(15 + 10 + 12 + 2)
    assert rework.stage_attempts == {(0, 1), (1, 1)}
    assert rework.to_json() == {"tasks_rerun": 4, "task_seconds": 39.0, "stage_attempts_rerun": 2}
    # a job nothing happened to: no task re-run; the lines of a rolled log add up
    calm = parse_rework([*LOG, *INTERRUPTED[:6]])
    assert (calm.tasks, calm.task_seconds, calm.stage_attempts) == (0, 0.0, set())
    parse_rework(INTERRUPTED[6:9], calm)
    assert (calm.tasks, calm.task_seconds) == (3, 37.0)


def test_task_ends_without_times_count_with_no_time() -> None:
    line = json.loads(task_end(1, 0, 4, "TaskKilled", 1_000, 0))
    line["Task Info"]["Finish Time"] = 0
    rework = parse_rework([json.dumps(line), "not json", '{"Event": "SparkListenerTaskEnd"}'])
    assert (rework.tasks, rework.task_seconds) == (1, 0.0)  # an end with no reason: none
