"""Real Spark on the process nodes: drivers and executors run, talk, read S3.

spark-submit (of the same Spark version as the image, from the image's local layer)
submits in cluster mode from outside the cluster, with the RBAC sparkube ships. Slow
(JVMs on 2 cores): the tests share the session's ``process_cluster``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkube.spark.image import SPARK_IMAGE
from sparkube.spark.podspec import API_TIMEOUT_MS, RESTRICTED_CONTAINER, RESTRICTED_POD
from sparkube.spark.rbac import SPARK_NAMESPACE, render_spark_rbac
from tests.fixtures.procnodes import ProcessCluster, spark_layer_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data"
DRIVER_FORBIDDEN = DATA / "spark_driver_forbidden.txt"
JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"


@pytest.fixture
def spark_ns(process_cluster: ProcessCluster) -> Iterator[ProcessCluster]:
    """The spark namespace with sparkube's RBAC, emptied after the test."""
    yield process_cluster
    process_cluster.delete_namespace(SPARK_NAMESPACE, wait=90)


def apply_rbac(pc: ProcessCluster, with_binding: bool = True) -> None:
    docs = render_spark_rbac()
    pc.kube.kubectl("apply", "--server-side", "-f", "-", input=docs)
    if not with_binding:
        pc.kube.kubectl("delete", "rolebinding", "-n", SPARK_NAMESPACE, "--all")
    pc.kube.wait_for(
        "service account spark/spark",
        lambda: pc.kube.exists(f"/api/v1/namespaces/{SPARK_NAMESPACE}/serviceaccounts/spark"),
    )


def submitter_token(pc: ProcessCluster) -> str:
    """A token of an operator-like identity (cluster-admin) for the submission itself, so
    that what the driver may do depends only on the spark service account's RBAC. (The
    admin client certificate is not usable: fabric8 cannot read PKCS#8 EC keys.)"""
    sa = "/api/v1/namespaces/default/serviceaccounts/test-submitter"
    if not pc.kube.exists(sa):
        pc.kube.create_service_account("default", "test-submitter")
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "test-submitter"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "test-submitter",
                          "namespace": "default"}],
        }  # fmt: skip
        pc.kube.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
    return pc.kube.token_for("default", "test-submitter")


def spark_submit(
    pc: ProcessCluster,
    tmp_path: Path,
    name: str,
    app: list[str],
    conf: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    layer = spark_layer_or_skip()
    spark_home = layer / "opt" / "spark"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    token_file = tmp_path / "submitter.token"
    token_file.write_text(submitter_token(pc))
    settings = {
        "spark.kubernetes.namespace": SPARK_NAMESPACE,
        "spark.kubernetes.container.image": SPARK_IMAGE.ref,
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        "spark.kubernetes.authenticate.submission.caCertFile": str(pc.kube.ca_file),
        "spark.kubernetes.authenticate.submission.oauthTokenFile": str(token_file),
        "spark.kubernetes.submission.waitAppCompletion": "true",
        "spark.kubernetes.report.interval": "2s",
        "spark.driver.memory": "512m",
        "spark.executor.memory": "512m",
        "spark.kubernetes.driver.request.cores": "500m",
        "spark.kubernetes.executor.request.cores": "500m",
        # as sparkube's own jobs: the driver's API calls get 30 s on a busy machine
        "spark.kubernetes.driver.requestTimeout": str(API_TIMEOUT_MS),
        "spark.kubernetes.driver.connectionTimeout": str(API_TIMEOUT_MS),
        **(conf or {}),
    }
    # The spark namespace enforces PodSecurity "restricted": both pods get sparkube's
    # security contexts through pod templates (a driver template of the test is kept).
    for role in ("driver", "executor"):
        key = f"spark.kubernetes.{role}.podTemplateFile"
        template = (
            json.loads(Path(settings[key]).read_text())
            if key in settings
            else {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": role}]}}
        )
        template["spec"]["securityContext"] = dict(RESTRICTED_POD)
        for container in template["spec"]["containers"]:
            container["securityContext"] = dict(RESTRICTED_CONTAINER)
        path = tmp_path / f"{role}-restricted.json"
        path.write_text(json.dumps(template))
        settings[key] = str(path)
        settings[f"spark.kubernetes.{role}.podTemplateContainerName"] = role
    cmd = [
        str(spark_home / "bin" / "spark-submit"),
        "--master", f"k8s://{pc.kube.server}",
        "--deploy-mode", "cluster",
        "--name", name,
    ]  # fmt: skip
    for key, value in settings.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += app
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBECONFIG", "SPARK_", "PYSPARK_"))
    }
    env.update(
        HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", JAVA_HOME=JAVA_HOME, SPARK_HOME=str(spark_home)
    )
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def driver_pod(
    pc: ProcessCluster, app_name: str, submitted: subprocess.CompletedProcess[str]
) -> dict[str, Any]:
    pods = pc.kube.get(
        f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods?labelSelector=spark-role%3Ddriver"
    )["items"]
    found = [p for p in pods if p["metadata"]["name"].startswith(app_name)]
    assert len(found) == 1, (submitted.stdout + submitted.stderr)[-5000:]
    return dict(found[0])


def executor_pods(pc: ProcessCluster) -> list[dict[str, Any]]:
    return list(
        pc.kube.get(
            f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods?labelSelector=spark-role%3Dexecutor"
        )["items"]
    )


def test_spark_pi_cluster_mode_with_two_executors(spark_ns: ProcessCluster, tmp_path: Path) -> None:
    pc = spark_ns
    apply_rbac(pc)
    submitted = spark_submit(
        pc,
        tmp_path,
        "spark-pi",
        [
            "--class",
            "org.apache.spark.examples.SparkPi",
            f"local://{SPARK_IMAGE.examples_jar}",
            "20",
        ],
        {
            "spark.executor.instances": "2",
            # Both executors must be there before the job starts: by default the driver
            # waits 30 s for them, then runs on those it has (a job this small may finish
            # on one, and a slow second JVM on a loaded machine would make it look lost).
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            "spark.scheduler.maxRegisteredResourcesWaitingTime": "240s",
        },
    )
    output = submitted.stdout + submitted.stderr
    driver = driver_pod(pc, "spark-pi", submitted)
    log = pc.logs(SPARK_NAMESPACE, driver["metadata"]["name"])
    assert driver["status"]["phase"] == "Succeeded", log[-5000:] + output[-3000:]
    state = driver["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 0
    assert "Pi is roughly 3.1" in log
    # two executors registered with the driver through its service name
    registered = re.findall(r"Registered executor .*? with ID (\d+)", log)
    about_executors = [line for line in log.splitlines() if "xecutor" in line]
    assert sorted(set(registered)) == ["1", "2"], "\n".join(about_executors[-60:])
    assert driver["spec"]["nodeName"] in pc.workers
    # the executors were created by the driver (with its own token) and are gone now
    pc.kube.wait_for("executor pods gone", lambda: not executor_pods(pc), timeout=60)


def test_driver_without_role_binding_fails_in_the_cluster(
    spark_ns: ProcessCluster, tmp_path: Path
) -> None:
    """The seed's failure, reproduced: the driver runs, cannot create executors."""
    pc = spark_ns
    apply_rbac(pc, with_binding=False)
    submitted = spark_submit(
        pc,
        tmp_path,
        "no-rbac",
        [
            "--class",
            "org.apache.spark.examples.SparkPi",
            f"local://{SPARK_IMAGE.examples_jar}",
            "2",
        ],
        {"spark.executor.instances": "1"},
    )
    driver = driver_pod(pc, "no-rbac", submitted)
    log = pc.logs(SPARK_NAMESPACE, driver["metadata"]["name"])
    assert driver["status"]["phase"] == "Failed", log[-3000:]
    assert driver["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] != 0
    assert "External scheduler cannot be instantiated" in log
    assert 'User "system:serviceaccount:spark:spark" cannot' in log
    if os.environ.get("SPARKUBE_UPDATE_TEST_DATA") == "1" or not DRIVER_FORBIDDEN.exists():
        DRIVER_FORBIDDEN.write_text(log)
    assert "External scheduler cannot be instantiated" in DRIVER_FORBIDDEN.read_text()
    assert not executor_pods(pc)


def test_pyspark_reads_and_writes_s3_with_instance_metadata_credentials(
    spark_ns: ProcessCluster, tmp_path: Path, moto_url: str
) -> None:
    import boto3

    pc = spark_ns
    apply_rbac(pc)
    bucket = f"sparkube-test-{secrets.token_hex(4)}"
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/words.txt", Body=b"b a c a b a\n" * 50)
    app = textwrap.dedent(
        """
        import sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        lines = spark.sparkContext.textFile(sys.argv[1])
        counts = lines.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
        spark.createDataFrame(counts, "word string, n long").coalesce(1).write.csv(sys.argv[2])
        print("wrote", sys.argv[2])
        """
    )
    app_cm = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s3-app"},
        "data": {"app.py": app},
    }  # fmt: skip
    pc.create(SPARK_NAMESPACE, app_cm)
    template = tmp_path / "driver-template.json"
    template.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "spec": {
            "containers": [{"name": "driver", "volumeMounts": [
                {"name": "app", "mountPath": "/opt/sparkube/app", "readOnly": True}]}],
            "volumes": [{"name": "app", "configMap": {"name": "s3-app"}}],
        },
    }))  # fmt: skip
    jars = ",".join(f"{pc.maven_url}/{path}" for path in s3_jar_paths())
    conf = {
        "spark.executor.instances": "1",
        "spark.jars": jars,
        "spark.hadoop.fs.s3a.endpoint": pc.s3_endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        # Spark's volume confs have no configMap type: the app comes in a pod template
        "spark.kubernetes.driver.podTemplateFile": str(template),
        "spark.kubernetes.driver.podTemplateContainerName": "driver",
    }
    submitted = spark_submit(
        pc,
        tmp_path,
        "s3-job",
        ["local:///opt/sparkube/app/app.py", f"s3a://{bucket}/in/", f"s3a://{bucket}/out"],
        conf,
    )
    driver = driver_pod(pc, "s3-job", submitted)
    log = pc.logs(SPARK_NAMESPACE, driver["metadata"]["name"])
    assert driver["status"]["phase"] == "Succeeded", log[-6000:]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]]
    part = next(k for k in keys if k.rsplit("/", 1)[-1].startswith("part-"))
    body = s3.get_object(Bucket=bucket, Key=part)["Body"].read().decode()
    assert sorted(body.split()) == ["a,150", "b,100", "c,50"]
    # no keys anywhere in the pod specs: the credentials came from instance metadata
    spec_text = str(driver["spec"])
    assert "AWS_ACCESS_KEY_ID" not in spec_text and "testing" not in spec_text


def s3_jar_paths() -> list[str]:
    from sparkube.spark.image import maven_path

    return [maven_path(jar.coord) for jar in SPARK_IMAGE.s3_jars]
