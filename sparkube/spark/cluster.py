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
- Each job's record (``jobs/ID/job.json``) is put in the bucket as it is submitted; it
  and, once the job ended, its driver log are what ``jobs`` and ``logs`` show, from any
  machine (:mod:`sparkube.spark.joblist`). Event logs go to ``s3a://BUCKET/spark-events/``.
- Pods run as uid 185, ``runAsNonRoot``, no privilege escalation, every capability
  dropped, seccomp RuntimeDefault: PodSecurity ``restricted``.

This module is the runner: :class:`ClusterJobs`, which every command that works with
jobs on the cluster opens, submits a job here (checks that it could ever start, puts its
files and environments in the bucket, creates its Job and ConfigMap, writes its record)
and is composed of the rest of the runner, each part in its own module:

- :mod:`sparkube.spark.access`: :class:`~sparkube.spark.access.ClusterAccess`, what the
  runner reaches of the cluster (its API server and bucket: its settings, a job's pods,
  Job, events and record, the nodes), which the others build on;
- :mod:`sparkube.spark.watch`: watching a job to its end and diagnosing one that cannot
  run (:class:`~sparkube.spark.watch.JobWatching`, :class:`~sparkube.spark.watch.Progress`,
  :class:`~sparkube.spark.watch.Outcome`), and working out and recording how it ended, or
  cancelling it (:class:`~sparkube.spark.watch.JobEnding`);
- :mod:`sparkube.spark.joblist`: the ``jobs`` and ``logs`` read paths
  (:class:`~sparkube.spark.joblist.JobListing`).

What it works with lives next to it: the cluster's settings, labels and a job's default
size in :mod:`sparkube.spark.config`; the job's Spark properties, manifests and pod sizes
in :mod:`sparkube.spark.podspec`; the records and logs kept in the bucket in
:mod:`sparkube.spark.records`; the live driver log in :mod:`sparkube.spark.logfollower`;
the S3 calls in :mod:`sparkube.aws.s3`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sparkube.aws.s3 import object_exists, put_json
from sparkube.controller import admission
from sparkube.errors import InputError
from sparkube.spark import bundles, jars
from sparkube.spark.bundles import Bundle
from sparkube.spark.config import Resources
from sparkube.spark.joblist import JobListing
from sparkube.spark.podspec import (
    EVENTS_PREFIX,
    JobSpec,
    decommissioning,
    effective_resources,
    job_manifests,
    pod_requests,
    spark_properties,
)
from sparkube.spark.records import JobRecord, now_iso, record_key
from sparkube.spark.watch import JobWatching

CONFIGMAP_LIMIT = 900_000  # bytes of app a ConfigMap carries (the API limit is 1 MiB)


class ClusterJobs(JobWatching, JobListing):
    """Jobs of one cluster: a lightkube client (admin kubeconfig) and the user's S3.
    Submitted here; watched by :class:`JobWatching`, their end recorded and cancels done
    by the :class:`~sparkube.spark.watch.JobEnding` it builds on; listed with their logs
    by :class:`JobListing`."""

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
            decommission="on" if decommissioning(props) else "off",
            executor_cores=size.executor_cores,
            executor_memory=size.executor_memory,
            args=list(spec.args),
            output=spec.output_uri,
            driver_request=driver_request,
            executor_request=executor_request,
        )
        put_json(self.s3, cfg.bucket, record_key(spec.job_id), record.to_json())
        return record
