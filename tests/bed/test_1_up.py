"""``sparkube up`` against moto, in one go, on real nodes (tests/fixtures/bedcluster.py):
each instance it launches boots on the bed as a machine at the instance's private IP,
reached at its public IP as through EC2's internet gateway, with the key pair's key and
the user data ``up`` gave EC2; ``up`` runs every phase over SSH to the public IPs and
saves a kubeconfig for the control plane's public IP, as on AWS.

The nodes run containerd 2.x from containerd's release (``SPARKUBE_CONTAINERD=release``,
what ``auto`` picks from Kubernetes 1.37): prepare.sh downloads the tarball from the
bed's stand-in for GitHub's release path (``containerd_release_url``, the setting a
mirror would use), checks its SHA-256, unpacks it to /usr/local and writes the unit; the
kubelet then talks to it. The three-node test of tests/integration/test_real_nodes.py
keeps the distribution's containerd (Debian's 1.6)."""

from __future__ import annotations

import datetime
import json
import re
import shlex
import time
from typing import Any

import pytest
import yaml

from sparkube.controller.bundle import BUCKET_PREFIX as CONTROLLER_PREFIX
from sparkube.nodes import containerd
from sparkube.nodes.prepare import full_image_ref
from sparkube.spark.image import SPARK_IMAGE
from tests.fixtures.bedcluster import NAMES, BedCluster, wait_for
from tests.fixtures.nodebed import REAL_NODES, controller_image_missing

pytestmark = REAL_NODES

KUBE_VERSION = "v1.36.3"
SPARK_REF = SPARK_IMAGE.ref
#: What the bed's Spark image must show inside a pod (tools/nodes/build.sh, "the Spark
#: image"): the real image's contract, and where the test image differs on purpose
#: (Debian 12's python3 3.11 where Ubuntu 22.04 has 3.10; Debian's OpenJDK 17 where the
#: real image has Temurin 17).
SPARK_CONTRACT = (
    "id -u; id -un; pwd; echo $SPARK_HOME $JAVA_HOME; command -v java; "
    "java -version 2>&1 | head -1; python3 --version; test -x /opt/decom.sh && echo decom; "
    "test -x /usr/bin/tini && echo tini; ls /opt/spark/jars | grep -c '^spark-core_'"
)


def test_up_made_real_nodes_of_its_instances(bed_cluster: BedCluster) -> None:
    c = bed_cluster
    for phase in ("infra", "nodes", "kubernetes", "addons"):
        assert f"✓ {phase}" in c.up.stderr, c.up.stderr[-3000:]
    assert "2/2 workers joined, 3/3 Ready" in c.up.stderr, c.up.stderr[-3000:]
    assert not c.machines.errors, c.machines.errors[-1]
    booted = c.machines.by_name()
    assert sorted(booted) == sorted(NAMES)
    items = c.kubectl_json("get nodes")["items"]
    for n in items:
        info = n["status"]["nodeInfo"]
        assert info["kubeletVersion"] == KUBE_VERSION
        runtime = info["containerRuntimeVersion"].removeprefix("containerd://")
        assert runtime == containerd.RELEASE_VERSION, info
    for name in NAMES:
        where = c.bed.run(name, "command -v containerd; systemctl show -p FragmentPath containerd")
        assert where.stdout.split() == [
            "/usr/local/bin/containerd",
            "FragmentPath=/usr/local/lib/systemd/system/containerd.service",
        ], (name, where.stdout)
    addrs = {
        n["metadata"]["name"]: next(
            a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"
        )
        for n in items
    }
    # each node is the instance moto launched
    assert addrs == {name: m.private_ip for name, m in booted.items()}
    # sparkube reached the nodes where a user would: the public IPs (no overrides).
    kubeconfig = yaml.safe_load((c.env.cluster_dir(c.name) / "kubeconfig").read_text())
    public = booted["control-plane"].public_ip
    assert public and kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{public}:6443"
    # The TTL the user data installed runs under the nodes' own systemd.
    for name in NAMES:
        timer = c.bed.run(name, "systemctl is-active sparkube-ttl.timer", check=False)
        assert timer.stdout.strip() == "active", (name, timer.stdout, timer.stderr)
        assert c.bed.run(name, "cat /etc/sparkube/expires-at").stdout.strip()


def test_sparkube_metrics_server_serves_every_node(bed_cluster: BedCluster) -> None:
    """sparkube's own metrics-server manifest, running: the metrics API answers for every
    node (it scrapes each kubelet over TLS verified with the cluster CA, so the serving
    certificates sparkube approved are in use)."""
    c = bed_cluster
    deadline = time.monotonic() + 180
    top = c.kubectl("top nodes --no-headers", check=False)
    while top.returncode != 0 or len(top.stdout.splitlines()) < 3:
        if time.monotonic() > deadline:
            print(
                c.kubectl(
                    "-n kube-system describe pod -l app.kubernetes.io/name=metrics-server",
                    check=False,
                ).stdout
            )
            raise AssertionError(f"no node metrics: {top.stdout}{top.stderr}")
        time.sleep(3)
        top = c.kubectl("top nodes --no-headers", check=False)
    assert sorted(line.split()[0] for line in top.stdout.splitlines()) == sorted(NAMES)


def test_workers_prepulled_the_spark_image_and_preparation_is_idempotent(
    bed_cluster: BedCluster,
) -> None:
    c = bed_cluster
    # The workers pre-pulled the Spark image while the control plane initialised
    # (through the docker.io mirror sparkube's setting named); the control plane not.
    prepull_s = {}
    for name in NAMES[1:]:
        prepull_s[name] = c.bed.prepull_seconds(name)
        listed = c.bed.run(name, "ctr -n k8s.io images ls -q").stdout.split()
        assert full_image_ref(SPARK_REF) in listed, listed
    cp_log = c.bed.run("control-plane", "test -e /var/log/sparkube-prepull.log", check=False)
    assert cp_log.returncode != 0
    print(json.dumps({"up_s": round(c.up_seconds, 1), "prepull_s": prepull_s}))

    # Preparation run again on a node that runs pods: exits 0, downloads and rewrites
    # nothing of the release (containerd itself restarts here, as the bed's drop-in
    # edits config.toml behind the script's back: restrict_oom_score_adj).
    stat = "stat -c %Y /usr/local/bin/containerd /usr/local/lib/systemd/system/containerd.service"
    before = c.bed.run("worker-1", stat).stdout
    again = c.bed.run(
        "worker-1", "/var/lib/sparkube/prepare.sh; cat /var/lib/sparkube/prepare.done"
    )
    assert again.stdout.strip() == "0", c.bed.run("worker-1", "tail /var/log/sparkube-prepare.log")
    assert c.bed.run("worker-1", stat).stdout == before
    log = c.bed.run("worker-1", "cat /var/log/sparkube-prepare.log").stdout
    assert log.count(f"containerd {containerd.RELEASE_VERSION} release ==") == 2, log[-2000:]
    # the node is Ready again before the next test uses it
    c.kubectl("wait --for=condition=Ready node/worker-1 --timeout=120s")


def test_the_spark_image_keeps_its_contract_in_a_pod(bed_cluster: BedCluster) -> None:
    """The Spark image, under the name sparkube's pods use, on a worker: its contract
    (pull policy Never: the pod runs what the pre-pull left in the CRI's images)."""
    c = bed_cluster
    c.kubectl(
        f"run spark-image --image={SPARK_REF} --image-pull-policy=Never "
        "--restart=Never -- bash -c " + shlex.quote(SPARK_CONTRACT)
    )
    phase = c.wait_pod("spark-image", timeout=120)
    logs = c.kubectl("logs spark-image", check=False).stdout
    assert phase == "Succeeded", (phase, logs)
    out = logs.split()
    assert out[:3] == ["185", "spark", "/opt/spark/work-dir"], logs
    assert out[3:6] == ["/opt/spark", "/opt/java/openjdk", "/opt/java/openjdk/bin/java"]
    assert '"17.' in logs and "Python 3.11." in logs and "decom" in out and "tini" in out
    pod: Any = c.kubectl_json("get pod spark-image")
    assert pod["spec"]["nodeName"].startswith("worker-"), pod["spec"]
    c.kubectl("delete pod spark-image --wait=false")


def _when(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_the_controller_runs_on_the_control_plane_and_holds_its_lease(
    bed_cluster: BedCluster,
) -> None:
    """sparkube's controller (``up``'s addon): its code came from the cluster's bucket
    (fetched by the init container with the node's instance role from moto's S3, each
    zip checked), it runs in the Python image's stand-in on the control plane, started,
    and holds the Lease that lets one controller act."""
    c = bed_cluster
    reason = controller_image_missing()
    if reason:
        pytest.skip(reason)
    assert re.search(r"code \w{12} \+ \d+ packages for Python 3\.11 on Linux x86_64", c.up.stderr)
    bucket = c.kubectl_json("-n spark get configmap sparkube-cluster")["data"]["bucket"]
    listed = c.s3().list_objects_v2(Bucket=bucket, Prefix=CONTROLLER_PREFIX)["Contents"]
    keys = [o["Key"] for o in listed]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["pyenv.zip", "sparkube.zip"], keys
    ns = "-n sparkube-system"
    selector = "-l app.kubernetes.io/name=sparkube-controller"

    def running() -> dict[str, Any] | None:
        pods = c.kubectl_json(f"{ns} get pods {selector}")["items"]
        return next((p for p in pods if p["status"].get("phase") == "Running"), None)

    try:
        pod = wait_for("the controller pod Running", running, 240)
    except TimeoutError:
        print(c.kubectl(f"{ns} describe pods {selector}", check=False).stdout)
        print(c.kubectl(f"{ns} logs {selector} -c fetch-code", check=False).stdout)
        raise
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == "control-plane"
    started_at = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    start_s = (_when(started_at) - _when(pod["metadata"]["creationTimestamp"])).total_seconds()
    fetched = c.kubectl(f"{ns} logs {name} -c fetch-code").stdout
    assert "controller code ready" in fetched, fetched
    assert "sparkube.zip" in fetched and "pyenv.zip" in fetched

    def started() -> str | None:
        log = c.kubectl(f"{ns} logs {name} -c controller", check=False).stdout
        # sparkube/controller/__main__.py, once it runs
        return log if f"sparkube controller {name} started" in log else None

    wait_for("the controller's start in its log", started, 60)

    def holder() -> str | None:
        got = c.kubectl(f"{ns} get lease sparkube-controller -o json", check=False)
        if got.returncode != 0:
            return None
        who = json.loads(got.stdout)["spec"].get("holderIdentity")
        return who if who == name else None

    wait_for("the Lease held by the controller's pod", holder, 60)
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]
    assert restarts == 0, c.kubectl(f"{ns} logs {name} -c controller --previous", check=False)
    fetch_s = re.search(r"controller code ready in ([\d.]+) s", fetched)
    print(json.dumps({"controller_pod_start_s": start_s,
                      "code_fetch_s": float(fetch_s.group(1)) if fetch_s else None}))  # fmt: skip
