"""Which sparkube jobs are still running on a cluster, asked cheaply (for ``down``).

``down`` deletes the nodes a job runs on, so it first says which jobs would die with
them. One list call of the driver Jobs in the ``spark`` namespace (label
``app.kubernetes.io/managed-by=sparkube``) with the saved admin kubeconfig answers it:
a Job with neither a ``Complete`` nor a ``Failed`` condition is still running (or
pending). The bucket's job records are not used: a record says ``Running`` until someone
watches the job end, so it can be stale, and reading them costs a listing plus a read
per job.

The answer must never stand in the way of deleting a cluster that is broken: without a
kubeconfig, or when the API server does not answer within a few seconds, the result says
it could not tell (``checked=False`` and why) instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparkube.env import Environment
from sparkube.spark.config import ANNOTATION_PREFIX, MANAGED_BY
from sparkube.spark.rbac import SPARK_NAMESPACE

#: Seconds to wait for the API server before giving up on the question.
TIMEOUT = 5.0


@dataclass(frozen=True)
class RunningJob:
    job_id: str
    app: str
    submitted: str


@dataclass(frozen=True)
class RunningJobs:
    #: False when the cluster was not asked: no kubeconfig here (``reason`` empty), or
    #: its API server did not answer (``reason`` says so).
    checked: bool
    jobs: tuple[RunningJob, ...] = ()
    reason: str = ""


def _finished(job: object) -> bool:
    status = getattr(job, "status", None)
    for cond in (getattr(status, "conditions", None) or []) if status else []:
        if cond.type in ("Complete", "Failed") and cond.status == "True":
            return True
    return False


def running_jobs(env: Environment, cluster: str, *, timeout: float = TIMEOUT) -> RunningJobs:
    """The cluster's jobs that have not ended, oldest first; never raises."""
    kubeconfig = env.cluster_dir(cluster) / "kubeconfig"
    if not kubeconfig.is_file():
        return RunningJobs(False)  # nothing to ask: kubernetes never set up from here
    try:
        from lightkube.resources.batch_v1 import Job

        from sparkube.kube.client import client_from_kubeconfig

        client = client_from_kubeconfig(kubeconfig, timeout=timeout)
        labels: dict[str, Any] = dict(MANAGED_BY)
        jobs = list(client.list(Job, namespace=SPARK_NAMESPACE, labels=labels))
    except Exception as exc:  # unreachable, refused, expired credentials, no namespace
        return RunningJobs(False, reason=f"the API server did not answer ({type(exc).__name__})")
    found = []
    for job in jobs:
        if _finished(job) or job.metadata is None:
            continue
        ann = job.metadata.annotations or {}
        found.append(
            RunningJob(
                job_id=str(job.metadata.name),
                app=ann.get(ANNOTATION_PREFIX + "app", "?"),
                submitted=ann.get(ANNOTATION_PREFIX + "submitted", ""),
            )
        )
    return RunningJobs(True, tuple(sorted(found, key=lambda j: (j.submitted, j.job_id))))
