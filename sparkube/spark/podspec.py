"""What a cluster job is made of: its :class:`JobSpec`, the Spark properties it runs with
(the S3A magic committer, instance-profile credentials, event logs in the bucket,
executor decommissioning), the driver's Kubernetes Job and the ConfigMap with its app,
properties and executor pod template (:func:`job_manifests`), the init containers that
fetch the S3 jars and the job's files, PodSecurity ``restricted`` settings, and the CPU
and memory its pods ask for, as Spark sizes them (:func:`pod_requests`). Nothing here
talks to the cluster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkube.aws.s3 import DECOMMISSION_PREFIX, s3a
from sparkube.controller import admission
from sparkube.errors import InputError
from sparkube.model import MARKET_LABEL, ON_DEMAND
from sparkube.spark import bundles, jars
from sparkube.spark.bundles import Bundle
from sparkube.spark.config import (
    ANNOTATION_PREFIX,
    DRIVER_CPU,
    JOB_LABEL,
    MANAGED_BY,
    OVERHEAD_MIB,
    ROLE_LABEL,
    ClusterConfig,
    Dynamic,
    Json,
    Resources,
)
from sparkube.spark.diagnose import parse_cpu
from sparkube.spark.image import MAVEN_CENTRAL, SPARK_IMAGE, jar_file_name
from sparkube.spark.jars import JARS_MOUNT
from sparkube.spark.rbac import SPARK_NAMESPACE, SPARK_SERVICE_ACCOUNT

JOB_MOUNT = "/opt/sparkube/job"
JOB_TTL_SECONDS = 3600
EVENTS_PREFIX = "spark-events/"
API_TIMEOUT_MS = 30_000
INSTANCE_PROFILE_PROVIDER = "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
# The AWS SDK gives instance metadata 1 s per call by default; a node busy starting JVMs
# can be slower than that, and a missed answer fails the job's first S3 call.
IMDS_ENV = {"AWS_METADATA_SERVICE_TIMEOUT": "5"}


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    app_name: str  # what `jobs` shows (wordcount, etl.py, ...)
    app_file: str  # file name inside the job ConfigMap
    app_bytes: bytes
    args: tuple[str, ...]
    resources: Resources
    main_class: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    kind: str = "submit"  # or "wordcount"
    output_uri: str = ""  # s3a:// folder the job writes results to
    #: Files, modules and packages for its working directory, each with its bucket key.
    bundles: tuple[Bundle, ...] = ()


@dataclass(frozen=True)
class Endpoints:
    """Where pods reach S3 (None: AWS's regional S3), and the Maven repository of the S3
    jars (``up`` fills the bucket from it; pods fall back to it). Unusual networks and
    the tests set ``SPARKUBE_POD_S3_ENDPOINT`` and ``SPARKUBE_JARS_REPOSITORY``."""

    s3: str | None = None
    jars: str = MAVEN_CENTRAL

    def s3a_properties(self) -> dict[str, str]:
        """Hadoop properties that point s3a at ``s3`` (none for AWS's own endpoints)."""
        if not self.s3:
            return {}
        props = {
            "spark.hadoop.fs.s3a.endpoint": self.s3,
            "spark.hadoop.fs.s3a.path.style.access": "true",
        }
        if self.s3.startswith("http://"):
            props["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
        return props

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Endpoints:
        return cls(
            s3=environ.get("SPARKUBE_POD_S3_ENDPOINT") or None,
            jars=(environ.get("SPARKUBE_JARS_REPOSITORY") or MAVEN_CENTRAL).rstrip("/"),
        )


def fetch_jars_container(
    image: str, repository: str, bucket_urls: Sequence[str] = ()
) -> dict[str, Any]:
    """An init container that puts hadoop-aws and the lean AWS SDK set into the pod's
    ``jars`` emptyDir (12 MiB), each checked by SHA-256: from ``bucket_urls`` (presigned,
    one per jar) when given, else or on failure from the Maven repository."""
    return jars.fetch_container(image, repository, RESTRICTED_CONTAINER, bucket_urls)


def role_jars_container(config: ClusterConfig, endpoints: Endpoints) -> dict[str, Any]:
    """:func:`fetch_jars_container` for a long-lived pod (the History Server): the jars'
    bucket objects read with the node's instance role, the Maven repository after."""
    container = fetch_jars_container(
        config.image, endpoints.jars, jars.bucket_addresses(config.bucket)
    )
    container["env"].append({"name": "SPARKUBE_S3_REGION", "value": config.region})
    if endpoints.s3:
        container["env"].append({"name": "SPARKUBE_S3_ENDPOINT", "value": endpoints.s3})
    return container


#: DataFrame/SQL writes to s3a:// commit with the S3A magic committer (Hadoop's
#: committers.md, Spark's cloud-integration.md): tasks upload straight to the destination
#: as multipart uploads left open, the driver completes them at job commit and writes a
#: JSON ``_SUCCESS`` naming the committer. No copy-and-delete "rename", and nothing of a
#: failed job becomes visible. The two Spark classes come from spark-hadoop-cloud (one of
#: SPARK_IMAGE.s3_jars); other schemes, and RDD saveAsTextFile (Hadoop's old mapred API),
#: keep Hadoop's FileOutputCommitter. A user's --conf wins: fs.s3a.committer.name=file
#: goes back to it, as dynamic partition overwrite needs (the magic committer refuses it).
S3A_MAGIC_COMMITTER = {
    "spark.sql.sources.commitProtocolClass": (
        "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol"
    ),
    "spark.sql.parquet.output.committer.class": (
        "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter"
    ),
    "spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a": (
        "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory"
    ),
    "spark.hadoop.fs.s3a.committer.name": "magic",
    "spark.hadoop.fs.s3a.committer.magic.enabled": "true",
}


#: How long an executor whose pod is deleted (a node drained: the spot notice's
#: aws-node-termination-handler, a cordon and drain by hand) has to hand its blocks over
#: and exit: the pod's grace period, which Spark 4.1 sets from
#: spark.kubernetes.executor.terminationGracePeriodSeconds (30 s by default) over the pod
#: template's. The preStop hook (/opt/decom.sh) and the migration count against it. 100 s
#: fits the 2 minutes between EC2's spot notice and the reclaim and the termination
#: handler's 120 s drain timeout, with about 15 s for the handler to see the notice
#: (it polls every 2 s), evict the pods and the kubelet's 2 s past a preStop that ran out.
EXECUTOR_GRACE = "100s"
FALLBACK_KEY = "spark.storage.decommission.fallbackStorage.path"


def decommission_properties(bucket: str) -> dict[str, str]:
    """Executor decommissioning (Spark 4.1, checked in its source): an executor told to
    go (SIGPWR from the /opt/decom.sh preStop hook Spark gives executor pods when
    spark.decommission.enabled, or dynamic allocation giving back an idle executor, which
    then decommissions instead of being killed) stops taking tasks, lets its running ones
    finish, copies its shuffle files and cached blocks to other executors, and exits
    once all are copied; reducers then read them from there.

    - The fallback storage, ``s3a://BUCKET/decommission/`` (Spark adds ``JOB-ID/`` under
      it: spark.app.id is the job id), is one more place blocks go: Spark counts it among
      the peers, so some blocks go there even when other executors could take them, and
      all of them when none can (a job's only executor, every executor on the drained
      node). Spark never deletes it: the bucket's lifecycle rule expires it after a day
      (``sparkube.aws.storage.DECOMMISSION_RULE``).
    - The block manager opens the fallback's filesystem when decommissioning starts,
      outside any task, where only the JVM's own class path counts: the S3 jars that
      spark.jars hands executors are seen by tasks only (without them on the class path
      the decommission fails and the executor never exits by itself). So executor pods
      get the jars like the History Server, from the bucket with the node's role, on
      spark.executor.extraClassPath (:func:`executor_template`).
    - Blocks are looked for again every 10 s (Spark's default is 30 s): shuffle files of
      tasks that finish during the grace period still go, and an executor whose blocks
      went exits within about 10 s instead of 30.
    - A fetch failure caused by a decommissioned executor does not count towards the
      stage's 4 attempts (spark.stage.ignoreDecommissionFetchFailure, true by default
      since Spark 4.0, set here anyway), which only works while the driver remembers the
      executor after it left: spark.scheduler.maxRetainedRemovedDecommissionExecutors is
      0 by default, so it would never apply.
    - killInterval (the time an outside service gives a decommissioned executor, which
      Spark uses only to speculate its tasks when spark.speculation is on) and
      forceKillTimeout (when the driver kills an executor still decommissioning: one
      dynamic allocation gave back that hangs would otherwise keep its node) are the
      grace period too.
    """
    return {
        "spark.decommission.enabled": "true",
        "spark.storage.decommission.enabled": "true",
        "spark.storage.decommission.shuffleBlocks.enabled": "true",
        "spark.storage.decommission.rddBlocks.enabled": "true",
        FALLBACK_KEY: s3a(bucket, DECOMMISSION_PREFIX),
        "spark.storage.decommission.replicationReattemptInterval": "10s",
        "spark.stage.ignoreDecommissionFetchFailure": "true",
        "spark.scheduler.maxRetainedRemovedDecommissionExecutors": "1000",
        "spark.kubernetes.executor.terminationGracePeriodSeconds": EXECUTOR_GRACE,
        "spark.executor.decommission.killInterval": EXECUTOR_GRACE,
        "spark.executor.decommission.forceKillTimeout": EXECUTOR_GRACE,
        "spark.executor.extraClassPath": f"{JARS_MOUNT}/*",
    }


def decommissioning(props: Mapping[str, str]) -> bool:
    """Whether the job's executors decommission (``--conf spark.decommission.enabled=false``
    turns it off, and then sparkube sets none of it)."""
    return props.get("spark.decommission.enabled", "").strip().lower() == "true"


def _fallback_jars(props: Mapping[str, str]) -> bool:
    """Whether executors need the S3 jars on their JVM's class path (an s3a fallback)."""
    return decommissioning(props) and props.get(FALLBACK_KEY, "").startswith("s3a://")


def spark_properties(spec: JobSpec, config: ClusterConfig, endpoints: Endpoints) -> dict[str, str]:
    r = spec.resources
    props = {
        "spark.master": "k8s://https://kubernetes.default.svc:443",
        "spark.submit.deployMode": "client",
        "spark.app.name": f"sparkube-{spec.job_id}",
        "spark.kubernetes.namespace": SPARK_NAMESPACE,
        "spark.kubernetes.container.image": config.image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": SPARK_SERVICE_ACCOUNT,
        "spark.driver.port": "7078",
        "spark.blockManager.port": "7079",
        "spark.driver.memory": r.driver_memory,
        "spark.executor.instances": str(r.executors),
        "spark.executor.cores": str(r.executor_cores),
        "spark.executor.memory": r.executor_memory,
        "spark.kubernetes.executor.podNamePrefix": spec.job_id,
        f"spark.kubernetes.executor.label.{JOB_LABEL}": spec.job_id,
        f"spark.kubernetes.executor.label.{ROLE_LABEL}": "executor",
        "spark.kubernetes.executor.podTemplateFile": f"{JOB_MOUNT}/executor-template.json",
        "spark.kubernetes.executor.podTemplateContainerName": "executor",
        "spark.kubernetes.executor.deleteOnTermination": "true",
        # The driver's API client gives each call 10 s by default; a burstable control
        # plane out of CPU credits (or a busy node) can take longer, and a refused call
        # at the end of a job fails a job that did its work.
        "spark.kubernetes.driver.requestTimeout": str(API_TIMEOUT_MS),
        "spark.kubernetes.driver.connectionTimeout": str(API_TIMEOUT_MS),
        "spark.kubernetes.allocation.batch.size": str(max(5, r.executors)),
        # fetched from the bucket by the driver pod's init container; the driver serves
        # them to its executors (local files on spark.jars), so executors never download
        "spark.jars": ",".join(
            f"{JARS_MOUNT}/{jar_file_name(jar.coord)}" for jar in SPARK_IMAGE.s3_jars
        ),
        "spark.jars.ivy": "/tmp/.ivy2",
        "spark.hadoop.fs.s3a.endpoint.region": config.region,
        # Credentials only from the nodes' instance profile (instance metadata): no
        # environment, system property or profile file can give a pod other keys.
        "spark.hadoop.fs.s3a.aws.credentials.provider": INSTANCE_PROFILE_PROVIDER,
        **S3A_MAGIC_COMMITTER,
        **{f"spark.executorEnv.{k}": v for k, v in IMDS_ENV.items()},
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": s3a(config.bucket, EVENTS_PREFIX),
        # plain JSON lines (Spark 4 compresses with zstd by default), so the job's facts
        # (sparkube.cost.jobs) are read with Python's own library from any machine
        "spark.eventLog.compress": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.executorEnv.PYSPARK_PYTHON": "python3",
        # Lower-casing follows the JVM's locale: pin it as the local runs do, so the
        # cluster's output is byte for byte the local one.
        "spark.driver.extraJavaOptions": "-Duser.language=en -Duser.country=US",
        "spark.executor.extraJavaOptions": "-Duser.language=en -Duser.country=US",
    }
    asked = spec.conf.get("spark.dynamicAllocation.enabled", "").strip().lower()
    if r.dynamic is not None and "spark.executor.instances" not in spec.conf and asked != "false":
        # Dynamic allocation (no --executors, no executor count in --conf): Spark
        # asks for executors while tasks wait and gives back those idle for a minute,
        # so a job's executors follow its stages and the workers' group follows them.
        # Kubernetes has no external shuffle service: shuffle tracking keeps an executor
        # while it holds shuffle files a later stage may read (so nothing is recomputed;
        # such an executor stays until the job ends or its shuffle is cleaned up).
        # Decommissioning (below) would let dynamic allocation give such executors back
        # too, copying their shuffle files away first; shuffle tracking stays on, so it
        # gives back only executors with nothing to copy, which exit at once, and blocks
        # move (over the network, some to S3) only when a node is drained.
        props.pop("spark.executor.instances")
        props.update(
            {
                "spark.dynamicAllocation.enabled": "true",
                "spark.dynamicAllocation.shuffleTracking.enabled": "true",
                "spark.dynamicAllocation.minExecutors": str(r.dynamic.minimum),
                "spark.dynamicAllocation.initialExecutors": str(r.executors),
                "spark.dynamicAllocation.executorIdleTimeout": "60s",
            }
        )
        if r.dynamic.maximum is not None:
            props["spark.dynamicAllocation.maxExecutors"] = str(r.dynamic.maximum)
    props.update(endpoints.s3a_properties())
    if spec.conf.get("spark.decommission.enabled", "").strip().lower() != "false":
        props.update(decommission_properties(config.bucket))
    if spec.conf.get("spark.sql.sources.partitionOverwriteMode", "").lower() == "dynamic":
        # the magic committer refuses dynamic partition overwrite: Hadoop's own committer
        for key in S3A_MAGIC_COMMITTER:
            props.pop(key)
    props.update(bundles.spark_properties(spec.bundles))
    for key, value in spec.conf.items():
        joined = key in ("spark.files", "spark.archives", "spark.submit.pyFiles")
        if joined and props.get(key):
            props[key] = f"{props[key]},{value}"
        elif key == "spark.executorEnv.PYTHONPATH" and props.get(key):
            props[key] = f"{value}:{props[key]}"  # the user's first, the job's bundles kept
        elif key == "spark.executor.extraClassPath" and props.get(key):
            props[key] = f"{value}:{props[key]}"  # the user's first, the S3 jars kept
        else:
            props[key] = value
    if props.get(FALLBACK_KEY) == "":  # Spark refuses an empty path: no fallback then
        props.pop(FALLBACK_KEY)
    if not _fallback_jars(props) and props.get("spark.executor.extraClassPath") == (
        f"{JARS_MOUNT}/*"
    ):
        props.pop("spark.executor.extraClassPath")  # no S3 jars in the executors then
    # The application's id is the job's: the driver's event log is then
    # spark-events/eventlog_v2_JOB-ID/ (Spark 4's rolling default) or spark-events/JOB-ID,
    # found from the job id alone (KubernetesClusterSchedulerBackend.applicationId
    # returns spark.app.id when set, in client mode too). A job id is a valid Kubernetes
    # label value (Spark labels the executors spark-app-selector=ID) and Spark's event
    # log name keeps it as it is (lower case, no space, dot or colon).
    props["spark.app.id"] = spec.job_id
    return props


RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": SPARK_IMAGE.spark_uid,
    "runAsGroup": SPARK_IMAGE.spark_uid,
    "fsGroup": SPARK_IMAGE.spark_uid,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def executor_template(jars: Json | None = None) -> Json:
    """The executor pods' template. ``jars``: an init container that puts the S3 jars
    into the pod for spark.executor.extraClassPath (a job whose executors decommission to
    an s3a fallback, :func:`decommission_properties`)."""
    container: Json = {"name": "executor", "securityContext": dict(RESTRICTED_CONTAINER)}
    spec: Json = {"securityContext": dict(RESTRICTED_POD), "containers": [container]}
    if jars is not None:
        spec["initContainers"] = [jars]
        spec["volumes"] = [{"name": "jars", "emptyDir": {}}]
        container["volumeMounts"] = [{"name": "jars", "mountPath": JARS_MOUNT, "readOnly": True}]
    metadata = {"labels": dict(MANAGED_BY)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def effective_resources(spec: JobSpec, props: Mapping[str, str]) -> Resources:
    """The job's size as Spark will see it: ``--conf spark.executor.*`` and
    ``spark.driver.memory`` given by the user win over sparkube's defaults, so the pod
    sizes, the records and the progress line follow what the driver really asks for."""
    r = spec.resources
    dynamic: Dynamic | None = None
    try:
        cores = int(props.get("spark.executor.cores", r.executor_cores))
        if props.get("spark.dynamicAllocation.enabled", "").strip().lower() == "true":
            # Spark's defaults: no minimum, no maximum, start with the minimum (or with
            # spark.executor.instances, when that is more).
            low = int(props.get("spark.dynamicAllocation.minExecutors", "0"))
            high = props.get("spark.dynamicAllocation.maxExecutors")
            executors = max(
                low,
                int(props.get("spark.dynamicAllocation.initialExecutors", str(low))),
                int(props.get("spark.executor.instances", "0")),
            )
            dynamic = Dynamic(low, int(high) if high else None)
        else:
            executors = int(props.get("spark.executor.instances", r.executors))
    except ValueError:
        raise InputError(
            "spark.executor.instances, spark.executor.cores and the spark.dynamicAllocation "
            "counts must be whole numbers; fix the --conf value."
        ) from None
    resources = Resources(
        executors,
        cores,
        props.get("spark.executor.memory", r.executor_memory),
        props.get("spark.driver.memory", r.driver_memory),
        dynamic,
    )
    resources.memory_mib(resources.executor_memory)  # validates (exit 2)
    resources.memory_mib(resources.driver_memory)
    return resources


def driver_pod_memory_mib(resources: Resources, props: Mapping[str, str]) -> int:
    """The driver pod's memory: its heap plus Spark's overhead (or the user's
    ``spark.driver.memoryOverhead``), as Spark itself sizes its pods."""
    overhead = props.get("spark.driver.memoryOverhead")
    if overhead:
        return resources.memory_mib(resources.driver_memory) + resources.memory_mib(overhead)
    return resources.pod_memory_mib(resources.driver_memory)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def spark_mib(text: str) -> int:
    """MiB of a Spark size property (``384``, ``2g``, ``1536m``, ``512mb``; a bare
    number is MiB, as Spark reads these properties)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise InputError(f"Memory {text!r} is not like 1g or 1536m; fix the --conf value.")
    scale = {"k": 1 / 1024, "m": 1, "": 1, "g": 1024, "t": 1024**2}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def executor_pod_memory_mib(resources: Resources, props: Mapping[str, str]) -> int:
    """The executor pod's memory request, as Spark 4.1 sizes it (BasicExecutorFeatureStep,
    ResourceProfile.getResourcesForClusterManager): heap + overhead (the user's
    ``spark.executor.memoryOverhead``, else max(factor × heap rounded down,
    ``spark.executor.minMemoryOverhead`` 384 MiB), the factor
    ``spark.executor.memoryOverheadFactor``, else ``spark.kubernetes.memoryOverheadFactor``,
    0.1) + off-heap memory when enabled + ``spark.executor.pyspark.memory`` when Spark
    takes the app for Python: only when ``spark.kubernetes.resource.type`` is python,
    which cluster-mode submission sets and client mode (sparkube's) does not."""
    heap = resources.memory_mib(resources.executor_memory)
    given = props.get("spark.executor.memoryOverhead")
    if given:
        overhead = spark_mib(given)
    else:
        factor = float(
            props.get("spark.executor.memoryOverheadFactor")
            or props.get("spark.kubernetes.memoryOverheadFactor")
            or 0.1
        )
        minimum = spark_mib(props.get("spark.executor.minMemoryOverhead") or str(OVERHEAD_MIB))
        overhead = max(int(factor * heap), minimum)
    off_heap = 0
    if props.get("spark.memory.offHeap.enabled", "").lower() == "true":
        off_heap = spark_mib(props.get("spark.memory.offHeap.size") or "0")
    python = props.get("spark.kubernetes.resource.type") == "python"
    pyspark = spark_mib(props["spark.executor.pyspark.memory"]) if (
        python and props.get("spark.executor.pyspark.memory")
    ) else 0  # fmt: skip
    return heap + overhead + off_heap + pyspark


def _cores(text: str, key: str) -> float:
    try:
        return parse_cpu(text)
    except (ValueError, ArithmeticError):
        raise InputError(f"{key}={text} is not a CPU quantity like 1 or 500m.") from None


def request(cpu: float, memory_mib: int) -> dict[str, Any]:
    return {"cpu": cpu, "memory_bytes": memory_mib * 2**20}


def pod_requests(spec: JobSpec, props: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(driver, executor) requests ``{cpu, memory_bytes}`` of the job's pods: the driver's
    as sparkube builds its pod, each executor's as Spark builds it (cores from
    ``spark.kubernetes.executor.request.cores`` when set, else ``spark.executor.cores``)."""
    size = effective_resources(spec, props)
    driver = request(
        _cores(props.get("spark.driver.cores") or DRIVER_CPU, "spark.driver.cores"),
        driver_pod_memory_mib(size, props),
    )
    cores = props.get("spark.kubernetes.executor.request.cores")
    executor = request(
        _cores(cores, "spark.kubernetes.executor.request.cores")
        if cores
        else float(size.executor_cores),
        executor_pod_memory_mib(size, props),
    )
    return driver, executor


def job_manifests(
    spec: JobSpec,
    config: ClusterConfig,
    endpoints: Endpoints,
    *,
    submitted: str,
    fetch: Sequence[str] = (),
    jar_urls: Sequence[str] = (),
) -> tuple[Json, Json]:
    """The driver's Job and the ConfigMap with its app, properties and executor template.
    ``fetch``: a "URL NAME KIND" line per bundle of the job, for its init container;
    ``jar_urls``: a presigned URL per S3 jar in the cluster's bucket (none: the Maven
    repository only)."""
    props = spark_properties(spec, config, endpoints)
    properties = "".join(f"{k}={_escape_property(v)}\n" for k, v in sorted(props.items()))
    labels = {**MANAGED_BY, JOB_LABEL: spec.job_id}
    size = effective_resources(spec, props)
    annotations = {
        ANNOTATION_PREFIX + "app": spec.app_name,
        ANNOTATION_PREFIX + "kind": spec.kind,
        ANNOTATION_PREFIX + "args": json.dumps(list(spec.args)),
        ANNOTATION_PREFIX + "executors": str(size.executors),
        **(
            {ANNOTATION_PREFIX + "dynamic-executors": size.dynamic.describe()}
            if size.dynamic is not None
            else {}
        ),
        ANNOTATION_PREFIX + "executor-cores": str(size.executor_cores),
        ANNOTATION_PREFIX + "executor-memory": size.executor_memory,
        ANNOTATION_PREFIX + "decommission": "on" if decommissioning(props) else "off",
        ANNOTATION_PREFIX + "submitted": submitted,
        ANNOTATION_PREFIX + "output": spec.output_uri,
    }
    # read with the node's role: no URL to expire, however late an executor starts
    jars = role_jars_container(config, endpoints) if _fallback_jars(props) else None
    configmap: Json = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": spec.job_id, "namespace": SPARK_NAMESPACE, "labels": labels},
        "data": {
            "spark.properties": properties,
            "executor-template.json": json.dumps(executor_template(jars), indent=2),
        },
    }
    if spec.app_file.endswith(".jar"):
        import base64

        configmap["binaryData"] = {spec.app_file: base64.b64encode(spec.app_bytes).decode()}
    else:
        configmap["data"][spec.app_file] = spec.app_bytes.decode("utf-8")
    command = [
        f"{SPARK_IMAGE.spark_home}/bin/spark-submit",
        "--properties-file", f"{JOB_MOUNT}/spark.properties",
        "--conf", "spark.driver.host=$(SPARKUBE_POD_IP)",
        "--conf", "spark.driver.bindAddress=$(SPARKUBE_POD_IP)",
        "--conf", "spark.kubernetes.driver.pod.name=$(SPARKUBE_POD_NAME)",
    ]  # fmt: skip
    if spec.main_class:
        command += ["--class", spec.main_class]
    command += [f"{JOB_MOUNT}/{spec.app_file}", *spec.args]
    driver_mib = driver_pod_memory_mib(size, props)
    driver_cpu = props.get("spark.driver.cores")
    pod_spec: Json = {
        "restartPolicy": "Never",
        "serviceAccountName": SPARK_SERVICE_ACCOUNT,
        "securityContext": dict(RESTRICTED_POD),
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {
                "name": "driver",
                "image": config.image,
                "command": command,
                "env": [
                    {
                        "name": "SPARKUBE_POD_IP",
                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                    },
                    {
                        "name": "SPARKUBE_POD_NAME",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                    },
                    {"name": "SPARKUBE_JOB_ID", "value": spec.job_id},
                    {"name": "SPARKUBE_OUTPUT", "value": spec.output_uri},
                    {"name": "PYSPARK_PYTHON", "value": "python3"},
                    {"name": "HOME", "value": "/tmp"},
                    *({"name": k, "value": v} for k, v in IMDS_ENV.items()),
                ],
                "resources": {
                    "requests": {"cpu": driver_cpu or DRIVER_CPU, "memory": f"{driver_mib}Mi"},
                    "limits": {"memory": f"{driver_mib}Mi"},
                },
                "ports": [
                    {"name": "driver-rpc", "containerPort": 7078},
                    {"name": "blockmanager", "containerPort": 7079},
                    {"name": "spark-ui", "containerPort": 4040},
                ],
                "securityContext": dict(RESTRICTED_CONTAINER),
                "volumeMounts": [
                    {"name": "job", "mountPath": JOB_MOUNT, "readOnly": True},
                    {"name": "jars", "mountPath": JARS_MOUNT, "readOnly": True},
                ],
            }
        ],
        "initContainers": [fetch_jars_container(config.image, endpoints.jars, jar_urls)],
        "volumes": [
            {"name": "job", "configMap": {"name": spec.job_id}},
            {"name": "jars", "emptyDir": {}},
        ],
    }
    if config.spot:
        # A spot interruption ends the job with its driver (Spark never restarts one):
        # drivers run on the group's on-demand workers only; executors anywhere.
        pod_spec["nodeSelector"] = {MARKET_LABEL: ON_DEMAND}
    if spec.bundles:
        _add_bundles(pod_spec, spec, config.image, fetch)
    driver_request, executor_request = pod_requests(spec, props)
    job: Json = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": spec.job_id,
            "namespace": SPARK_NAMESPACE,
            "labels": labels,
            # what the controller must find room for before it starts the job
            "annotations": {
                **annotations,
                admission.ASKS: json.dumps(
                    {
                        "driver": driver_request,
                        "executor": executor_request,
                        "min_executors": size.min_executors,
                        "start_executors": size.executors,
                    },
                    sort_keys=True,
                ),
            },
        },
        "spec": {
            # queued: the cluster's sparkube controller starts it when it fits whole
            "suspend": True,
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {
                # the pod carries the job's annotations too: the watcher reads how many
                # executors the driver should get from the pod it lists anyway
                "metadata": {
                    "labels": {**labels, ROLE_LABEL: "driver"},
                    "annotations": dict(annotations),
                },
                "spec": pod_spec,
            },
        },
    }
    return job, configmap


def _add_bundles(pod_spec: Json, spec: JobSpec, image: str, fetch: Sequence[str]) -> None:
    """The job's files and packages in the driver's working directory: an init container
    fetches them (presigned URLs) into it, and keeps the objects Spark serves to the
    executors."""
    if len(fetch) != len(spec.bundles):
        raise ValueError("one fetch line per bundle")
    mounts = [
        {"name": "work", "mountPath": bundles.WORK_DIR},
        {"name": "fetched", "mountPath": bundles.FETCHED},
    ]
    pod_spec["initContainers"].append(
        {
            "name": "fetch-files",
            "image": image,
            "command": ["python3", "-c", bundles.FETCH_SCRIPT],
            "env": [{"name": "SPARKUBE_BUNDLES", "value": "\n".join(fetch)}],
            "securityContext": dict(RESTRICTED_CONTAINER),
            "volumeMounts": mounts,
        }
    )
    driver = pod_spec["containers"][0]
    driver["workingDir"] = bundles.WORK_DIR
    driver["env"].append({"name": "PYTHONPATH", "value": bundles.python_path(spec.bundles)})
    driver["volumeMounts"] += mounts
    pod_spec["volumes"] += [
        {"name": "work", "emptyDir": {}},
        {"name": "fetched", "emptyDir": {}},
    ]


def _escape_property(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
