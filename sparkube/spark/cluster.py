"""Spark jobs on the cluster: submitted inside it, data in S3, watched to the end.

Shape (DESIGN.md "Jobs"), and why:

- The driver is the single pod of a Kubernetes **Job** in the ``spark`` namespace running
  ``spark-submit --deploy-mode client`` against ``https://kubernetes.default.svc``, with
  ``spark.driver.host`` = its pod IP and ``spark.kubernetes.driver.pod.name`` = its pod,
  so the executors it creates are owned by that pod and vanish with it. Nothing Spark or
  Java is needed on the user's machine, and the pod's exit code *is* the application's
  (cluster-mode spark-submit does not carry it, FACTS-SPARK.md). The Job's
  ``ttlSecondsAfterFinished`` removes finished pods; nothing piles up.
- The app, the Spark properties and the executors' pod template travel in a ConfigMap
  owned by the Job (so no S3 read happens before hadoop-aws is loaded). Apps larger
  than a ConfigMap holds are refused with that reason.
- hadoop-aws, the lean AWS SDK v2 set and spark-hadoop-cloud (sparkube.spark.image:
  37 jars, 12 MiB, not the 686 MB bundle) are put into the cluster's bucket once by
  ``up`` (sparkube.spark.jars); the driver pod's init container fetches them from there
  with presigned URLs (Maven Central, or ``SPARKUBE_JARS_REPOSITORY``, as the fallback),
  each checked by SHA-256, into an emptyDir; ``spark.jars`` names those local files, so
  the driver has them on its class path and serves them to its executors (given as URLs
  instead, every executor would download all 37 itself).
- Inputs are uploaded to the cluster bucket content-addressed (``inputs/SHA256/NAME``:
  a second run of the same file uploads nothing); ``s3a://`` inputs pass through.
  Credentials in pods come only from the nodes' instance profile (the S3A default
  chain ends with instance metadata); no key is ever put in a pod spec.
- Each job's record (``jobs/ID/job.json``) and, once it ended, its driver log
  (``jobs/ID/driver.log``) are kept in the bucket, so ``jobs`` and ``logs`` work from any
  machine and after the pods are gone. Event logs go to ``s3a://BUCKET/spark-events/``.
- Pods run as uid 185, ``runAsNonRoot``, no privilege escalation, every capability
  dropped, seccomp RuntimeDefault: PodSecurity ``restricted``.

This module is the runner: :class:`ClusterJobs` submits a job and lists jobs and their
logs. It is built on :class:`~sparkube.spark.watch.JobWatching` (:mod:`sparkube.spark.watch`:
watching a job to its end, diagnosing one that cannot run, recording how it ended, and
cancelling it), which is built on :class:`~sparkube.spark.access.ClusterAccess`
(:mod:`sparkube.spark.access`: the cluster's API server and bucket as the runner reaches
them: its settings, a job's pods, Job, events and record, the nodes). What it works with
lives next to it: the cluster's settings, labels and a job's default size in
:mod:`sparkube.spark.config`; the job's Spark properties, manifests and pod sizes in
:mod:`sparkube.spark.podspec`; the records and logs kept in the bucket in
:mod:`sparkube.spark.records`; the live driver log in :mod:`sparkube.spark.logfollower`;
the S3 calls in :mod:`sparkube.aws.s3`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sparkube.aws.s3 import get_text, list_prefixes, object_exists, put_json
from sparkube.controller import admission
from sparkube.errors import ClusterError, InputError
from sparkube.spark import bundles, jars
from sparkube.spark.bundles import Bundle
from sparkube.spark.config import (
    ANNOTATION_PREFIX,
    MANAGED_BY,
    Json,
    Resources,
)
from sparkube.spark.podspec import (
    EVENTS_PREFIX,
    JobSpec,
    effective_resources,
    job_manifests,
    pod_requests,
    spark_properties,
)
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
    JobWatching,
    _admitted,
    _condition,
    _deleting,
    _gone_message,
    queue_message,
)

CONFIGMAP_LIMIT = 900_000  # bytes of app a ConfigMap carries (the API limit is 1 MiB)


class ClusterJobs(JobWatching):
    """Jobs of one cluster: a lightkube client (admin kubeconfig) and the user's S3."""

    # ------------------------------------------------------------------ submit

    def ensure_events_dir(self) -> None:
        cfg = self.config()
        if not object_exists(self.s3, cfg.bucket, EVENTS_PREFIX):
            self.s3.put_object(Bucket=cfg.bucket, Key=EVENTS_PREFIX, Body=b"")

    def upload_bundles(self, found: Sequence[Bundle]) -> list[Bundle]:
        """Each bundle in the bucket (content-addressed: kept objects are not sent
        again), with its key."""
        import dataclasses

        cfg = self.config()
        out = []
        for bundle in found:
            key = bundle.key or f"inputs/{bundle.digest}/{bundle.object_name}"
            if not bundle.key and not object_exists(self.s3, cfg.bucket, key):
                self.s3.put_object(Bucket=cfg.bucket, Key=key, Body=bundle.data)
            out.append(dataclasses.replace(bundle, key=key, data=b""))
        return out

    def env_in_bucket(self, key: str) -> str | None:
        """The bucket key of an environment built earlier under ``key``, if kept."""
        found = f"envs/{key}/{bundles.PACKAGES}.zip"
        return found if object_exists(self.s3, self.config().bucket, found) else None

    def keep_env(self, key: str, bundle: Bundle) -> Bundle:
        """Store a freshly built environment under its requirements' key."""
        import dataclasses

        where = f"envs/{key}/{bundles.PACKAGES}.zip"
        self.s3.put_object(Bucket=self.config().bucket, Key=where, Body=bundle.data)
        return dataclasses.replace(bundle, key=where, data=b"")

    def _presigner(self) -> Any:
        """The client that signs URLs for the address pods reach S3 at."""
        if self.endpoints.s3 and self._pod_s3_for_region is not None:
            return self._pod_s3_for_region(self.config().region)
        return self.s3

    def _fetch_lines(self, spec: JobSpec) -> list[str]:
        cfg = self.config()
        presigner = self._presigner()
        lines = []
        for bundle in spec.bundles:
            url = presigner.generate_presigned_url(
                "get_object",
                Params={"Bucket": cfg.bucket, "Key": bundle.key},
                ExpiresIn=bundles.URL_SECONDS,
            )
            lines.append(f"{url} {bundle.object_name} {'zip' if bundle.archive else 'file'}")
        return lines

    def job_room(self) -> list[admission.Room]:
        """What each schedulable worker has for jobs: allocatable less the pods that are
        not jobs' (read once per command: the defaults and the never-fits check)."""
        if self._room is None:
            from lightkube import operators
            from lightkube.resources.core_v1 import Node, Pod

            nodes = [
                n.to_dict() for n in self._api("Listing nodes", lambda: self.client.list(Node))
            ]
            live = {"status.phase": operators.not_in(["Succeeded", "Failed"])}
            pods = self._api(
                "Listing pods",
                lambda: [p.to_dict() for p in self.client.list(Pod, namespace="*", fields=live)],
            )
            self._room = admission.rooms(nodes, [p for p in pods if not admission.is_jobs(p)])
        return self._room

    def effective_size(self, resources: Resources, conf: Mapping[str, str]) -> Resources:
        """The size a job of ``resources`` and ``conf`` really has (``--conf`` wins)."""
        spec = JobSpec("job-size", "app", "app", b"", (), resources, conf=dict(conf))
        return effective_resources(spec, spark_properties(spec, self.config(), self.endpoints))

    def check_fits(self, spec: JobSpec) -> None:
        """Refuse (exit 2, before anything is made) a job that could never start here:
        a pod larger than any worker has for jobs, or a driver and minimum executors
        that even the empty workers cannot hold at once, with as many more as the
        workers' group may still add. One that only has to wait for others, or for a
        worker the controller adds, is queued instead."""
        props = spark_properties(spec, self.config(), self.endpoints)
        size = effective_resources(spec, props)
        driver, executor = (
            admission.Ask(r["cpu"], r["memory_bytes"]) for r in pod_requests(spec, props)
        )
        baseline = self.job_room()
        more = self.config().max_workers - len(baseline)
        if baseline and more > 0:  # workers the group may still add, each like the roomiest
            big = max(baseline, key=lambda r: (r.free_cpu, r.free_memory))
            baseline = baseline + [
                admission.Room(f"new-{i}", big.cpu, big.memory, big.free_cpu, big.free_memory)
                for i in range(more)
            ]
        problem = admission.never_fits(
            [driver] + [executor] * size.executors,
            ["driver"] + ["executor"] * size.executors,
            baseline,
        )
        if problem:
            raise InputError(
                f"Job {spec.job_id} could never start on this cluster: {problem}; lower "
                "--executors, --executor-cores, --executor-memory or --driver-memory, or "
                "give the cluster more or larger workers (sparkube up --max-workers N, "
                "--instance-type)."
            )

    def submit(self, spec: JobSpec) -> JobRecord:
        from lightkube import codecs

        self.check_fits(spec)
        if len(spec.app_bytes) > CONFIGMAP_LIMIT:
            raise InputError(
                f"{spec.app_name} is {len(spec.app_bytes) / 1e6:.1f} MB; apps up to 0.9 MB are "
                "shipped with the job: put its dependencies in --conf spark.jars instead."
            )
        cfg = self.config()
        self.ensure_events_dir()
        submitted = now_iso()
        job, configmap = job_manifests(
            spec, cfg, self.endpoints, submitted=submitted, fetch=self._fetch_lines(spec),
            jar_urls=jars.presigned_urls(self._presigner(), cfg.bucket),
        )  # fmt: skip
        created = self._api(
            "Creating the driver Job", lambda: self.client.create(codecs.from_dict(job))
        )
        configmap["metadata"]["ownerReferences"] = [
            {"apiVersion": "batch/v1", "kind": "Job", "name": spec.job_id,
             "uid": created.metadata.uid, "blockOwnerDeletion": False}
        ]  # fmt: skip
        self._api("Creating the job's ConfigMap",
                  lambda: self.client.create(codecs.from_dict(configmap)))  # fmt: skip
        props = spark_properties(spec, cfg, self.endpoints)
        size = effective_resources(spec, props)
        driver_request, executor_request = pod_requests(spec, props)
        record = JobRecord(
            job_id=spec.job_id,
            app=spec.app_name,
            kind=spec.kind,
            state="Queued",
            submitted=submitted,
            executors=size.executors,
            dynamic_executors=size.dynamic.describe() if size.dynamic is not None else "",
            executor_cores=size.executor_cores,
            executor_memory=size.executor_memory,
            args=list(spec.args),
            output=spec.output_uri,
            driver_request=driver_request,
            executor_request=executor_request,
        )
        put_json(self.s3, cfg.bucket, record_key(spec.job_id), record.to_json())
        return record

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
                )
                records[job_id] = rec
            if rec.state not in ENDED_STATES:
                self._refresh(rec, dict(job.to_dict()))
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
