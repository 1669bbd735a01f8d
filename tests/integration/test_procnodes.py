"""Process nodes: pods that really run in the test cluster (tests/fixtures/procnodes.py).

Every test here goes through the real API server, scheduler and controllers; the pods
run as processes in their own network and mount namespaces on the process nodes.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.procnodes import ProcessCluster

pytestmark = pytest.mark.integration

PY = "python:3.11-slim"


@pytest.fixture
def ns(proc_ns: str) -> str:
    return proc_ns


def pod(name: str, script: str, *, image: str = PY, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "command": ["python3", "-c", textwrap.dedent(script)],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def terminated(p: dict[str, Any], container: str = "main") -> dict[str, Any]:
    for st in p["status"].get("containerStatuses") or []:
        if st["name"] == container:
            return dict(st["state"]["terminated"])
    raise AssertionError(f"no status for {container}: {p['status']}")


# --------------------------------------------------------------------------- lifecycle


def test_pod_runs_with_its_network_volumes_env_and_token(
    process_cluster: ProcessCluster, ns: str
) -> None:
    pc = process_cluster
    pc.create(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                   "data": {"greeting": "hello", "file.txt": "from a configmap"}})  # fmt: skip
    pc.create(ns, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
                   "stringData": {"password": "s3cret"}})  # fmt: skip
    script = """
        import json, os, socket, ssl, urllib.request
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        token = open(sa + "/token").read()
        ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        ns = open(sa + "/namespace").read()
        req = urllib.request.Request(
            f"https://kubernetes.default.svc/api/v1/namespaces/{ns}/pods/{os.environ['POD_NAME']}",
            headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, context=ctx) as r:
                api = r.status
        except urllib.error.HTTPError as e:
            api = e.code  # the default SA may not read pods: 403 still proves auth + TLS
        print(json.dumps({
            "uid": os.getuid(), "hostname": socket.gethostname(),
            "ip": os.environ["POD_IP"], "ns": ns, "api": api,
            "k8s": f"{host}:{port}",
            "greeting": os.environ["GREETING"], "password": os.environ["PASSWORD"],
            "file": open("/etc/cfg/file.txt").read(),
            "labels": open("/etc/podinfo/labels").read(),
            "scratch_writable": os.access("/scratch", os.W_OK),
            "resolve": socket.gethostbyname("kubernetes.default.svc.cluster.local"),
            "cwd": os.getcwd(),
        }))
    """
    spec = pod("probe", script, container={
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING",
             "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
        ],
        "securityContext": {"runAsUser": 4242, "runAsNonRoot": True},
        "workingDir": "/scratch",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
            {"name": "podinfo", "mountPath": "/etc/podinfo"},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
    }, volumes=[
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "scratch", "emptyDir": {}},
    ])  # fmt: skip
    pc.create(ns, spec)
    done = pc.wait_phase(ns, "probe", ("Succeeded", "Failed"), timeout=60)
    log = pc.logs(ns, "probe")
    assert done["status"]["phase"] == "Succeeded", log
    out = json.loads(log.strip().splitlines()[-1])
    assert out["uid"] == 4242 and out["hostname"] == "probe" and out["ns"] == ns
    assert out["ip"] == done["status"]["podIP"]
    assert ipaddress.ip_address(out["ip"]) in pc.subnet
    kubernetes_ip = str(ipaddress.ip_network(pc.service_cidr)[1])
    assert out["api"] in (200, 403) and out["k8s"] == f"{kubernetes_ip}:443"
    assert out["resolve"] == kubernetes_ip
    assert (out["greeting"], out["password"]) == ("hello", "s3cret")
    assert out["file"] == "from a configmap" and 'app="probe"' in out["labels"]
    assert out["scratch_writable"] and out["cwd"] == "/scratch"
    st = terminated(done)
    assert st["exitCode"] == 0 and st["reason"] == "Completed"
    assert st["startedAt"] <= st["finishedAt"]
    assert done["status"]["hostIP"] and done["spec"]["nodeName"] in pc.workers
    # the mount points never appeared on the host
    assert not Path("/etc/cfg").exists() and not Path("/scratch").exists()


def test_failing_container_reports_its_exit_code(process_cluster: ProcessCluster, ns: str) -> None:
    pc = process_cluster
    pc.create(ns, pod("fails", "import sys; print('bye'); sys.exit(3)"))
    done = pc.wait_phase(ns, "fails", ("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Failed"
    st = terminated(done)
    assert (st["exitCode"], st["reason"]) == (3, "Error")
    assert pc.logs(ns, "fails") == "bye\n"


def test_memory_limit_oom_kills(process_cluster: ProcessCluster, ns: str) -> None:
    pc = process_cluster
    hog = "x = []\nwhile True: x.append(bytearray(8 << 20))"
    pc.create(ns, pod("hog", hog, container={"resources": {"limits": {"memory": "64Mi"}}}))
    done = pc.wait_phase(ns, "hog", ("Succeeded", "Failed"))
    st = terminated(done)
    assert (st["exitCode"], st["reason"]) == (137, "OOMKilled")
    assert done["status"]["phase"] == "Failed"


def test_unknown_image_is_image_pull_backoff(process_cluster: ProcessCluster, ns: str) -> None:
    pc = process_cluster
    pc.create(ns, pod("nopull", "print(1)", image="example.invalid/no-such-image:1.0"))

    def waiting(p: dict[str, Any]) -> bool:
        sts = p["status"].get("containerStatuses") or []
        return (
            bool(sts) and (sts[0]["state"].get("waiting") or {}).get("reason") == "ImagePullBackOff"
        )

    p = pc.wait_pod(ns, "nopull", waiting, "in ImagePullBackOff", timeout=30)
    assert p["status"]["phase"] == "Pending"
    assert "not found" in p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    events = pc.kube.get(f"/api/v1/namespaces/{ns}/events")["items"]
    assert any(e["reason"] == "Failed" and "ErrImagePull" in e["message"] for e in events)


def test_run_as_non_root_with_a_named_image_user_is_refused(
    process_cluster: ProcessCluster, ns: str
) -> None:
    pc = process_cluster
    from sparkube.spark.image import SPARK_IMAGE
    from tests.fixtures.procnodes import spark_layer_or_skip

    spark_layer_or_skip()
    container = {"command": ["true"], "securityContext": {"runAsNonRoot": True}}
    spec = pod("nonroot", "", image=SPARK_IMAGE.ref, container=container)

    def config_error(p: dict[str, Any]) -> bool:
        sts = p["status"].get("containerStatuses") or []
        reason = (sts[0]["state"].get("waiting") or {}).get("reason") if sts else None
        return reason == "CreateContainerConfigError"

    pc.create(ns, spec)
    p = pc.wait_pod(ns, "nonroot", config_error, "CreateContainerConfigError", timeout=30)
    msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "non-numeric user (spark)" in msg


def test_job_completes(process_cluster: ProcessCluster, ns: str) -> None:
    pc = process_cluster
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "count"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": pod("x", "print(sum(range(10)))")["spec"]},
        },
    }
    pc.create(ns, job)
    path = f"/apis/batch/v1/namespaces/{ns}/jobs/count"
    pc.kube.wait_for(
        "job complete",
        lambda: any(c["type"] == "Complete" and c["status"] == "True"
                    for c in (pc.kube.get(path).get("status") or {}).get("conditions") or []),
        timeout=60,
    )  # fmt: skip
    pods = pc.kube.get(f"/api/v1/namespaces/{ns}/pods?labelSelector=job-name=count")["items"]
    assert len(pods) == 1
    assert pc.logs(ns, pods[0]["metadata"]["name"]) == "45\n"


def test_deleting_a_running_pod_leaves_nothing(process_cluster: ProcessCluster, ns: str) -> None:
    pc = process_cluster
    script = """
        import signal, subprocess, sys, time
        child = subprocess.Popen(["sleep", "600"])  # a grandchild that ignores nothing
        signal.signal(signal.SIGTERM, lambda *a: (print("got SIGTERM", flush=True), sys.exit(0)))
        print("running", flush=True)
        time.sleep(600)
    """
    pc.create(ns, pod("sleeper", script, terminationGracePeriodSeconds=5))
    p = pc.wait_pod(
        ns, "sleeper",
        lambda p: (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("running"),
        "running",
    )  # fmt: skip
    uid = p["metadata"]["uid"]
    pc.kube.wait_for("output", lambda: "running" in pc.logs(ns, "sleeper"))
    assert pc.pod_cgroups(uid)
    netns = f"spkp-{uid[:8]}"
    assert netns in pc.netns_left()
    pc.kube.api("DELETE", f"/api/v1/namespaces/{ns}/pods/sleeper")
    pc.wait_gone(ns, "sleeper", timeout=30)
    assert netns not in pc.netns_left()
    assert pc.pod_cgroups(uid) == []
    leftover = subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
    mounts = Path("/proc/self/mountinfo").read_text()
    assert uid not in mounts
    assert not (pc.state_dir / "pods" / uid).exists()


def test_pods_keep_reaching_the_host_when_bridge_ports_change(
    process_cluster: ProcessCluster, ns: str
) -> None:
    """A Linux bridge without its own address takes the lowest of its ports' and changes it
    as veths come and go; pods that cached the old one lost the host (API server, DNS) for
    up to ~40 s. The process nodes' bridge has its own address: a port with the lowest
    possible address joining must change nothing for a running pod."""
    pc = process_cluster
    script = """
        import os, socket, time
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = int(os.environ["KUBERNETES_SERVICE_PORT"])
        while True:
            started = time.monotonic()
            try:
                socket.create_connection((host, port), timeout=2).close()
                print(f"ok {time.monotonic() - started:.2f}", flush=True)
            except OSError as exc:
                print(f"failed {exc!r}", flush=True)
            time.sleep(0.3)
    """
    pc.create(ns, pod("prober", script, terminationGracePeriodSeconds=1))
    p = pc.wait_phase(ns, "prober", ("Running",))
    pc.kube.wait_for("a first connection", lambda: "ok " in pc.logs(ns, "prober"))
    address = Path(f"/sys/class/net/{pc.bridge}/address")
    before = address.read_text().strip()
    port = f"spklow{p['metadata']['uid'][:6]}"
    subprocess.run(["ip", "link", "add", port, "address", "00:00:00:00:00:01", "type", "veth",
                    "peer", "name", port + "p"], check=True)  # fmt: skip
    try:
        subprocess.run(["ip", "link", "set", port, "master", pc.bridge, "up"], check=True)
        assert address.read_text().strip() == before
        seen = len(pc.logs(ns, "prober").splitlines())
        time.sleep(3)
        after = pc.logs(ns, "prober").splitlines()[seen:]
        assert after and all(line.startswith("ok ") for line in after), after
    finally:
        subprocess.run(["ip", "link", "del", port], check=False)


# --------------------------------------------------------------------------- kubelet API


def test_logs_follow_and_tail_through_the_api_server(
    process_cluster: ProcessCluster, ns: str
) -> None:
    pc = process_cluster
    script = """
        import time
        for i in range(5):
            print(f"line {i}", flush=True)
            time.sleep(0.3)
    """
    pc.create(ns, pod("talker", script))
    pc.wait_pod(ns, "talker",
                lambda p: (p["status"].get("containerStatuses") or [{}])[0].get("state", {})
                .get("running") or p["status"].get("phase") == "Succeeded", "started")  # fmt: skip
    follow = pc.kube.kubectl("logs", "-f", "-n", ns, "talker", timeout=60)
    assert follow.stdout == "".join(f"line {i}\n" for i in range(5))
    tail = pc.kube.kubectl("logs", "-n", ns, "talker", "--tail=2")
    assert tail.stdout == "line 3\nline 4\n"


def test_metrics_resource_from_cgroups(process_cluster: ProcessCluster, ns: str) -> None:
    pc = process_cluster
    burn = "import time\nt=time.time()\nwhile time.time()-t<30: pass"
    pc.create(ns, pod("burner", burn))
    p = pc.wait_pod(
        ns, "burner",
        lambda p: (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("running"),
        "running",
    )  # fmt: skip
    node = p["spec"]["nodeName"]
    time.sleep(1.5)
    text = pc.raw(f"/api/v1/nodes/{node}/proxy/metrics/resource")
    line = next(
        ln for ln in text.splitlines()
        if ln.startswith("container_cpu_usage_seconds_total") and 'pod="burner"' in ln
    )  # fmt: skip
    assert float(line.split()[1]) > 0.3
    assert any(ln.startswith("node_memory_working_set_bytes ") for ln in text.splitlines())
    pc.kube.api("DELETE", f"/api/v1/namespaces/{ns}/pods/burner?gracePeriodSeconds=1")


def test_kubelet_api_refuses_anonymous_callers(process_cluster: ProcessCluster) -> None:
    import ssl

    node = process_cluster.kube.get(f"/api/v1/nodes/{process_cluster.workers[0]}")
    addr = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ctx = ssl.create_default_context(cafile=str(process_cluster.kube.ca_file))
    req = urllib.request.Request(f"https://{addr}:{port}/metrics/resource")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert err.value.code == 401
