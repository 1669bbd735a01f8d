"""Watching a job on the cluster to its end, and recording how it ended.

:class:`JobWatching` is what a command does after submitting a job:
:meth:`~JobWatching.wait` reads the job's pods every second and reports its
:class:`Progress` (queued with its place in line, pending, running with its executors)
until the driver ended, then returns its :class:`Outcome`; while it runs, each
interruption of its workers the cluster's controller tells its Job is said once
(:mod:`sparkube.controller.interruptions`). A job that cannot go on is
stopped, with what is wrong said, rather than waited on for ever:

- queued, it could never start (the workers changed since it was submitted), or no
  controller is there to start it (none holds its Lease, or the holder stopped renewing
  it), or the controller runs but fails;
- a pod whose image cannot be pulled, that no node could ever hold, or whose
  configuration is wrong (:mod:`sparkube.spark.diagnose` says why, from its events and
  the nodes);
- a driver Pending for longer than ``PENDING_LIMIT``, or running with no executor pod
  while its log shows the API server refusing them (RBAC, quota, PodSecurity).

The driver log is streamed while the job is watched (shown with ``--follow``) and copied
to the bucket every ``LOG_SNAPSHOT_INTERVAL``, so a driver deleted from outside (or its
node lost) still leaves what it printed; its record tells such a deletion apart from a
cancel by sparkube, here or on another machine.

:class:`JobEnding` works out how a job ended (exit code, log, diagnosis, the exception
the application died of: :mod:`sparkube.spark.failures`) and records it: the driver log
and the record in the bucket, and an ended job's record in ``jobs/index.json``. It holds
the write paths: a watcher's :meth:`~JobEnding.finish`, and :meth:`~JobEnding.cancel`
(which a watcher also uses to stop a job that cannot run). ``jobs`` works out the end
of a job nobody watched the same way, without writing it (:mod:`sparkube.spark.joblist`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sparkube.aws.s3 import get_text, put_json
from sparkube.controller import NAMESPACE as CONTROLLER_NAMESPACE
from sparkube.controller import admission, interruptions, lease
from sparkube.errors import ClusterError
from sparkube.spark.access import ClusterAccess
from sparkube.spark.config import ANNOTATION_PREFIX, JOB_LABEL, Json
from sparkube.spark.diagnose import (
    diagnose,
    exception_line,
    executor_refusal,
    known_problem,
    statuses,
)
from sparkube.spark.failures import AppFailure, parse_failure
from sparkube.spark.logfollower import LogFollower
from sparkube.spark.rbac import SPARK_NAMESPACE
from sparkube.spark.records import (
    ENDED_STATES,
    INDEX_KEY,
    log_key,
    now_iso,
    parse_record,
    record_key,
)

#: Seconds a job may be queued before ``submit`` checks that the controller is alive,
#: and how long the controller may go without renewing its Lease.
CONTROLLER_SILENT = 60.0
#: Seconds the controller's cycles may fail (while it renews its Lease) before a queued
#: submit stops the job with the controller's error.
CONTROLLER_FAILING = 60.0
UNSCHEDULABLE_GRACE = 20.0  # seconds a pod may stay unschedulable before we call it
PENDING_LIMIT = 600.0  # seconds a driver may stay Pending for a reason not diagnosed
#: Seconds a running driver may have no executor pod before its log is read for the API
#: server's refusals (RBAC, quota, PodSecurity), then every EXECUTOR_CHECK_INTERVAL.
EXECUTOR_GRACE = 10.0
EXECUTOR_CHECK_INTERVAL = 5.0
#: While a job is watched its driver log is copied to the bucket this often, so a driver
#: deleted from outside (or its node lost) still leaves what it printed.
LOG_SNAPSHOT_INTERVAL = 20.0
#: Seconds a vanished driver's Job may take to be marked cancelled by the sparkube that
#: deleted it before the watcher calls the deletion someone else's.
VANISHED_GRACE = 10.0
#: Seconds a stopped job's pods are given to go before the command returns anyway.
STOP_WAIT = 30.0
#: While a job runs, its Job is read this often for interruptions the cluster's
#: controller told it (a spot notice: the line comes within this of the notice, well
#: inside its two minutes), only when the caller shows them.
INTERRUPTION_CHECK_INTERVAL = 5.0


@dataclass(frozen=True)
class Progress:
    driver_phase: str
    executors_running: int
    executors_pending: int
    executors_wanted: int
    elapsed: float
    detail: str = ""
    #: Queued (``driver_phase == "Queued"``): its place in line (0: not said yet) and
    #: what it waits for, as the cluster's controller last wrote them.
    position: int = 0
    waits_for: str = ""
    never: bool = False
    #: Under dynamic allocation, the job's range of executors ("1-4"; "" when fixed:
    #: then ``executors_wanted`` is all it has).
    dynamic: str = ""


@dataclass
class Outcome:
    exit_code: int
    state: str
    driver: Json | None
    log_tail: list[str]
    diagnosis: str | None = None
    #: The driver's whole log (its program's lines and Spark's), once it ended.
    log: list[str] = field(default_factory=list)
    #: The exception the application died of, read from that log.
    failure: AppFailure | None = None


class JobEnding(ClusterAccess):
    """How a job ended, worked out and recorded; cancelling a job."""

    def finish(
        self, job_id: str, driver: Json | None, *, streamed: Sequence[str] | None = None
    ) -> Outcome:
        """The ended job's exit code, log (the longer of what the kubelet still has and
        what a watcher streamed: the kubelet rotates large logs) and diagnosis, recorded
        (its log and record in the bucket): the write path of a watcher or cancel."""
        outcome, changes, log = self.ended(job_id, driver, streamed=streamed)
        if log:
            self.s3.put_object(Bucket=self.config().bucket, Key=log_key(job_id),
                               Body=log.encode())  # fmt: skip
        self._update_record(job_id, **changes)
        return outcome

    def ended(
        self,
        job_id: str,
        driver: Json | None,
        *,
        streamed: Sequence[str] | None = None,
        job: Json | None = None,
    ) -> tuple[Outcome, dict[str, Any], str]:
        """What :meth:`finish` records, read and worked out without writing anything:
        (the outcome, the record's changes, the driver's log). ``job``: its Job, when
        the caller has read it already."""
        code = 1
        started = finished = None
        if driver:
            for st in (driver.get("status") or {}).get("containerStatuses") or []:
                term = (st.get("state") or {}).get("terminated")
                if term is not None and st.get("name") == "driver":
                    code = int(term.get("exitCode", 1))
                    started, finished = term.get("startedAt"), term.get("finishedAt")
        log = self.driver_log(driver["metadata"]["name"]) if driver else ""
        if streamed and len(whole := "".join(streamed)) > len(log):
            log = whole
        init = _failed_init(driver) if driver is not None and started is None else None
        if driver is not None and init is not None:  # the driver never ran: its init said why
            code = int(init.get("exitCode") or 1)
            started, finished = init.get("startedAt"), init.get("finishedAt")
            log = self.driver_log(driver["metadata"]["name"], container=init["container"])
        tail = log.splitlines()[-200:]
        state = "Succeeded" if code == 0 else "Failed"
        diagnosis = None
        failure = None
        if init is not None:
            said = exception_line(tail) or (tail[-1].strip() if tail else "no output")
            fetches = (
                "the job's --files and packages from the cluster's bucket with presigned "
                "URLs: check that the nodes reach S3 and, on HTTP 403, that the credentials "
                "that submitted it had not expired"
                if init["container"] == "fetch-files"
                else "the S3 jars from the cluster's bucket (put there by sparkube up), "
                "else from Maven Central (or SPARKUBE_JARS_REPOSITORY), each checked by "
                "SHA-256: check that the nodes reach S3 or the repository"
            )
            diagnosis = (
                f"The driver pod's init container {init['container']} failed (exit code "
                f"{code}): {said}; it fetches {fetches}."
            )
        elif code != 0:
            executors = self.executors(job_id)
            names = [driver["metadata"]["name"]] if driver else []
            diagnosis = known_problem(
                driver=driver,
                executors=executors,
                events=self.events(names + [e["metadata"]["name"] for e in executors]),
                log_tail=tail,
                nodes=self.node_capacity(),
            )
            failure = parse_failure(log.splitlines())
            if diagnosis is None and failure is not None:
                app = _annotation(driver, "app") or "The application"
                diagnosis = f"{app} failed: {failure.summary}"
            elif diagnosis is None:
                diagnosis = diagnose(driver=driver, log_tail=tail, exit_code=code)
        changes: dict[str, Any] = {
            "state": state,
            "exit_code": code,
            "finished": finished or now_iso(),
            "message": diagnosis or "",
        }
        if started:
            changes["started"] = started
        job = job if job is not None else self._job_if_reachable(job_id)
        admitted = _admitted(job)
        if admitted:
            changes["admitted"] = admitted
        told = _interruptions(job)
        if told:
            changes["interruptions"] = told
        return (
            Outcome(code, state, driver, tail, diagnosis, log.splitlines(), failure),
            changes,
            log,
        )

    def _job_if_reachable(self, job_id: str) -> Json | None:
        return self._job(job_id) if self.client is not None else None

    def driver_log(self, pod: str, container: str = "driver") -> str:
        from lightkube.core.exceptions import ApiError

        try:
            return "".join(self.client.log(pod, namespace=SPARK_NAMESPACE, container=container))
        except ApiError:
            return ""

    def driver_log_tail(self, pod: str, lines: int = 300) -> list[str]:
        from lightkube.core.exceptions import ApiError

        try:
            return [
                line.rstrip("\n")
                for line in self.client.log(
                    pod, namespace=SPARK_NAMESPACE, container="driver", tail_lines=lines
                )
            ]
        except ApiError:
            return []

    def snapshot_log(self, job_id: str, pod: str) -> None:
        """Copy what the driver printed so far to the bucket (``logs`` shows it once the
        pod is gone, however it went)."""
        log = self.driver_log(pod)
        if log:
            self.s3.put_object(Bucket=self.config().bucket, Key=log_key(job_id),
                               Body=log.encode())  # fmt: skip

    def _update_record(self, job_id: str, **changes: Any) -> None:
        """Write paths only (a watcher, cancel): never called by jobs, logs or usage."""
        cfg = self.config()
        data = self._record(job_id) or {"job_id": job_id}
        data.update(changes)
        put_json(self.s3, cfg.bucket, record_key(job_id), data)
        if data.get("state") in ENDED_STATES:
            self._add_to_index(data)

    def _add_to_index(self, data: Mapping[str, Any]) -> None:
        """Keep an ended job's record in ``jobs/index.json`` (write paths only). Two
        writers at once may drop each other's entry: the record itself stays, and reads
        fall back to it."""
        rec = parse_record(data)
        if rec is None or rec.state not in ENDED_STATES:
            return
        cfg = self.config()
        jobs: dict[str, Any] = {}
        text = get_text(self.s3, cfg.bucket, INDEX_KEY)
        if text:
            with contextlib.suppress(ValueError, AttributeError):
                jobs = {d["job_id"]: d for d in json.loads(text).get("jobs", [])
                        if isinstance(d, dict) and d.get("job_id")}  # fmt: skip
        jobs[rec.job_id] = asdict(rec)
        put_json(self.s3, cfg.bucket, INDEX_KEY, {"jobs": [jobs[k] for k in sorted(jobs)]})

    def cancel(
        self, job_id: str, *, reason: str = "cancelled by the user", state: str = "Cancelled"
    ) -> bool:
        """Delete the job's driver Job (its pod, and with it the executors and the
        ConfigMap, go too) and record it ``state`` (Failed when sparkube stops a job that
        cannot run) with ``reason``. False if no such job exists in the cluster."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.batch_v1 import Job
        from lightkube.resources.core_v1 import Pod
        from lightkube.types import CascadeType

        driver = self.driver(job_id)
        phase = (driver.get("status") or {}).get("phase") if driver is not None else None
        if driver is not None and phase in ("Succeeded", "Failed") and not _deleting(driver):
            self.finish(job_id, driver)  # it ended on its own: its record says how
        elif driver is not None and phase != "Pending":
            self.snapshot_log(job_id, driver["metadata"]["name"])
        job = self._job(job_id)
        found = job is not None
        record = self._record(job_id)
        if (found or record is not None) and (record or {}).get("state") not in ENDED_STATES:
            # marked before anything is deleted, so a watcher never sees the pods vanish
            # unexplained; an ended job's record is never rewritten
            told = _interruptions(job)
            self._update_record(job_id, state=state, finished=now_iso(), message=reason,
                                **({"interruptions": told} if told else {}))  # fmt: skip
        try:
            self.client.delete(
                Job, job_id, namespace=SPARK_NAMESPACE, cascade=CascadeType.FOREGROUND
            )
        except ApiError as exc:
            if exc.status.code != 404:
                raise ClusterError(f"Cancelling {job_id} failed: {exc.status.message}.") from None
            found = False
        for pod in self._pods(job_id):
            with contextlib.suppress(ApiError):
                self.client.delete(Pod, pod["metadata"]["name"], namespace=SPARK_NAMESPACE,
                                   grace_period=5)  # fmt: skip
        return found

    def wait_gone(self, job_id: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pods(job_id):
                return True
            time.sleep(0.5)
        return False


class JobWatching(JobEnding):
    """A job watched to its end: its progress, and a stop with a diagnosis when it
    cannot go on."""

    def progress(self, job_id: str, started: float) -> tuple[Progress, Json | None, list[Json]]:
        """Where the job is, with its driver and executor pods (one list call)."""
        driver, executors = self._split(self._pods(job_id))
        running = sum(1 for e in executors if (e.get("status") or {}).get("phase") == "Running")
        pending = sum(1 for e in executors if (e.get("status") or {}).get("phase") == "Pending")
        phase = (driver.get("status") or {}).get("phase", "Pending") if driver else "Submitted"
        detail = dynamic = ""
        wanted = 0
        if driver is None:
            job = self._job(job_id)
            if job is not None and (job.get("spec") or {}).get("suspend"):
                ann = (job.get("metadata") or {}).get("annotations") or {}
                return (
                    Progress(
                        "Queued", 0, 0, 0, time.monotonic() - started,
                        position=int(ann.get(admission.POSITION) or 0),
                        waits_for=str(ann.get(admission.WAITS_FOR) or ""),
                        never=ann.get(admission.NEVER) == "true",
                    ),
                    None,
                    [],
                )  # fmt: skip
        if driver:
            detail = next(
                (r for r, _ in _waiting(driver) if r not in (None, "PodInitializing")), ""
            )
            ann = ((driver.get("metadata") or {}).get("annotations")) or {}
            wanted = int(ann.get(ANNOTATION_PREFIX + "executors", "0") or 0)
            dynamic = str(ann.get(ANNOTATION_PREFIX + "dynamic-executors") or "")
        return (
            Progress(
                phase, running, pending, wanted, time.monotonic() - started, detail, dynamic=dynamic
            ),
            driver,
            executors,
        )

    def stuck(
        self, driver: Json | None, executors: Sequence[Json], since: dict[str, float]
    ) -> str | None:
        """A diagnosis if the job cannot go on (image, scheduling, configuration)."""
        pods = ([driver] if driver else []) + list(executors)
        now = time.monotonic()
        blocked = []
        largest: admission.Ask | None = None  # what the largest worker offers
        for pod in pods:
            name = pod["metadata"]["name"]
            status = pod.get("status") or {}
            reasons = {reason for reason, _ in _waiting(pod)}
            unsched = any(
                c.get("reason") == "Unschedulable" for c in status.get("conditions") or []
            )
            if unsched:
                # admitted, so room was there: an unschedulable pod waits for it (taken
                # by a pod that is not a job's, or a node gone) unless no node could
                # ever hold it (its size changed by --conf past what was checked)
                if largest is None:
                    caps = self.node_capacity()
                    largest = admission.Ask(
                        max((n.cpu for n in caps), default=0.0),
                        max((n.memory for n in caps), default=0),
                    )
                ask = admission.pod_ask(pod)
                unsched = largest.memory > 0 and not ask.fits(largest.cpu, largest.memory)
            if reasons & {"ImagePullBackOff", "ErrImagePull", "InvalidImageName"} or unsched:
                grace = UNSCHEDULABLE_GRACE if unsched else 5.0
            elif "CreateContainerConfigError" in reasons:
                grace = 10.0
            else:
                since.pop(name, None)
                continue
            since.setdefault(name, now)
            if now - since[name] >= grace:
                blocked.append(pod)
        if not blocked:
            return None
        for pod in blocked:
            for reason, message in _waiting(pod):
                if reason == "CreateContainerConfigError":
                    return f"Pod {pod['metadata']['name']} cannot start: {message}."
        events = self.events([p["metadata"]["name"] for p in pods])
        return diagnose(
            driver=driver, executors=executors, events=events, nodes=self.node_capacity()
        )

    def wait(
        self,
        job_id: str,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        on_log: Callable[[str], None] | None = None,
        on_interruption: Callable[[str], None] | None = None,
        interval: float = 1.0,
    ) -> Outcome:
        """Watch until the driver ended (or the job cannot run, or it was cancelled or
        deleted by someone else); archive its log. ``on_interruption``: given a line
        once for each interruption of the job's workers the controller tells its Job
        (read every INTERRUPTION_CHECK_INTERVAL while the driver runs)."""
        started = time.monotonic()
        since: dict[str, float] = {}
        follower: LogFollower | None = None
        watch = _Watch()
        try:
            while True:
                prog, driver, executors = self.progress(job_id, started)
                if on_progress:
                    on_progress(prog)
                now = time.monotonic()
                if prog.driver_phase == "Queued":
                    queued = self._still_queued(job_id, prog, watch, now)
                    if queued is not None:
                        return queued
                    time.sleep(interval)
                    continue
                if watch.admitted is None:
                    watch.admitted = now
                if driver is None or _deleting(driver):
                    if driver is not None and watch.driver is None:
                        watch.driver = driver["metadata"]["name"]
                    # deleted while it runs: keep what it printed before it went
                    if follower is not None:
                        self._keep_log(job_id, follower, watch)
                    elif driver is not None and not watch.captured:
                        self.snapshot_log(job_id, driver["metadata"]["name"])
                        watch.captured = True
                    vanished = self._vanished(job_id, watch, now)
                    if vanished is not None:
                        return vanished
                    if watch.driver is None and now - watch.admitted > 60:
                        raise ClusterError(
                            f"No driver pod appeared for job {job_id} within 60 s; check the "
                            f"Job with kubectl -n {SPARK_NAMESPACE} describe job {job_id}."
                        )
                    time.sleep(interval)
                    continue
                watch.driver = driver["metadata"]["name"]
                watch.vanished_at = None
                if follower is None and prog.driver_phase != "Pending":
                    # the log is streamed while the job is watched: shown with --follow,
                    # and copied to the bucket, so a driver that vanishes leaves it
                    follower = LogFollower(self.client, watch.driver, on_log)
                    follower.start()
                    watch.snapshot = now
                if prog.driver_phase in ("Succeeded", "Failed"):
                    if follower is not None:
                        follower.drain()  # the stream ends with the container: keep it all
                    break
                if prog.driver_phase == "Pending" and now - watch.admitted > PENDING_LIMIT:
                    pending = (
                        f"The driver of {job_id} has been Pending for "
                        f"{PENDING_LIMIT / 60:.0f} minutes ({prog.detail or 'no reason given'}); "
                        f"check kubectl -n {SPARK_NAMESPACE} describe pod -l {JOB_LABEL}={job_id}."
                    )
                    self._stop(job_id, pending)
                    return Outcome(1, "Failed", driver, [], pending)
                problem = self.stuck(driver, executors, since)
                if problem is None and prog.driver_phase == "Running":
                    problem, tail = self._executors_refused(driver, prog, executors, watch, now)
                else:
                    tail = []
                if problem:
                    self._stop(job_id, problem)
                    return Outcome(1, "Failed", driver, tail, problem)
                if follower is not None and now - watch.snapshot >= LOG_SNAPSHOT_INTERVAL:
                    watch.snapshot = now
                    self._keep_log(job_id, follower, watch)
                if (
                    on_interruption is not None
                    and prog.driver_phase == "Running"
                    and now - watch.interruption_check >= INTERRUPTION_CHECK_INTERVAL
                ):
                    watch.interruption_check = now
                    for line in self._new_interruptions(job_id, driver, watch):
                        on_interruption(line)
                time.sleep(interval)
        finally:
            if follower is not None:
                follower.stop()
        return self.finish(job_id, driver, streamed=follower.lines if follower else None)

    def _still_queued(
        self, job_id: str, prog: Progress, watch: _Watch, now: float
    ) -> Outcome | None:
        """A queued job waits, unless it can never start (the workers changed since it
        was submitted) or no controller is there to start it: then it is stopped with
        that said, rather than waited on for ever."""
        if watch.queued_since is None:
            watch.queued_since = now
        problem = None
        if prog.never:
            problem = (
                f"Job {job_id} could never start on this cluster: {prog.waits_for}; submit it "
                "smaller, or give the cluster more or larger workers."
            )
        elif (
            now - watch.queued_since >= CONTROLLER_SILENT
            and now - watch.controller_check >= EXECUTOR_CHECK_INTERVAL
        ):
            watch.controller_check = now
            problem = self.controller_problem()
            if problem:
                problem = f"Job {job_id} stays queued: {problem}"
        if problem is None:
            return None
        self._stop(job_id, problem)
        return Outcome(1, "Failed", None, [], problem)

    def controller_problem(self) -> str | None:
        """Why the cluster's controller would not start a queued job, or None when it
        holds its Lease."""
        from lightkube.core.exceptions import ApiError

        try:
            holder, age = lease.holder(self.client, CONTROLLER_NAMESPACE)
        except ApiError as exc:
            return f"its controller's Lease cannot be read ({exc.status.message})"
        if holder is None or age is None:
            return (
                "the cluster has no sparkube controller to start it (its Lease "
                f"{CONTROLLER_NAMESPACE}/{lease.LEASE_NAME} is not held); run sparkube up "
                "to install it"
            )
        if age > CONTROLLER_SILENT:
            return (
                f"the cluster's sparkube controller ({holder}) has not renewed its Lease "
                f"for {age:.0f} s; see kubectl -n {CONTROLLER_NAMESPACE} get pods, or run "
                "sparkube up"
            )
        error = lease.failing(self.client, CONTROLLER_NAMESPACE, CONTROLLER_FAILING)
        if error:
            return (
                f"the cluster's sparkube controller runs but fails ({error.rstrip('.')}); "
                "run sparkube up to put its service account's rights back"
            )
        return None

    def _stop(self, job_id: str, reason: str) -> None:
        """Stop a job that cannot run, and wait (briefly) for its pods to go, so that
        what the user is told ("stopped") holds when the command returns."""
        self.cancel(job_id, reason=reason, state="Failed")
        self.wait_gone(job_id, timeout=STOP_WAIT)

    def _executors_refused(
        self, driver: Json, prog: Progress, executors: Sequence[Json], watch: _Watch, now: float
    ) -> tuple[str | None, list[str]]:
        """A running driver with no executor pod at all: its log says whether the API
        server refuses them (RBAC, quota, PodSecurity). The driver retries those 403s for
        ever, so without this a job would wait without end."""
        if executors or prog.executors_wanted == 0:
            watch.running_since = None
            return None, []
        if watch.running_since is None:
            watch.running_since = now
        if now - watch.running_since < EXECUTOR_GRACE:
            return None, []
        if now - watch.executor_check < EXECUTOR_CHECK_INTERVAL:
            return None, []
        watch.executor_check = now
        tail = self.driver_log_tail(driver["metadata"]["name"])
        return executor_refusal(tail), tail

    def _vanished(self, job_id: str, watch: _Watch, now: float) -> Outcome | None:
        """The job's driver pod is gone or going: cancelled (by sparkube, here or on
        another machine), deleted by someone else, or not created yet (None)."""
        record = self._record(job_id) or {}
        if record.get("state") == "Cancelled":
            reason = str(record.get("message") or "cancelled")
            said = reason if reason.startswith("cancelled") else f"cancelled: {reason}"
            return Outcome(1, "Cancelled", None, [], f"Job {job_id} was {said.rstrip('.')}.")
        job = self._job(job_id)
        failed = _condition(job, "Failed") if job else None
        if job is not None and failed is None and not _deleting(job):
            # its driver pod is yet to come, or going: the Job controller will say what
            # it makes of that
            return None
        if watch.vanished_at is None:
            watch.vanished_at = now
        if failed is None and now - watch.vanished_at < VANISHED_GRACE:
            return None  # a cancel in progress marks the record after deleting the pods
        if watch.driver is None and job is None:
            message = (
                f"Job {job_id} was deleted from the cluster before its driver started "
                "(not by sparkube cancel)."
            )
        else:
            message = _gone_message(job_id, watch.driver, failed, has_log=self._has_log(job_id))
        finished = (failed or {}).get("lastTransitionTime") or now_iso()
        told = _interruptions(job)
        self._update_record(job_id, state="Failed", finished=finished, message=message,
                            **({"interruptions": told} if told else {}))  # fmt: skip
        return Outcome(1, "Failed", None, [], message)

    def _new_interruptions(self, job_id: str, driver: Json, watch: _Watch) -> list[str]:
        """A line for each interruption on the job's Job not said yet (the driver pod
        carries the job's annotations: whether its executors decommission)."""
        job = self._job(job_id)
        decommission = _annotation(driver, "decommission") or ""
        lines = []
        for entry in interruptions.of_job(job):
            if entry.key not in watch.told:
                watch.told.add(entry.key)
                lines.append(interruptions.live(entry, decommission))
        return lines

    def _keep_log(self, job_id: str, follower: LogFollower, watch: _Watch) -> None:
        """Copy what the follower has received to the bucket, when it grew."""
        count = len(follower.lines)
        if count > watch.kept:
            self.s3.put_object(Bucket=self.config().bucket, Key=log_key(job_id),
                               Body="".join(follower.lines[:count]).encode())  # fmt: skip
            watch.kept = count


def _interruptions(job: Json | None) -> list[dict[str, Any]]:
    """The interruptions the cluster's controller told the Job, as a record keeps them."""
    return [e.to_json() for e in interruptions.of_job(job)]


def _admitted(job: Json | None) -> str | None:
    """When the cluster's controller let the job start (it waited queued from its
    submission until then), from its Job's annotation."""
    ann = ((job or {}).get("metadata") or {}).get("annotations") or {}
    return str(ann[admission.ADMITTED]) if ann.get(admission.ADMITTED) else None


def queue_message(position: int, waits_for: str) -> str:
    """``3rd in line, waits for memory (…)``, as ``jobs`` and the live line say it."""
    if position <= 0:
        return "waits for the cluster's controller to look at it"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(
        position % 10 if position % 100 not in (11, 12, 13) else 0, "th"
    )
    return f"{position}{suffix} in line, waits for {waits_for or 'room'}"


def _waiting(pod: Json) -> list[tuple[str | None, str]]:
    """(reason, message) of each container of the pod that is waiting."""
    out = []
    for st in statuses(pod):
        waiting = (st.get("state") or {}).get("waiting")
        if waiting:
            out.append((waiting.get("reason"), str(waiting.get("message") or "")))
    return out


@dataclass
class _Watch:
    """What one watcher of a job has seen so far (monotonic seconds)."""

    driver: str | None = None  # the driver pod's name, once seen
    running_since: float | None = None  # running with no executor pod since
    executor_check: float = 0.0  # last read of the log for refusals
    snapshot: float = 0.0  # last copy of the log to the bucket
    kept: int = 0  # lines of the followed log copied to the bucket
    captured: bool = False  # the log was copied as the pod was being deleted
    vanished_at: float | None = None  # the pod was first seen gone
    queued_since: float | None = None  # first seen queued
    admitted: float | None = None  # first seen out of the queue
    controller_check: float = 0.0  # last look at the controller's Lease
    interruption_check: float = 0.0  # last read of the Job for interruptions
    told: set[tuple[str, str]] = field(default_factory=set)  # interruptions said


def _annotation(pod: Json | None, name: str) -> str | None:
    annotations = ((pod or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(ANNOTATION_PREFIX + name)
    return str(value) if value else None


def _failed_init(pod: Json) -> dict[str, Any] | None:
    """The terminated state of the pod's first init container that failed, with its
    name under ``container``."""
    for st in (pod.get("status") or {}).get("initContainerStatuses") or []:
        term = (st.get("state") or {}).get("terminated") or {}
        if term and term.get("exitCode") not in (None, 0):
            return {**term, "container": st.get("name")}
    return None


def _deleting(obj: Json) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _condition(job: Json, kind: str) -> Json | None:
    """The Job's condition of that type (Complete, Failed) when it is true."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _gone_message(job_id: str, driver: str | None, failed: Json | None, *, has_log: bool) -> str:
    pod = f"driver pod {driver}" if driver else "driver pod"
    why = ""
    if failed is not None:
        detail = ": ".join(str(x) for x in (failed.get("reason"), failed.get("message")) if x)
        why = f" (the Job failed: {detail.rstrip('.')})" if detail else " (the Job failed)"
    kept = (
        f"what it printed until then is in sparkube logs {job_id}"
        if has_log
        else "nothing it printed was captured"
    )
    return (
        f"The {pod} of {job_id} was deleted before it ended, not by sparkube cancel{why}; {kept}."
    )
