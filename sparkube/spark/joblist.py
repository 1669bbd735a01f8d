"""The ``jobs`` and ``logs`` read paths: every job and its driver log, from any machine.

A job's record (``jobs/ID/job.json``) and, once it ended, its driver log
(``jobs/ID/driver.log``) are kept in the cluster's bucket (:mod:`sparkube.spark.records`),
so ``jobs`` and ``logs`` work from any machine and after the pods are gone; on a machine
without the cluster's kubeconfig they show what the bucket has
(:meth:`~sparkube.spark.access.ClusterAccess.from_bucket`).

:class:`JobListing` reads and never writes: :meth:`~JobListing.records` lists the
bucket's records (the ended ones from ``jobs/index.json`` in one read, the others one by
one) and refreshes each job not recorded as ended by what the cluster shows now (queued,
pending, running, or ended with nobody watching: then worked out as a watcher would,
:meth:`~sparkube.spark.watch.JobEnding.ended`, and left for the next write path to
record); :meth:`~JobListing.logs` streams the driver log from its pod while it exists,
else gives the bucket's copy, or says why there is none.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from sparkube.aws.s3 import get_text, list_prefixes
from sparkube.controller import admission
from sparkube.errors import ClusterError, InputError
from sparkube.spark.config import ANNOTATION_PREFIX, MANAGED_BY, Json
from sparkube.spark.rbac import SPARK_NAMESPACE
from sparkube.spark.records import (
    ENDED_STATES,
    INDEX_KEY,
    RESULTS_PREFIX,
    JobRecord,
    log_key,
    now_iso,
    parse_record,
    record_key,
)
from sparkube.spark.watch import (
    JobEnding,
    _admitted,
    _condition,
    _deleting,
    _gone_message,
    _interruptions,
    queue_message,
)


class JobListing(JobEnding):
    """Every job and its driver log, as ``jobs`` and ``logs`` show them."""

    def _bucket_records(self) -> dict[str, JobRecord]:
        """The bucket's job records. Reads only. Records of ended jobs never change, so
        the write paths that end a job (a watcher's finish, cancel) also add its record
        to ``jobs/index.json``: a listing plus one read covers those, and only records
        not in the index are read one by one (in parallel)."""
        cfg = self.config()
        index: dict[str, JobRecord] = {}
        text = get_text(self.s3, cfg.bucket, INDEX_KEY)
        if text:
            with contextlib.suppress(ValueError, AttributeError):
                for data in json.loads(text).get("jobs", []):
                    rec = parse_record(data)
                    if rec is not None:
                        index[rec.job_id] = rec
        records = dict(index)
        missing = [
            job_id
            for prefix in list_prefixes(self.s3, cfg.bucket, f"{RESULTS_PREFIX}/")
            if (job_id := prefix[len(RESULTS_PREFIX) + 1 :].rstrip("/")) not in index
        ]

        def read(job_id: str) -> JobRecord | None:
            body = get_text(self.s3, cfg.bucket, record_key(job_id))
            with contextlib.suppress(ValueError):
                return parse_record(json.loads(body)) if body else None
            return None

        if missing:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
                for rec in pool.map(read, missing):
                    if rec is not None:
                        records[rec.job_id] = rec
        return records

    def records(self) -> list[JobRecord]:
        """Every job: the bucket's records, refreshed by what the cluster shows now."""
        from lightkube.resources.batch_v1 import Job

        records = self._bucket_records()
        if self.client is None:  # as last recorded: nothing here reaches the cluster
            return sorted(records.values(), key=lambda r: r.submitted, reverse=True)
        jobs = self._api(
            "Listing jobs",
            lambda: list(self.client.list(Job, namespace=SPARK_NAMESPACE, labels=MANAGED_BY)),
        )
        for job in jobs:
            job_id = job.metadata.name
            found = records.get(job_id)
            if found is not None:
                rec = found
            else:
                ann = job.metadata.annotations or {}
                rec = JobRecord(
                    job_id=job_id,
                    app=ann.get(ANNOTATION_PREFIX + "app", "?"),
                    kind=ann.get(ANNOTATION_PREFIX + "kind", "submit"),
                    state="Unknown",
                    submitted=ann.get(ANNOTATION_PREFIX + "submitted", ""),
                    executors=int(ann.get(ANNOTATION_PREFIX + "executors", "0") or 0),
                    decommission=ann.get(ANNOTATION_PREFIX + "decommission", ""),
                )
                records[job_id] = rec
            data = dict(job.to_dict())
            told = _interruptions(data)
            if told:  # the Job's list only grows: it has all the record has
                rec.interruptions = told
            if rec.state not in ENDED_STATES:
                self._refresh(rec, data)
        in_cluster = {job.metadata.name for job in jobs}
        for rec in records.values():
            if rec.state not in ENDED_STATES and rec.job_id not in in_cluster:
                # its Job is gone (removed an hour after it ended, or deleted) and no
                # watcher recorded the end: say so rather than show it running for ever
                rec.state = "Unknown"
                rec.message = "the cluster no longer has this job and its end was not recorded"
        return sorted(records.values(), key=lambda r: r.submitted, reverse=True)

    def _refresh(self, rec: JobRecord, job: Json) -> None:
        """A job the bucket does not show as ended: its state from the Job and its pods,
        worked out here and not written (``jobs`` is a read command; a job that ended
        with nobody watching is recorded by the next write path that sees it)."""
        driver = self.driver(rec.job_id)
        phase = (driver.get("status") or {}).get("phase") if driver else None
        failed = _condition(job, "Failed")
        ann = (job.get("metadata") or {}).get("annotations") or {}
        rec.admitted = _admitted(job) or rec.admitted
        if driver is not None and phase in ("Succeeded", "Failed") and not _deleting(driver):
            outcome, changes, _ = self.ended(rec.job_id, driver, job=job)
            rec.state, rec.exit_code = outcome.state, outcome.exit_code
            rec.finished = changes.get("finished")
            rec.started = changes.get("started", rec.started)
            rec.message = outcome.diagnosis or ""
        elif failed is not None and (driver is None or _deleting(driver)):
            rec.state = "Failed"
            rec.finished = failed.get("lastTransitionTime") or now_iso()
            name = driver["metadata"]["name"] if driver is not None else None
            rec.message = _gone_message(rec.job_id, name, failed, has_log=self._has_log(rec.job_id))
        elif phase:
            rec.state = phase
        elif driver is None and (job.get("spec") or {}).get("suspend"):
            rec.state = "Queued"
            rec.message = queue_message(
                int(ann.get(admission.POSITION) or 0), str(ann.get(admission.WAITS_FOR) or "")
            )
        elif driver is None:
            rec.state = "Pending"

    def logs(self, job_id: str, *, follow: bool = False) -> Iterator[str]:
        """The driver log: live from the pod while it exists, else the bucket's copy."""
        from lightkube.core.exceptions import ApiError

        driver = self.driver(job_id) if self.client is not None else None
        if driver is not None:
            phase = (driver.get("status") or {}).get("phase")
            if phase != "Pending":
                try:
                    yield from self.client.log(
                        driver["metadata"]["name"], namespace=SPARK_NAMESPACE,
                        container="driver", follow=follow and phase == "Running",
                    )  # fmt: skip
                    return
                except ApiError:
                    pass
        text = get_text(self.s3, self.config().bucket, log_key(job_id))
        if text is None:
            record = self._record(job_id)
            if record is None and driver is None:
                raise InputError(f"No job {job_id} in this cluster; list them with sparkube jobs.")
            state = str((record or {}).get("state") or "Pending")
            if self.client is None and state not in ENDED_STATES:
                raise ClusterError(
                    f"Job {job_id} has no driver log in the cluster's bucket yet (a sparkube "
                    "watching it copies it there); on the machine with the cluster's "
                    f"kubeconfig, sparkube logs {job_id} streams it live."
                )
            if driver is not None or state not in ENDED_STATES:
                raise ClusterError(f"Job {job_id} has no driver log yet; its driver has not "
                                   "started.")  # fmt: skip
            why = str((record or {}).get("message") or "").rstrip(".")
            raise ClusterError(
                f"Job {job_id} {state.lower()} and no driver log was captured"
                + (f": {why}." if why else ".")
            )
        yield from text.splitlines(keepends=True)
