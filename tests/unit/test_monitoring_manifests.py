"""The monitoring addons: strict-valid, pinned, read-only, never exposed."""

from __future__ import annotations

import re

import pytest
import yaml

from sparkube.monitoring import addons
from sparkube.spark.config import ClusterConfig
from sparkube.spark.image import SPARK_IMAGE, maven_url
from sparkube.spark.jars import bucket_key
from sparkube.spark.podspec import Endpoints

CONFIG = ClusterConfig(
    cluster="c", bucket="sparkube-c-eu-west-1-abcd1234", region="eu-west-1", workers=3,
    control_plane_usd_per_hour=0.0456, worker_usd_per_hour=0.0456,
)  # fmt: skip


def docs() -> list[dict]:  # type: ignore[type-arg]
    out = []
    for text in addons.all_documents(CONFIG, Endpoints()).values():
        out += [d for d in yaml.safe_load_all(text) if d]
    return out


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0", "1.37.0"])
def test_validates_against_the_kubernetes_schema(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in docs():
        kubernetes_validate.validate(doc, version, strict=True)


def test_images_pinned_nothing_exposed() -> None:
    text = "\n".join(addons.all_documents(CONFIG, Endpoints()).values())
    images = set(re.findall(r"image: (\S+)", text))
    assert images == {
        f"registry.k8s.io/metrics-server/metrics-server:{addons.METRICS_SERVER_VERSION}",
        f"rchakode/kube-opex-analytics:{addons.OPEX_VERSION}",
        SPARK_IMAGE.ref,
    }
    assert all(":latest" not in i for i in images)
    for doc in docs():
        if doc["kind"] == "Service":
            assert doc["spec"]["type"] == "ClusterIP"
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            assert not pod.get("hostNetwork")
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                assert all("hostPort" not in p for p in c.get("ports", []))
                assert c["securityContext"]["allowPrivilegeEscalation"] is False
                assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert pod["securityContext"]["runAsNonRoot"] is True
    ms = next(
        d for d in docs() if d["metadata"]["name"] == "metrics-server" and d["kind"] == "Deployment"
    )
    args = ms["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--kubelet-insecure-tls" not in args
    assert "--kubelet-certificate-authority=/etc/cluster-ca/ca.crt" in args


def test_monitoring_rbac_is_read_only() -> None:
    read = {"get", "list", "watch"}
    for doc in docs():
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                assert set(rule["verbs"]) <= read, (doc["metadata"]["name"], rule)
    opex = next(d for d in docs() if d["metadata"]["name"] == "sparkube:kube-opex-analytics")
    assert opex["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces", "nodes", "pods"], "verbs": ["list"]},
        {"apiGroups": ["metrics.k8s.io"], "resources": ["nodes", "pods"], "verbs": ["list"]},
    ]  # fmt: skip


def test_opex_charges_back_the_cluster_price() -> None:
    dep = next(d for d in docs() if d["kind"] == "Deployment" and d["metadata"]["name"]
               == "kube-opex-analytics")  # fmt: skip
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KOA_COST_MODEL"] == "CHARGE_BACK"
    assert env["KOA_BILLING_HOURLY_RATE"] == f"{0.0456 * 4:.4f}"
    assert dep["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_history_server_reads_the_bucket_with_the_lean_jars() -> None:
    dep = next(d for d in docs() if d["metadata"]["name"] == "spark-history"
               and d["kind"] == "Deployment")  # fmt: skip
    pod = dep["spec"]["template"]["spec"]
    opts = pod["containers"][0]["env"][1]["value"]
    assert f"-Dspark.history.fs.logDirectory=s3a://{CONFIG.bucket}/spark-events/" in opts
    lines = pod["initContainers"][0]["env"][0]["value"].splitlines()
    assert pod["initContainers"][0]["volumeMounts"][0]["mountPath"] == "/opt/sparkube/jars"
    assert len(lines) == len(SPARK_IMAGE.s3_jars)
    # a long-lived Deployment: the bucket with the instance role (no presigned URL to
    # expire), then the Maven repository; checked
    assert [line.split()[2:] for line in lines] == [
        [j.sha256, f"s3://{CONFIG.bucket}/{bucket_key(j)}", maven_url(j.coord)]
        for j in SPARK_IMAGE.s3_jars
    ]
    env = {e["name"]: e["value"] for e in pod["initContainers"][0]["env"]}
    assert env["SPARKUBE_S3_REGION"] == CONFIG.region
    # no keys: no AWS_ variable in any container, none named anywhere in the spec (the
    # fetch program's text mentions only the metadata endpoint's variable)
    assert not [e for c in pod["initContainers"] + pod["containers"] for e in c.get("env", [])
                if e["name"].startswith("AWS_")]  # fmt: skip
    dump = yaml.safe_dump(dep)
    assert "AWS_ACCESS_KEY" not in dump and "AWS_SECRET" not in dump
    assert "AWS_" not in dump.replace("AWS_EC2_METADATA_SERVICE_ENDPOINT", "")
