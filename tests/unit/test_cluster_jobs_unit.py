"""Pure parts of cluster jobs: sizing, the driver's manifests, the diagnosis rules."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sparkube.controller import admission
from sparkube.errors import InputError
from sparkube.spark import diagnose as dg
from sparkube.spark import jarfetch
from sparkube.spark.cluster import ClusterJobs
from sparkube.spark.config import ClusterConfig, Resources, default_resources
from sparkube.spark.image import SPARK_IMAGE, jar_file_name, maven_path
from sparkube.spark.jars import JARS_MOUNT
from sparkube.spark.podspec import (
    RESTRICTED_CONTAINER,
    S3A_MAGIC_COMMITTER,
    Endpoints,
    JobSpec,
    fetch_jars_container,
    job_manifests,
    spark_properties,
)

GIB = 2**30


def config(cpu: float = 2, memory: int = 4 * GIB, workers: int = 3) -> ClusterConfig:
    return ClusterConfig(
        cluster="c", bucket="b", region="eu-west-1", worker_cpu=cpu, worker_memory=memory,
        workers=workers,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cpu", "memory", "cores", "heap"),
    [
        (2, 4 * GIB, 1, "1g"),
        (4, 16 * GIB, 3, "5888m"),
        (8, 32 * GIB, 7, "11776m"),
        (1, 2 * GIB, 1, "512m"),
    ],
)
def test_default_resources_fit_a_worker(cpu: float, memory: int, cores: int, heap: str) -> None:
    res = default_resources(config(cpu, memory))
    assert (res.executors, res.executor_cores, res.executor_memory) == (3, cores, heap)
    # heap + overhead stays within 40% of the node (plus rounding to 256 MiB)
    assert res.pod_memory_mib(heap) <= max(memory / 2**20 * 0.4, 896)


def test_memory_syntax_is_checked() -> None:
    assert Resources.memory_mib("2g") == 2048
    assert Resources.memory_mib("1536m") == 1536
    with pytest.raises(InputError, match="like 1g"):
        Resources.memory_mib("lots")


def manifests() -> tuple[dict, dict]:  # type: ignore[type-arg]
    spec = JobSpec(
        job_id="wc-20261202-1700-abcd", app_name="wordcount", app_file="wordcount.py",
        app_bytes=b"print('hi')\n", args=("--top", "3", "s3a://b/inputs/x/input.txt"),
        resources=Resources(2, 1, "1g"), kind="wordcount",
        output_uri="s3a://b/jobs/wc-20261202-1700-abcd/output/",
    )  # fmt: skip
    return job_manifests(spec, config(), Endpoints(), submitted="2026-12-02T17:00:00Z")


def test_driver_job_is_restricted_and_valid() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    job, cm = manifests()
    kubernetes_validate.validate(job, "1.36.0", strict=True)
    kubernetes_validate.validate(cm, "1.36.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == SPARK_IMAGE.spark_uid
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (driver,) = pod["containers"]
    assert driver["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert driver["image"] == SPARK_IMAGE.ref
    assert "spark.driver.host=$(SPARKUBE_POD_IP)" in driver["command"]
    assert "spark.kubernetes.driver.pod.name=$(SPARKUBE_POD_NAME)" in driver["command"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
    template = json.loads(cm["data"]["executor-template.json"])
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True


def test_on_a_spot_cluster_drivers_require_on_demand_workers_and_executors_do_not() -> None:
    job, cm = manifests()
    assert "nodeSelector" not in job["spec"]["template"]["spec"]  # one market: anywhere
    spec = JobSpec(
        job_id="wc-20261202-1700-abcd", app_name="wordcount", app_file="wordcount.py",
        app_bytes=b"", args=(), resources=Resources(2, 1, "1g"), kind="wordcount",
        output_uri="s3a://b/jobs/wc-20261202-1700-abcd/output/",
    )  # fmt: skip
    spot = dataclasses.replace(config(), spot=True)
    job, cm = job_manifests(spec, spot, Endpoints(), submitted="2026-12-02T17:00:00Z")
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"sparkube.io/market": "on-demand"}
    template = json.loads(cm["data"]["executor-template.json"])
    assert "nodeSelector" not in template["spec"]
    assert "spark.kubernetes.executor.node.selector" not in cm["data"]["spark.properties"]
    # admission reads the driver's requirement from the Job it is given
    (queued,) = admission.queue_jobs([job], [], now=0)
    assert queued.driver.needs == (("sparkube.io/market", "on-demand"),)


def test_properties_ship_the_lean_s3_jars_and_no_credentials() -> None:
    job, cm = manifests()
    props = dict(line.split("=", 1) for line in cm["data"]["spark.properties"].splitlines() if line)
    # the driver pod's init container fetches the jars once; spark.jars names the local
    # copies, which the driver serves to its executors
    (init,) = job["spec"]["template"]["spec"]["initContainers"]
    fetched = jarfetch.parse(init["env"][0]["value"])
    # without presigned bucket URLs (a bare job_manifests call) only the Maven repository
    assert all(len(urls) == 1 for *_, urls in fetched)
    urls = [urls[0] for *_, urls in fetched]
    assert [(n, size, sha) for n, size, sha, _ in fetched] == [
        (jar_file_name(j.coord), j.size, j.sha256) for j in SPARK_IMAGE.s3_jars
    ]
    assert all(u.startswith("https://repo1.maven.org/maven2/") for u in urls)
    hadoop_aws = maven_path(f"org.apache.hadoop:hadoop-aws:{SPARK_IMAGE.hadoop_version}")
    assert any(u.endswith(hadoop_aws) for u in urls)
    assert "bundle" not in " ".join(urls)
    jars = props["spark.jars"].split(",")
    assert [j.rsplit("/", 1)[1] for j in jars] == [u.rsplit("/", 1)[1] for u in urls]
    assert all(j.startswith(JARS_MOUNT + "/") for j in jars)
    assert init["securityContext"] == RESTRICTED_CONTAINER
    assert props["spark.master"] == "k8s://https://kubernetes.default.svc:443"
    assert props["spark.eventLog.dir"] == "s3a://b/spark-events/"
    text = json.dumps(cm) + json.dumps(job)
    for secret in ("access.key", "secret.key", "AWS_ACCESS_KEY_ID", "session.token"):
        assert secret not in text
    # credentials only from the instance profile, with time for a busy node's metadata
    assert props["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        ".IAMInstanceCredentialsProvider"
    )
    assert props["spark.executorEnv.AWS_METADATA_SERVICE_TIMEOUT"] == "5"
    assert props["spark.kubernetes.driver.requestTimeout"] == "30000"
    assert props["spark.kubernetes.driver.connectionTimeout"] == "30000"
    driver_env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert driver_env["AWS_METADATA_SERVICE_TIMEOUT"] == "5"


def test_pod_endpoints_for_unusual_networks() -> None:
    ep = Endpoints.from_environ(
        {
            "SPARKUBE_POD_S3_ENDPOINT": "http://10.1.1.1:9000",
            "SPARKUBE_JARS_REPOSITORY": "http://r/",
        }
    )
    spec = JobSpec("j", "a", "a.py", b"", (), Resources(1, 1, "1g"))
    props = spark_properties(spec, config(), ep)
    assert props["spark.hadoop.fs.s3a.endpoint"] == "http://10.1.1.1:9000"
    assert props["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    lines = fetch_jars_container("img", ep.jars)["env"][0]["value"]
    assert lines.split()[3].startswith("http://r/org/")


# --------------------------------------------------------------------------- diagnosis


def test_python_exception_line() -> None:
    log = [
        "26/12/02 INFO SparkContext: Running Spark",
        "Traceback (most recent call last):",
        '  File "/opt/sparkube/job/app.py", line 9, in <module>',
        '    raise ValueError("boom")',
        "ValueError: boom",
        "26/12/02 INFO ShutdownHookManager: Shutdown hook called",
    ]
    assert dg.exception_line(log) == "ValueError: boom"
    assert dg.diagnose(driver={}, log_tail=log, exit_code=1) == (
        "The application failed (exit code 1): ValueError: boom"
    )


def test_java_exception_line() -> None:
    log = [
        'Exception in thread "main" java.lang.IllegalStateException: no input',
        "\tat org.example.Main.main(Main.java:3)",
    ]
    assert dg.exception_line(log) == log[0]


def executor(cpu: str, memory: str, *, pending: bool = True) -> dict:  # type: ignore[type-arg]
    return {
        "metadata": {"name": "job-exec-1", "labels": {"spark-role": "executor"}},
        "spec": {"containers": [{"name": "executor",
                                 "resources": {"requests": {"cpu": cpu, "memory": memory},
                                               "limits": {"memory": memory}}}]},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        if pending else {},
    }  # fmt: skip


def test_unschedulable_says_asked_offered_and_flag() -> None:
    nodes = [dg.NodeCapacity("w1", 2, 4 * GIB), dg.NodeCapacity("w2", 2, 8 * GIB)]
    msg = dg.diagnose(driver=None, executors=[executor("8", "9Gi")], nodes=nodes)
    assert msg == (
        "The executor pod asks for 8 CPU and 9Gi but the largest node offers 2 CPU and 8Gi; "
        "lower --executor-cores / --executor-memory, or add workers with sparkube up "
        "--workers N."
    )


def test_oom_names_pod_limit_and_flag() -> None:
    pod = executor("1", "1408Mi", pending=False)
    killed = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    pod["status"] = {"containerStatuses": [{"name": "executor", "state": {}, "lastState": killed}]}
    msg = dg.diagnose(driver=None, executors=[pod])
    assert msg == (
        "The executor pod job-exec-1 was killed for exceeding its memory limit of 1.4Gi; "
        "give it more with --executor-memory."
    )


def test_rbac_from_the_recorded_driver_log() -> None:
    from pathlib import Path

    recorded = Path(__file__).resolve().parents[1] / "data" / "spark_driver_forbidden.txt"
    msg = dg.diagnose(driver={}, log_tail=recorded.read_text().splitlines())
    assert msg.startswith("The Spark driver is not allowed to create its executors")
    assert "system:serviceaccount:spark:spark cannot" in msg


def test_rbac_when_the_watch_is_refused() -> None:
    # as the driver logged it with `watch` on pods taken out of its Role
    log = ["io.fabric8.kubernetes.client.KubernetesClientException: Received 403 on websocket. "
           "Failure executing: GET at: https://kubernetes.default.svc:443/api/v1/namespaces/"
           "spark/pods?allowWatchBookmarks=true&labelSelector=spark-role%3Dexecutor&watch=true. "
           "Message: Forbidden."]  # fmt: skip
    msg = dg.diagnose(driver={}, log_tail=log, exit_code=1)
    assert msg.startswith("The Spark driver is not allowed to create its executors (it cannot "
                          "watch pods)")  # fmt: skip
    assert dg.diagnose(driver={}, log_tail=[log[0].replace("403", "500")]).startswith(
        "The application failed"
    )


def test_missing_s3_input() -> None:
    log = ["pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] "
           "Path does not exist: s3a://bkt/nowhere/data.txt. SQLSTATE: 42K03"]  # fmt: skip
    assert dg.diagnose(driver={}, log_tail=log) == (
        "The input s3a://bkt/nowhere/data.txt does not exist; check the path (s3a://BUCKET/KEY)."
    )


def test_no_credentials_is_not_called_access_denied() -> None:
    # what S3A logs when the instance metadata gave nothing (seen on a busy test node)
    log = [
        "java.nio.file.AccessDeniedException: s3a://bkt/spark-events: "
        "org.apache.hadoop.fs.s3a.auth.NoAuthWithAWSException: No AWS Credentials provided "
        "by IAMInstanceCredentialsProvider : software.amazon.awssdk.core.exception."
        "SdkClientException: Unable to load credentials from any of the providers",
    ]
    sentence = dg.diagnose(driver={}, log_tail=log)
    assert sentence is not None and "no AWS credentials from the instance metadata" in sentence
    denied = ["java.nio.file.AccessDeniedException: s3a://other/x.txt: getFileStatus on "
              "s3a://other/x.txt: AccessDenied (Service: S3, Status Code: 403)"]  # fmt: skip
    assert dg.diagnose(driver={}, log_tail=denied) == (
        "S3 denied access to s3a://other/x.txt; the nodes' instance role reaches only the "
        "cluster's bucket: copy the data there or grant the role access."
    )


def test_driver_memory_conf_sizes_the_driver_pod() -> None:
    """--conf spark.driver.memory raised the heap but the pod kept 1408Mi (issue 16)."""
    spec = JobSpec(
        job_id="job-1", app_name="a.py", app_file="a.py", app_bytes=b"", args=(),
        resources=Resources(2, 1, "1g"),
        conf={"spark.driver.memory": "3g", "spark.executor.instances": "4",
              "spark.driver.cores": "2"},
    )  # fmt: skip
    job, _ = job_manifests(spec, config(), Endpoints(), submitted="2026-12-06T12:00:00Z")
    driver = job["spec"]["template"]["spec"]["containers"][0]
    assert driver["resources"]["limits"]["memory"] == f"{3072 + 384}Mi"
    assert driver["resources"]["requests"] == {"cpu": "2", "memory": f"{3072 + 384}Mi"}
    # the pod tells the watcher how many executors the driver will ask for
    pod_annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert pod_annotations["sparkube.io/executors"] == "4"
    overhead = dataclasses_replace_conf(spec, {"spark.driver.memoryOverhead": "1g"})
    job, _ = job_manifests(overhead, config(), Endpoints(), submitted="x")
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": f"{3072 + 1024}Mi"
    }
    with pytest.raises(InputError, match="whole numbers"):
        job_manifests(
            dataclasses_replace_conf(spec, {"spark.executor.instances": "many"}),
            config(), Endpoints(), submitted="x",
        )  # fmt: skip


def dataclasses_replace_conf(spec: JobSpec, extra: dict[str, str]) -> JobSpec:
    import dataclasses

    return dataclasses.replace(spec, conf={**spec.conf, **extra})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'Message: pods "job-1-exec-1" is forbidden: exceeded quota: small, requested: '
            "limits.memory=1408Mi, used: limits.memory=1408Mi, limited: limits.memory=2Gi.",
            "The cluster refused the executor pods (exceeded quota: small, requested: "
            "limits.memory=1408Mi, used: limits.memory=1408Mi, limited: limits.memory=2Gi); "
            "lower --executors or --executor-memory, or raise the spark namespace's "
            "ResourceQuota.",
        ),
        (
            'Message: pods "job-1-exec-1" is forbidden: violates PodSecurity '
            '"restricted:latest": runAsNonRoot != true.',
            "PodSecurity level must admit them",
        ),
        (
            'Message: pods is forbidden: User "system:serviceaccount:spark:spark" cannot '
            'create resource "pods" in API group "" in the namespace "spark".',
            "not allowed to create its executors (system:serviceaccount:spark:spark cannot "
            "create pods)",
        ),
    ],
)
def test_executor_refusals_say_who_refused_and_what(line: str, expected: str) -> None:
    tail = [
        "26/12/06 12:00:01 WARN ExecutorPodsSnapshotsStoreImpl: Exception when notifying "
        "snapshot subscriber.",
        "io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: POST at: "
        "https://kubernetes.default.svc/api/v1/namespaces/spark/pods. " + line,
        "\tat io.fabric8.kubernetes.client.dsl.internal.OperationSupport.requestFailure",
    ]
    found = dg.executor_refusal(tail)
    assert found is not None and expected in found
    assert dg.executor_refusal(["26/12/06 INFO SparkContext: Running Spark version 4.1.2"]) is None


def test_s3_output_commits_with_the_magic_committer() -> None:
    """DataFrame writes to s3a:// go through spark-hadoop-cloud's commit protocol to the
    S3A magic committer (no copy-and-delete rename); the jar with those classes ships
    with the S3 jars, and a user's --conf still wins."""
    _, cm = manifests()
    props = dict(line.split("=", 1) for line in cm["data"]["spark.properties"].splitlines() if line)
    assert props["spark.sql.sources.commitProtocolClass"] == (
        "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol"
    )
    assert props["spark.sql.parquet.output.committer.class"] == (
        "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter"
    )
    assert props["spark.hadoop.mapreduce.outputcommitter.factory.scheme.s3a"] == (
        "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory"
    )
    assert props["spark.hadoop.fs.s3a.committer.name"] == "magic"
    assert props["spark.hadoop.fs.s3a.committer.magic.enabled"] == "true"
    cloud = f"org.apache.spark:spark-hadoop-cloud_{SPARK_IMAGE.scala_binary_version}:"
    (jar,) = [j for j in SPARK_IMAGE.s3_jars if j.coord.startswith(cloud)]
    assert jar.coord == cloud + SPARK_IMAGE.spark_version
    assert props["spark.jars"].split(",").count(f"{JARS_MOUNT}/{jar_file_name(jar.coord)}") == 1

    spec = JobSpec(
        job_id="j", app_name="a.py", app_file="a.py", app_bytes=b"", args=(),
        resources=Resources(1, 1, "1g"), conf={"spark.hadoop.fs.s3a.committer.name": "file"},
    )  # fmt: skip
    assert (
        spark_properties(spec, config(), Endpoints())["spark.hadoop.fs.s3a.committer.name"]
        == "file"
    )


def test_dynamic_partition_overwrite_keeps_hadoops_committer() -> None:
    """The magic committer refuses dynamic partition overwrite: such a job gets Hadoop's
    own committer instead of failing at its first write."""
    spec = JobSpec(
        job_id="job-1", app_name="a.py", app_file="a.py", app_bytes=b"", args=(),
        resources=Resources(2, 1, "1g"),
    )  # fmt: skip
    props = spark_properties(spec, config(), Endpoints())
    assert props["spark.hadoop.fs.s3a.committer.name"] == "magic"
    overwrite = {"spark.sql.sources.partitionOverwriteMode": "DYNAMIC"}
    props = spark_properties(dataclasses_replace_conf(spec, overwrite), config(), Endpoints())
    assert not set(S3A_MAGIC_COMMITTER) & set(props)


@pytest.mark.parametrize(
    ("text", "cpu", "memory"),
    [
        ("2", 2.0, 2),
        ("500m", 0.5, 1),  # half a byte rounds up, as the API server does
        ("12345678n", 0.012345678, 1),
        ("1234u", 0.001234, 1),
        ("966367641600m", 966367641.6, 966367642),  # as the API server wrote it (issue 17)
        ("1.5Gi", 1.5 * 2**30, 3 * 2**29),
        ("1408Mi", 1408 * 2**20, 1408 * 2**20),
        ("1e3", 1000.0, 1000),
        ("4G", 4e9, 4 * 10**9),
    ],
)
def test_kubernetes_quantities(text: str, cpu: float, memory: int) -> None:
    assert dg.parse_cpu(text) == pytest.approx(cpu)
    assert dg.parse_memory(text) == memory


class _Nodes(ClusterJobs):
    """ClusterJobs whose API answers are given (our own boundary: no API server here;
    the same rule runs against real nodes in tests/bed/test_4_queue.py)."""

    def __init__(self, nodes: list[dg.NodeCapacity]) -> None:
        super().__init__(None, lambda _region: None)
        self._nodes = nodes

    def node_capacity(self) -> list[dg.NodeCapacity]:
        return self._nodes

    def events(self, pod_names: Any) -> list[Any]:
        return []


def test_an_unschedulable_pod_that_fits_a_worker_waits_one_that_fits_none_is_stuck() -> None:
    api = _Nodes([dg.NodeCapacity("w1", 2, 4 * GIB), dg.NodeCapacity("w2", 2, 8 * GIB)])
    since: dict[str, float] = {"job-exec-1": 0.0}  # unschedulable for long enough
    assert api.stuck(None, [executor("1", "6Gi")], since) is None  # room may come
    assert api.stuck(None, [executor("8", "9Gi")], {"job-exec-1": 0.0}) == (
        "The executor pod asks for 8 CPU and 9Gi but the largest node offers 2 CPU and 8Gi; "
        "lower --executor-cores / --executor-memory, or add workers with sparkube up "
        "--workers N."
    )


def test_a_queued_job_says_its_place_and_what_it_waits_for() -> None:
    from sparkube.cli.jobs import _progress_line
    from sparkube.spark.watch import Progress, queue_message

    assert queue_message(1, "CPU (2.5 asked, 1.4 free)") == (
        "1st in line, waits for CPU (2.5 asked, 1.4 free)"
    )
    assert [queue_message(n, "x").split(" ")[0] for n in (2, 3, 4, 11, 12, 21, 113)] == [
        "2nd", "3rd", "4th", "11th", "12th", "21st", "113th",
    ]  # fmt: skip
    assert queue_message(0, "") == "waits for the cluster's controller to look at it"
    line = _progress_line(Progress("Queued", 0, 0, 0, 75.0, position=2, waits_for="job j1"))
    assert line == "Queued (2nd in line, waits for job j1) · 1:15"


def test_default_job_fits_what_one_small_worker_has_for_jobs() -> None:
    """t3.medium: 2 CPU and about 3.7Gi allocatable; with the History Server, CoreDNS
    and metrics-server on the only worker about 1.6 CPU and 2.4Gi are left for jobs. The
    size from allocatable alone (1g driver + 1g executor: 2.75Gi) could never start."""
    from sparkube.controller import admission

    config = ClusterConfig(cluster="c", bucket="b", region="r", worker_cpu=2.0,
                           worker_memory=3790 * 2**20, workers=1)  # fmt: skip
    assert default_resources(config) == Resources(1, 1, "1g", "1g")
    room = (1.6, 2457 * 2**20)
    res = default_resources(config, [room])
    assert res == Resources(1, 1, "512m", "1g")
    pods = [admission.Ask(0.5, res.pod_memory_mib("1g") * 2**20),
            admission.Ask(1.0, res.pod_memory_mib("512m") * 2**20)]  # fmt: skip
    worker = admission.Room("w", 2.0, 3790 * 2**20, *room)
    assert admission.never_fits(pods, ["driver", "executor"], [worker]) is None


def test_default_job_leaves_out_a_worker_too_small_and_shrinks_the_driver_last() -> None:
    config = ClusterConfig(cluster="c", bucket="b", region="r", worker_cpu=4.0,
                           worker_memory=16 * GIB, workers=3)  # fmt: skip
    roomy = (3.8, 14 * GIB)
    assert default_resources(config, [roomy, roomy, roomy]) == Resources(3, 3, "5888m", "1g")
    # a worker with 0.5 CPU left for jobs gets no executor
    assert default_resources(config, [roomy, (0.5, 14 * GIB), roomy]) == Resources(
        2, 3, "5888m", "1g"
    )
    # a single worker with 1.5Gi for jobs: 512m driver and executor
    assert default_resources(config, [(3.8, 1800 * 2**20)]) == Resources(1, 3, "512m", "512m")


class _Rooms:
    """What resources_for reads of the cluster: the workers' room for jobs."""

    def __init__(self, *rooms: tuple[float, int]) -> None:
        from sparkube.controller import admission

        self.rooms = [admission.Room(f"w{i}", c, m, c, m) for i, (c, m) in enumerate(rooms)]

    def job_room(self) -> list[Any]:
        return self.rooms


def test_without_executors_a_cluster_job_is_dynamic_up_to_what_the_group_may_hold() -> None:
    """Two workers of 4 CPU with room for one 3-core executor each (the driver beside
    one): it starts with 2 and may have 4 when the group grows to its maximum of 4."""
    import dataclasses

    from sparkube.spark.config import Dynamic
    from sparkube.spark.jobs import resources_for

    cfg = ClusterConfig(cluster="c", bucket="b", region="r", worker_cpu=4.0,
                        worker_memory=16 * GIB, workers=2, max_workers=4)  # fmt: skip
    api: Any = _Rooms((3.8, 14 * GIB), (3.8, 14 * GIB))
    res = resources_for(cfg, api=api)
    assert res == Resources(2, 3, "5888m", "1g", Dynamic(1, 4))
    assert res.min_executors == 1
    assert res.describe() == "1-4 executors × 3 cores, 5888m, dynamic from 2"
    # smaller executors: as many as the workers hold (1-core executors: 3 beside the
    # driver, 3 on the other, 3 on each of the two the group may add)
    small = resources_for(cfg, api=api, executor_cores=1, executor_memory="1g")
    assert small.dynamic == Dynamic(1, 12), small
    # a fixed count stays fixed
    fixed = resources_for(cfg, api=api, executors=3)
    assert fixed.dynamic is None and fixed.min_executors == 3
    assert fixed.describe() == "3 executors × 3 cores, 5888m"
    # the cluster's maximum is its size: the range ends where it starts
    same = resources_for(dataclasses.replace(cfg, max_workers=2), api=api)
    assert same.dynamic == Dynamic(1, 2)


def test_dynamic_allocation_in_the_properties_admission_and_record() -> None:
    from sparkube.controller import admission
    from sparkube.spark.config import Dynamic

    res = Resources(2, 1, "1g", dynamic=Dynamic(1, 5))
    spec = JobSpec(job_id="job-1", app_name="a.py", app_file="a.py", app_bytes=b"", args=(),
                   resources=res)  # fmt: skip
    props = spark_properties(spec, config(), Endpoints())
    assert "spark.executor.instances" not in props
    assert {k: v for k, v in props.items() if k.startswith("spark.dynamicAllocation.")} == {
        "spark.dynamicAllocation.enabled": "true",
        "spark.dynamicAllocation.shuffleTracking.enabled": "true",
        "spark.dynamicAllocation.minExecutors": "1",
        "spark.dynamicAllocation.initialExecutors": "2",
        "spark.dynamicAllocation.maxExecutors": "5",
        "spark.dynamicAllocation.executorIdleTimeout": "60s",
    }
    job, configmap = job_manifests(spec, config(), Endpoints(), submitted="x")
    asks = json.loads(job["metadata"]["annotations"][admission.ASKS])
    assert asks["min_executors"] == 1  # admission: the driver and one executor
    assert asks["start_executors"] == 2  # the queue waits for these while it settles
    pod_annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert pod_annotations["sparkube.io/dynamic-executors"] == "1-5"
    assert "spark.dynamicAllocation.enabled=true" in configmap["data"]["spark.properties"]
    # an executor count in --conf means a fixed count, as --executors does
    fixed = dataclasses_replace_conf(spec, {"spark.executor.instances": "3"})
    props = spark_properties(fixed, config(), Endpoints())
    assert props["spark.executor.instances"] == "3"
    assert "spark.dynamicAllocation.enabled" not in props
    job, _ = job_manifests(fixed, config(), Endpoints(), submitted="x")
    assert json.loads(job["metadata"]["annotations"][admission.ASKS])["min_executors"] == 3
    # so does turning it off (the starting count is kept as the fixed one)
    off = dataclasses_replace_conf(spec, {"spark.dynamicAllocation.enabled": "false"})
    props = spark_properties(off, config(), Endpoints())
    assert props["spark.executor.instances"] == "2"
    assert props["spark.dynamicAllocation.enabled"] == "false"
    # the user's own range wins, and admission follows its minimum
    own = dataclasses_replace_conf(
        spec,
        {"spark.dynamicAllocation.minExecutors": "2", "spark.dynamicAllocation.maxExecutors": "9"},
    )
    job, _ = job_manifests(own, config(), Endpoints(), submitted="x")
    assert json.loads(job["metadata"]["annotations"][admission.ASKS])["min_executors"] == 2
    assert (
        job["spec"]["template"]["metadata"]["annotations"]["sparkube.io/dynamic-executors"] == "2-9"
    )


def test_the_progress_line_of_a_dynamic_job_shows_its_range() -> None:
    from sparkube.cli.jobs import _progress_line
    from sparkube.spark.watch import Progress

    line = _progress_line(Progress("Running", 3, 1, 2, 61.0, dynamic="1-4"))
    assert line == "driver Running · 3 executors (dynamic 1-4) (1 pending) · 1:01"
    assert _progress_line(Progress("Running", 1, 0, 2, 5.0)) == (
        "driver Running · 1/2 executors · 0:05"
    )


#: Every property sparkube sets for executor decommissioning (podspec.decommission_properties).
DECOMMISSION = {
    "spark.decommission.enabled": "true",
    "spark.storage.decommission.enabled": "true",
    "spark.storage.decommission.shuffleBlocks.enabled": "true",
    "spark.storage.decommission.rddBlocks.enabled": "true",
    "spark.storage.decommission.fallbackStorage.path": "s3a://b/decommission/",
    "spark.storage.decommission.replicationReattemptInterval": "10s",
    "spark.stage.ignoreDecommissionFetchFailure": "true",
    "spark.scheduler.maxRetainedRemovedDecommissionExecutors": "1000",
    "spark.kubernetes.executor.terminationGracePeriodSeconds": "100s",
    "spark.executor.decommission.killInterval": "100s",
    "spark.executor.decommission.forceKillTimeout": "100s",
    "spark.executor.extraClassPath": f"{JARS_MOUNT}/*",
}


def _decommission_keys(props: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in props.items() if k in DECOMMISSION}


def _dynamic_spec(**conf: str) -> JobSpec:
    from sparkube.spark.config import Dynamic

    return JobSpec(job_id="job-1", app_name="a.py", app_file="a.py", app_bytes=b"", args=(),
                   resources=Resources(2, 1, "1g", dynamic=Dynamic(1, 5)), conf=conf)  # fmt: skip


def test_cluster_jobs_decommission_their_executors_to_the_bucket_by_default() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    spec = _dynamic_spec()
    props = spark_properties(spec, config(), Endpoints())
    assert _decommission_keys(props) == DECOMMISSION
    # the fallback is in the cluster's bucket (Spark adds the job id under it), where the
    # bucket's lifecycle rule expires it
    from sparkube.aws.storage import DECOMMISSION_RULE

    path = props["spark.storage.decommission.fallbackStorage.path"]
    assert path == f"s3a://{config().bucket}/{DECOMMISSION_RULE['Filter']['Prefix']}"
    assert path.endswith("/")  # Spark refuses a path without its separator
    # dynamic allocation keeps shuffle tracking: it gives back only executors with no
    # shuffle files, so blocks move when a node is drained, not at every idle minute
    assert props["spark.dynamicAllocation.shuffleTracking.enabled"] == "true"

    job, configmap = job_manifests(spec, config(), Endpoints(), submitted="x")
    lines = configmap["data"]["spark.properties"].splitlines()
    # the executors' grace period: Spark 4.1 writes it into every executor pod it makes
    assert "spark.kubernetes.executor.terminationGracePeriodSeconds=100s" in lines
    assert "spark.decommission.enabled=true" in lines
    # the executors get the S3 jars on their JVM's class path, from the bucket with the
    # node's role (the decommissioning block manager opens s3a outside any task)
    template = json.loads(configmap["data"]["executor-template.json"])
    kubernetes_validate.validate(template, "1.36.0", strict=True)
    (init,) = template["spec"]["initContainers"]
    assert init["name"] == "fetch-s3-jars"
    assert init["securityContext"] == RESTRICTED_CONTAINER
    fetched = jarfetch.parse(next(e["value"] for e in init["env"] if e["name"] == "SPARKUBE_JARS"))
    assert [n for n, *_ in fetched] == [jar_file_name(j.coord) for j in SPARK_IMAGE.s3_jars]
    assert all(urls[0].startswith("s3://b/jars/") for *_, urls in fetched)
    assert template["spec"]["volumes"] == [{"name": "jars", "emptyDir": {}}]
    (executor,) = template["spec"]["containers"]
    assert executor["volumeMounts"] == [{"name": "jars", "mountPath": JARS_MOUNT, "readOnly": True}]
    # and the job says so, for `jobs`
    assert job["metadata"]["annotations"]["sparkube.io/decommission"] == "on"
    assert job["spec"]["template"]["metadata"]["annotations"]["sparkube.io/decommission"] == "on"


@pytest.mark.parametrize("off", ["false", "False", " false "])
def test_the_users_conf_turns_decommissioning_off_whole(off: str) -> None:
    spec = _dynamic_spec(**{"spark.decommission.enabled": off})
    props = spark_properties(spec, config(), Endpoints())
    assert _decommission_keys(props) == {"spark.decommission.enabled": off}
    assert not any("decommission" in k.lower() for k in props if k != "spark.decommission.enabled")
    job, configmap = job_manifests(spec, config(), Endpoints(), submitted="x")
    template = json.loads(configmap["data"]["executor-template.json"])
    assert "initContainers" not in template["spec"] and "volumes" not in template["spec"]
    assert "volumeMounts" not in template["spec"]["containers"][0]
    assert job["metadata"]["annotations"]["sparkube.io/decommission"] == "off"


def test_the_users_conf_wins_for_each_decommission_setting() -> None:
    own = _dynamic_spec(**{
        "spark.kubernetes.executor.terminationGracePeriodSeconds": "60s",
        "spark.executor.extraClassPath": "/opt/mine/*",
        "spark.storage.decommission.fallbackStorage.path": "s3a://theirs/spill/",
    })  # fmt: skip
    props = spark_properties(own, config(), Endpoints())
    assert props["spark.kubernetes.executor.terminationGracePeriodSeconds"] == "60s"
    assert props["spark.storage.decommission.fallbackStorage.path"] == "s3a://theirs/spill/"
    # the user's class path first, the S3 jars kept (their fallback is s3a too)
    assert props["spark.executor.extraClassPath"] == f"/opt/mine/*:{JARS_MOUNT}/*"
    _, configmap = job_manifests(own, config(), Endpoints(), submitted="x")
    assert "initContainers" in json.loads(configmap["data"]["executor-template.json"])["spec"]

    # an empty fallback path (which Spark would refuse) means none: blocks go to other
    # executors only, and executors need no S3 jars of their own
    none = _dynamic_spec(**{"spark.storage.decommission.fallbackStorage.path": ""})
    props = spark_properties(none, config(), Endpoints())
    assert "spark.storage.decommission.fallbackStorage.path" not in props
    assert "spark.executor.extraClassPath" not in props
    assert props["spark.decommission.enabled"] == "true"
    job, configmap = job_manifests(none, config(), Endpoints(), submitted="x")
    assert "initContainers" not in json.loads(configmap["data"]["executor-template.json"])["spec"]
    assert job["metadata"]["annotations"]["sparkube.io/decommission"] == "on"


def test_a_job_record_says_whether_it_decommissioned() -> None:
    from sparkube.spark.records import parse_record

    base = {"job_id": "j", "app": "a.py", "kind": "submit", "state": "Succeeded",
            "submitted": "2026-12-02T17:00:00Z"}  # fmt: skip
    rec = parse_record({**base, "decommission": "on"})
    assert rec is not None and rec.decommission == "on"
    assert rec.to_json()["decommission"] == "on"
    old = parse_record(base)  # written before sparkube kept it
    assert old is not None and old.decommission == ""
