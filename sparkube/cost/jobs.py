"""The ledger's job facts: each job's pods, what each reserved (its requests) and when it
ran. Reads only: the bucket (job records, the drivers' Spark event logs) and, when this
machine has the cluster's kubeconfig, the cluster's Jobs and pods.

Where a job's times come from, best first (``Job.source`` says which were used):

- the driver's own Spark event log, ``spark-events/`` in the bucket, named after the job
  id (sparkube sets ``spark.app.id`` to it): ``SparkListenerApplicationStart`` and
  ``...End`` for the driver, ``SparkListenerExecutorAdded`` and ``...Removed`` for each
  executor. The driver writes it whoever watches, so a job nobody watched still has its
  end. Spark 4 rolls event logs by default (``eventlog_v2_ID/events_N_ID``); a single
  file (``ID``, ``ID.inprogress``) is read too. On S3 a file appears once the driver
  closes it (at a roll or at the end), so a running job usually has none yet;
- the job's record: the driver container's start and end, kept by the watcher;
- the cluster, while it still has the job's pods: their containers' start and end;
- a job whose Job is still in the cluster and has no end is still running (open);
  otherwise its end is unknown: the job is listed with a note and costed up to its last
  known moment.

Requests are the record's (``driver_request``, ``executor_request``, written at submit),
else worked out from the sizes older records kept.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sparkube.aws.s3 import list_keys
from sparkube.cost.ledger import Interval, Job, Pod, iso
from sparkube.spark.cluster import ClusterJobs
from sparkube.spark.config import JOB_LABEL, MANAGED_BY, ROLE_LABEL
from sparkube.spark.diagnose import parse_cpu, parse_memory
from sparkube.spark.podspec import EVENTS_PREFIX
from sparkube.spark.rbac import SPARK_NAMESPACE
from sparkube.spark.records import ENDED_STATES, JobRecord, log_key, parse_time

ROLLING_DIR = "eventlog_v2_"
IN_PROGRESS = ".inprogress"
_WANTED = (
    b"SparkListenerApplicationStart",
    b"SparkListenerApplicationEnd",
    b"SparkListenerExecutorAdded",
    b"SparkListenerExecutorRemoved",
)

Json = dict[str, Any]


# --------------------------------------------------------------------------- event logs


@dataclass
class EventLog:
    """What a driver's event log says about when its application and executors ran."""

    app_id: str | None = None
    start: datetime | None = None  # SparkListenerApplicationStart
    end: datetime | None = None  # SparkListenerApplicationEnd
    #: executor id -> [added, removed or None]
    executors: dict[str, list[datetime | None]] = field(default_factory=dict)
    last: datetime | None = None  # the latest moment any event read names
    exit_code: int | None = None  # SparkListenerApplicationEnd's ExitCode (Spark 4)

    def _saw(self, moment: datetime) -> None:
        if self.last is None or moment > self.last:
            self.last = moment


def _moment(millis: Any) -> datetime | None:
    if isinstance(millis, bool) or not isinstance(millis, int | float):
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _events(lines: Iterable[bytes | str], wanted: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The events of an event log's lines whose start names one of ``wanted``, decoded;
    a line that is not a JSON object (the cut last line of a log being written) is
    skipped."""
    names = tuple(wanted)
    for raw in lines:
        head = raw[:64] if isinstance(raw, bytes) else raw[:64].encode()
        if not any(name in head for name in names):
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def parse_event_log(lines: Iterable[bytes | str], into: EventLog | None = None) -> EventLog:
    """The application and executor times in a Spark event log (JSON lines, Spark's
    JsonProtocol), streamed: only the four events that matter are decoded, and a line
    that is not JSON (the cut last line of a log being written) is skipped. Several
    files of a rolled log go into one ``into``, in order."""
    log = into if into is not None else EventLog()
    for event in _events(lines, _WANTED):
        kind = event.get("Event")
        moment = _moment(event.get("Timestamp"))
        if moment is None:
            continue
        log._saw(moment)
        if kind == "SparkListenerApplicationStart":
            log.start = moment
            log.app_id = str(event.get("App ID") or "") or log.app_id
        elif kind == "SparkListenerApplicationEnd":
            log.end = moment
            code = event.get("ExitCode")
            log.exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        elif kind == "SparkListenerExecutorAdded":
            executor = str(event.get("Executor ID"))
            if executor != "driver":  # local mode names the driver's block manager so
                log.executors.setdefault(executor, [moment, None])[0] = moment
        elif kind == "SparkListenerExecutorRemoved":
            executor = str(event.get("Executor ID"))
            if executor != "driver":
                log.executors.setdefault(executor, [None, None])[1] = moment
    return log


@dataclass(frozen=True)
class LogFile:
    key: str
    order: int  # the N of a rolled log's events_N_ID; 0 for a single file
    codec: str | None  # zstd, lz4, ... (None: plain JSON lines)


def event_log_files(keys: Iterable[str]) -> dict[str, list[LogFile]]:
    """The event log files under ``spark-events/`` by application id, in reading order:
    ``ID[.CODEC][.inprogress]`` (one file) and ``eventlog_v2_ID/events_N_ID[.CODEC]``
    (Spark's rolling writer, the default since Spark 4)."""
    out: dict[str, list[LogFile]] = {}
    for key in keys:
        name = key[len(EVENTS_PREFIX) :] if key.startswith(EVENTS_PREFIX) else key
        if not name or name.endswith("/"):
            continue
        if name.startswith(ROLLING_DIR) and "/" in name:
            folder, file = name.split("/", 1)
            app = folder[len(ROLLING_DIR) :]
            if not file.startswith("events_"):
                continue  # appstatus_ID[.inprogress]: an empty marker
            number, _, rest = file[len("events_") :].partition("_")
            if not number.isdigit() or not rest.startswith(app):
                continue
            codec = rest[len(app) :].removesuffix(IN_PROGRESS).lstrip(".") or None
            out.setdefault(app, []).append(LogFile(key, int(number), codec))
        elif "/" not in name:
            app, _, ext = name.removesuffix(IN_PROGRESS).partition(".")
            out.setdefault(app, []).append(LogFile(key, 0, ext or None))
    for files in out.values():
        files.sort(key=lambda f: f.order)
    return out


def _body_lines(body: Any, codec: str | None) -> Iterator[bytes]:
    if codec is None:
        yield from body.iter_lines(chunk_size=1 << 16)
        return
    import zstandard  # type: ignore[import-not-found]  # optional; checked by the caller

    reader = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(body))
    for line in reader:
        yield line.rstrip(b"\n")


def _readable(codec: str | None) -> bool:
    if codec is None:
        return True
    if codec != "zstd":
        return False
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def read_event_log(s3: Any, bucket: str, files: Sequence[LogFile]) -> tuple[EventLog, str]:
    """The facts of one application's event log files, streamed from the bucket, and a
    note ("" if all were read) naming any file that could not be."""
    log = EventLog()
    skipped = [f for f in files if not _readable(f.codec)]
    for f in files:
        if f in skipped:
            continue
        try:
            body = s3.get_object(Bucket=bucket, Key=f.key)["Body"]
        except Exception:  # gone between the listing and the read, or refused
            skipped.append(f)
            continue
        parse_event_log(_body_lines(body, f.codec), log)
    if not skipped:
        return log, ""
    names = ", ".join(f"{f.key} ({f.codec or 'unreadable'})" for f in skipped)
    return log, (
        f"not read: {names}; sparkube reads plain event logs (it sets "
        "spark.eventLog.compress=false for its jobs)"
    )


# --------------------------------------------------------------------------- work done again

_REWORK = (b"SparkListenerTaskEnd", b"SparkListenerStageSubmitted")


@dataclass
class Rework:
    """What a job's event log says was run for nothing or run again: task attempts that
    did not succeed (an executor lost, a fetch failure, killed, ...) or whose output was
    lost after they succeeded (``Resubmitted``: a map task whose shuffle files went with
    its executor), with the time they ran; and stage attempts after a stage's first
    (Spark recomputing what was lost). Facts of the log only: why a task failed is not
    weighed (an application's own exceptions count too)."""

    tasks: int = 0  # attempts that did not succeed or were resubmitted
    task_seconds: float = 0.0  # their run time (Launch Time to Finish Time)
    #: (stage id, attempt) of each stage attempt > 0
    stage_attempts: set[tuple[int, int]] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks_rerun": self.tasks,
            "task_seconds": round(self.task_seconds, 3),
            "stage_attempts_rerun": len(self.stage_attempts),
        }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_rework(lines: Iterable[bytes | str], into: Rework | None = None) -> Rework:
    """The work done again in a Spark event log (JSON lines), streamed: only
    ``SparkListenerTaskEnd`` (``Task End Reason``, ``Task Info``'s ``Launch Time`` and
    ``Finish Time``, ``Stage Attempt ID``) and ``SparkListenerStageSubmitted`` are
    decoded; a line that is not JSON is skipped."""
    rework = into if into is not None else Rework()
    for event in _events(lines, _REWORK):
        kind = event.get("Event")
        if kind == "SparkListenerStageSubmitted":
            info = event.get("Stage Info") or {}
            stage, attempt = _int(info.get("Stage ID")), _int(info.get("Stage Attempt ID"))
            if stage is not None and attempt:
                rework.stage_attempts.add((stage, attempt))
            continue
        if kind != "SparkListenerTaskEnd":
            continue
        stage, attempt = _int(event.get("Stage ID")), _int(event.get("Stage Attempt ID"))
        if stage is not None and attempt:
            rework.stage_attempts.add((stage, attempt))
        reason = (event.get("Task End Reason") or {}).get("Reason")
        if reason == "Success" or not isinstance(reason, str):
            continue
        rework.tasks += 1
        info = event.get("Task Info") or {}
        launched, finished = _int(info.get("Launch Time")), _int(info.get("Finish Time"))
        if launched and finished and finished > launched:
            rework.task_seconds += (finished - launched) / 1000
    return rework


def read_rework(s3: Any, bucket: str, job_id: str) -> Rework | None:
    """The work job ``job_id`` did again, from its event log in the bucket; None when
    it has no readable event log there (on S3 a log appears once the driver closes a
    file: at a roll, or at its end)."""
    keys = list_keys(s3, bucket, f"{EVENTS_PREFIX}{job_id}")
    keys += list_keys(s3, bucket, f"{EVENTS_PREFIX}{ROLLING_DIR}{job_id}/")
    files = event_log_files(keys).get(job_id)
    if not files or not all(_readable(f.codec) for f in files):
        return None
    rework = Rework()
    for f in files:
        try:
            body = s3.get_object(Bucket=bucket, Key=f.key)["Body"]
        except Exception:  # gone between the listing and the read, or refused
            return None
        parse_rework(_body_lines(body, f.codec), rework)
    return rework


# --------------------------------------------------------------------------- the cluster


def _container_times(pod: Json, container: str | None = None) -> tuple[str | None, str | None]:
    """(started, finished) of the pod's main container (or the named one)."""
    for st in (pod.get("status") or {}).get("containerStatuses") or []:
        if container is not None and st.get("name") != container:
            continue
        state = st.get("state") or {}
        if state.get("terminated"):
            term = state["terminated"]
            return term.get("startedAt"), term.get("finishedAt")
        if state.get("running"):
            return state["running"].get("startedAt"), None
        return None, None
    return None, None


def pod_request(pod: Json) -> tuple[float, int]:
    """(cpu, memory bytes) the pod's containers request: Kubernetes quantities parsed by
    lightkube (``500m``, ``1408Mi``, or ``966367641600m`` bytes as the API server may
    write them; a fraction of a byte rounds up)."""
    cpu = 0.0
    memory = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += parse_cpu(req.get("cpu", "0"))
        memory += parse_memory(req.get("memory", "0"))
    return cpu, memory


@dataclass
class _Cluster:
    """What the cluster shows (empty when it was not asked)."""

    asked: bool = False
    jobs: set[str] = field(default_factory=set)
    pods: dict[str, list[Json]] = field(default_factory=dict)  # by job id


def _cluster(api: ClusterJobs) -> _Cluster:
    if api.client is None:
        return _Cluster()
    from lightkube.resources.batch_v1 import Job as KubeJob
    from lightkube.resources.core_v1 import Pod as KubePod

    client = api.client
    jobs = api._api(
        "Listing jobs",
        lambda: list(client.list(KubeJob, namespace=SPARK_NAMESPACE, labels=MANAGED_BY)),
    )
    pods = api._api(
        "Listing the jobs' pods",
        lambda: list(client.list(KubePod, namespace=SPARK_NAMESPACE, labels=MANAGED_BY)),
    )
    out = _Cluster(asked=True, jobs={j.metadata.name for j in jobs})
    for pod in pods:
        data = pod.to_dict()
        job_id = ((data.get("metadata") or {}).get("labels") or {}).get(JOB_LABEL)
        if job_id:
            out.pods.setdefault(job_id, []).append(data)
    return out


# --------------------------------------------------------------------------- job facts


def _at(text: str | None) -> datetime | None:
    moment = parse_time(text)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC) if moment is not None else None


def _last_modified(s3: Any, bucket: str, key: str) -> datetime | None:
    with contextlib.suppress(Exception):
        moment = s3.head_object(Bucket=bucket, Key=key)["LastModified"]
        return moment.astimezone(UTC) if isinstance(moment, datetime) else None
    return None


def _ran(start: datetime, end: datetime | None) -> Interval:
    return Interval(start, None if end is None else max(start, end))


def job_fact(
    rec: JobRecord,
    log: EventLog | None,
    *,
    cluster: _Cluster,
    last_known: datetime | None = None,
) -> tuple[Job, list[str]]:
    """One job's fact from its record, its event log (None: none found) and what the
    cluster shows, with notes on what could not be known. ``last_known``: a moment the
    job was seen alive besides its event log (its driver log's last copy)."""
    notes: list[str] = []
    pods = cluster.pods.get(rec.job_id, [])
    drivers = sorted(
        (p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(ROLE_LABEL)
         == "driver"),
        key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
    )  # fmt: skip
    executors_k8s = [
        p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get("spark-role")
        == "executor"
    ]  # fmt: skip
    driver_pod = drivers[-1] if drivers else None
    k8s_started, k8s_finished = (
        _container_times(driver_pod, "driver") if driver_pod else (None, None)
    )
    if driver_pod is not None and k8s_started is None:
        k8s_started = (driver_pod.get("status") or {}).get("startTime")  # in its init
    ended_record = rec.state in ENDED_STATES
    open_in_cluster = rec.job_id in cluster.jobs and not ended_record

    # the driver's start
    said: list[str] = []
    start: datetime | None = None
    for moment, where in (
        (log.start if log else None, "event log"),
        (_at(rec.started), "record"),
        (_at(k8s_started), "cluster"),
    ):
        if moment is not None:
            start, source_start = moment, where
            break
    if start is None and ended_record and _at(rec.submitted) is not None:
        start, source_start = _at(rec.submitted), "submitted (no start recorded)"
    queued = _queued(rec)
    if start is None:
        return Job(rec.job_id, rec.app, rec.state, (), source="never started",
                   queued=queued), notes  # fmt: skip

    # the driver's end
    end: datetime | None = None
    source_end = ""
    for moment, where in (
        (log.end if log else None, "event log"),
        (_at(rec.finished) if ended_record else None, "record"),
        (_at(k8s_finished), "cluster"),
    ):
        if moment is not None:
            end, source_end = moment, where
            break
    unknown_end = False
    if end is None and not open_in_cluster:
        unknown_end = True
        seen = [start, last_known, log.last if log else None]
        seen += [t for e in (log.executors.values() if log else []) for t in e]
        end = max(t for t in seen if t is not None)
        why = (
            "the cluster was not asked (no kubeconfig here)"
            if not cluster.asked
            else "the cluster no longer has it"
        )
        source_end = f"unknown: costed to its last known moment {iso(end)}"
        notes.append(
            f"Job {rec.job_id}: its end was not recorded and {why}; it is costed up to its "
            f"last known moment, {iso(end)}."
        )
    said.append(f"driver start: {source_start}")
    said.append(f"end: {source_end}" if source_end else "end: still running")

    driver_req, executor_req = rec.requests()
    driver_name = (driver_pod or {}).get("metadata", {}).get("name") or f"{rec.job_id}-driver"
    out = [
        Pod(
            driver_name,
            "driver",
            float(driver_req["cpu"]),
            int(driver_req["memory_bytes"]),
            _ran(start, end),
        )
    ]

    exec_cpu = float(executor_req["cpu"]) if executor_req else float(rec.executor_cores)
    exec_mem = int(executor_req["memory_bytes"]) if executor_req else 0
    if executor_req is None and rec.executors:
        notes.append(f"Job {rec.job_id}: its record does not say its executors' memory.")
    running = end is None
    if log is not None and log.executors:
        said.append("executors: event log")
        for executor, (added, removed) in sorted(log.executors.items(),
                                                 key=lambda kv: _num(kv[0])):  # fmt: skip
            begin = added or start
            finish = removed or log.end or (None if running else end)
            out.append(Pod(f"{rec.job_id}-exec-{executor}", "executor", exec_cpu, exec_mem,
                           _ran(begin, finish)))  # fmt: skip
    elif executors_k8s:
        said.append("executors: cluster")
        for pod in executors_k8s:
            began, ended = _container_times(pod)
            began = began or (pod.get("status") or {}).get("startTime")
            begin_at = _at(began)
            if begin_at is None:
                continue  # not scheduled: it holds nothing
            finish = _at(ended) or (None if running else end)
            cpu, mem = pod_request(pod)
            out.append(Pod(pod["metadata"]["name"], "executor", cpu or exec_cpu,
                           mem or exec_mem, _ran(begin_at, finish)))  # fmt: skip
    elif rec.executors:
        said.append(f"executors: {rec.executors} estimated from the record for the driver's run")
        for n in range(1, rec.executors + 1):
            out.append(Pod(f"{rec.job_id}-exec-{n}", "executor", exec_cpu, exec_mem,
                           _ran(start, end)))  # fmt: skip
    if unknown_end:
        said.append("end unknown")
    state = rec.state
    if not ended_record and log is not None and log.end is not None:
        # ended while nobody watched: the driver's own log says how
        state = "Succeeded" if log.exit_code in (0, None) else "Failed"
    return Job(rec.job_id, rec.app, state, tuple(out), source="; ".join(said),
               queued=queued), notes  # fmt: skip


def _queued(rec: JobRecord) -> Interval | None:
    """From submission to admission by the controller (open while it still waits);
    None when the record does not say (jobs from before the queue)."""
    submitted, admitted = _at(rec.submitted), _at(rec.admitted)
    if submitted is None:
        return None
    if admitted is not None:
        return Interval(submitted, max(submitted, admitted))
    return Interval(submitted, None) if rec.state == "Queued" else None


def _num(text: str) -> tuple[int, str]:
    return (int(text), "") if text.isdigit() else (1 << 62, text)


def job_facts(
    api: ClusterJobs, *, now: datetime | None = None, since: datetime | None = None
) -> tuple[list[Job], list[str]]:
    """The ledger's jobs of a cluster, and notes on what could not be known. Reads only:
    the bucket's records and event logs, the cluster's Jobs and pods when ``api`` has
    its API. ``since``: jobs that ended before it are left out. ``now``: the ledger's
    time (a job's times never pass it)."""
    cfg = api.config()
    records = api.records()
    cluster = _cluster(api)
    logs = event_log_files(list_keys(api.s3, cfg.bucket, EVENTS_PREFIX))
    facts: list[Job] = []
    notes: list[str] = []
    for rec in sorted(records, key=lambda r: (r.submitted, r.job_id)):
        if since is not None and rec.state in ENDED_STATES:
            ended = _at(rec.finished)
            if ended is not None and ended < since:
                continue
        log: EventLog | None = None
        files = logs.get(rec.job_id)
        if files:
            log, note = read_event_log(api.s3, cfg.bucket, files)
            if note:
                notes.append(f"Job {rec.job_id}: {note}.")
        last_known = None
        if (log is None or log.end is None) and not rec.finished:
            last_known = _last_modified(api.s3, cfg.bucket, log_key(rec.job_id))
        if now is not None and last_known is not None:
            last_known = min(last_known, now)
        fact, more = job_fact(rec, log, cluster=cluster, last_known=last_known)
        facts.append(fact)
        notes += more
    return facts, notes
