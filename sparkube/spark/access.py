"""What a job runner reaches of one cluster: its API server and its bucket.

:class:`ClusterAccess` holds a lightkube client (the admin kubeconfig; None when only the
bucket is reachable: :meth:`ClusterAccess.from_bucket`) and the user's S3 client in the
cluster's region, and reads through them what the rest of the runner works from: the
cluster's settings (the ConfigMap ``up`` writes), a job's pods (its driver and executors,
in one list call), its Kubernetes Job, the events of its pods, the nodes' capacity, and
the job's record and driver log in the bucket. A failed API call becomes a
:class:`~sparkube.errors.ClusterError` saying what failed. It writes nothing; the
runner's parts build on it: watching a job and recording its end in
:mod:`sparkube.spark.watch`, the ``jobs`` and ``logs`` read paths in
:mod:`sparkube.spark.joblist`, submitting in :mod:`sparkube.spark.cluster`, whose
:class:`~sparkube.spark.cluster.ClusterJobs` is all of them in one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Self

from sparkube.aws.s3 import get_text, object_exists
from sparkube.controller import admission
from sparkube.errors import ClusterError
from sparkube.spark.config import CLUSTER_CONFIG, JOB_LABEL, ROLE_LABEL, ClusterConfig, Json
from sparkube.spark.diagnose import NodeCapacity, schedulable_capacity
from sparkube.spark.podspec import Endpoints
from sparkube.spark.rbac import SPARK_NAMESPACE
from sparkube.spark.records import log_key, record_key


class ClusterAccess:
    """One cluster as the runner reaches it: a lightkube client (admin kubeconfig) and the
    user's S3."""

    def __init__(
        self,
        client: Any,
        s3_for_region: Callable[[str], Any],
        *,
        endpoints: Endpoints | None = None,
        pod_s3_for_region: Callable[[str], Any] | None = None,
    ) -> None:
        self.client = client
        self._s3_for_region = s3_for_region
        #: The user's credentials signing for the address pods reach S3 at (presigned
        #: URLs of the job's files); the user's own client when that is AWS's.
        self._pod_s3_for_region = pod_s3_for_region
        self._s3: Any = None
        self.endpoints = endpoints or Endpoints()
        self._config: ClusterConfig | None = None
        self._room: list[admission.Room] | None = None

    @classmethod
    def from_bucket(cls, s3: Any, config: ClusterConfig) -> Self:
        """Jobs read from the cluster's bucket alone (no API server): the records and
        driver logs that ``jobs`` and ``logs`` show on a machine without the kubeconfig."""
        jobs = cls(None, lambda _region: s3)
        jobs._s3, jobs._config = s3, config
        return jobs

    @property
    def bucket_only(self) -> bool:
        return self.client is None

    @property
    def s3(self) -> Any:
        """The user's S3 client in the cluster's region (from the cluster's config)."""
        if self._s3 is None:
            self._s3 = self._s3_for_region(self.config().region)
        return self._s3

    def _api(self, what: str, call: Callable[[], Any]) -> Any:
        from lightkube.core.exceptions import ApiError

        try:
            return call()
        except ApiError as exc:
            raise ClusterError(f"{what} failed: {exc.status.message}.") from None
        except Exception as exc:  # httpx transport errors: cluster unreachable
            if type(exc).__module__.startswith(("httpx", "httpcore", "httpx2")):
                raise ClusterError(
                    f"{what} failed: the API server cannot be reached ({exc}); check that the "
                    "cluster is up (sparkube status)."
                ) from None
            raise

    def config(self) -> ClusterConfig:
        if self._config is None:
            from lightkube.core.exceptions import ApiError
            from lightkube.resources.core_v1 import ConfigMap

            try:
                cm = self.client.get(ConfigMap, CLUSTER_CONFIG, namespace=SPARK_NAMESPACE)
            except ApiError as exc:
                if exc.status.code == 404:
                    raise ClusterError(
                        f"The cluster has no {SPARK_NAMESPACE}/{CLUSTER_CONFIG} ConfigMap; run "
                        "sparkube up to finish the addons phase."
                    ) from None
                raise ClusterError(f"Reading the cluster's configuration failed: "
                                   f"{exc.status.message}.") from None  # fmt: skip
            self._config = ClusterConfig.from_data(cm.data or {})
        return self._config

    def _pods(self, job_id: str) -> list[Json]:
        """Every pod of the job (its driver and its executors), in one list call."""
        from lightkube.resources.core_v1 import Pod

        pods = self._api(
            "Listing the job's pods",
            lambda: list(
                self.client.list(Pod, namespace=SPARK_NAMESPACE, labels={JOB_LABEL: job_id})
            ),
        )
        return [p.to_dict() for p in pods]

    @staticmethod
    def _split(pods: Sequence[Json]) -> tuple[Json | None, list[Json]]:
        """(the newest driver pod, the executor pods) of a job's pods."""
        labels = [p["metadata"].get("labels") or {} for p in pods]
        drivers = [
            p for p, lab in zip(pods, labels, strict=True) if lab.get(ROLE_LABEL) == "driver"
        ]
        drivers.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        executors = [
            p for p, lab in zip(pods, labels, strict=True) if lab.get("spark-role") == "executor"
        ]
        return (drivers[-1] if drivers else None), executors

    def driver(self, job_id: str) -> Json | None:
        return self._split(self._pods(job_id))[0]

    def executors(self, job_id: str) -> list[Json]:
        return self._split(self._pods(job_id))[1]

    def events(self, pod_names: Sequence[str]) -> list[Json]:
        from lightkube.resources.core_v1 import Event

        names = set(pod_names)
        events = self._api(
            "Listing events", lambda: list(self.client.list(Event, namespace=SPARK_NAMESPACE))
        )
        return [e.to_dict() for e in events if e.involvedObject and e.involvedObject.name in names]

    def node_capacity(self) -> list[NodeCapacity]:
        from lightkube.resources.core_v1 import Node

        return schedulable_capacity(
            self._api("Listing nodes", lambda: list(self.client.list(Node)))
        )

    def _record(self, job_id: str) -> dict[str, Any] | None:
        text = get_text(self.s3, self.config().bucket, record_key(job_id))
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _has_log(self, job_id: str) -> bool:
        return object_exists(self.s3, self.config().bucket, log_key(job_id))

    def _job(self, job_id: str) -> Json | None:
        """The job's Kubernetes Job, or None when the cluster has none by that name."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.batch_v1 import Job

        try:
            job = self.client.get(Job, job_id, namespace=SPARK_NAMESPACE)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise ClusterError(f"Reading job {job_id} failed: {exc.status.message}.") from None
        return dict(job.to_dict())
