"""What the monitoring addons rely on, on the shared real cluster (tests/fixtures/bedcluster.py):

- sparkube's metrics-server, behind the real aggregation layer, reports a busy pod and
  every node as kube-opex-analytics, ``kubectl top`` and an HPA read them;
- kube-opex-analytics' ClusterRole (as sparkube ships it) grants exactly the collector's
  reads: take one away and that read is refused, by the cluster's own API server;
- sparkube's dashboard tunnel carries real bytes: 127.0.0.1 -> SSH to the control
  plane's public IP (as ``ubuntu``, with the cluster key and the pinned host keys) -> a
  ClusterIP Service -> a pod on a worker, through kube-proxy and Flannel.

Each test makes its own namespace and removes it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sparkube.errors import ClusterError, UsageError
from sparkube.kube.client import client_from_kubeconfig
from sparkube.model import CONTROL_PLANE, Node
from sparkube.monitoring.addons import render_opex
from sparkube.monitoring.tunnel import check_ready, pick_port, serve_tunnel, service_target
from sparkube.nodes.phase import ssh_settings
from sparkube.spark.diagnose import parse_cpu, parse_memory
from tests.fixtures.bedcluster import ADMIN, BedCluster, wait_for
from tests.fixtures.nodebed import REAL_NODES

pytestmark = REAL_NODES

SHELL = "sparkube.test/shell:1"  # busybox: sh, httpd, wget (tools/nodes/build.sh)
METRICS_API = "/apis/metrics.k8s.io/v1beta1"
#: The collector's five reads per poll (kube-opex-analytics 25.10.0, backend.py
#: ``pull_k8s``), made with its service account's token.
READS = {
    "nodes": "/api/v1/nodes",
    "pods": "/api/v1/pods",
    "namespaces": "/api/v1/namespaces",
    "node metrics": f"{METRICS_API}/nodes",
    "pod metrics": f"{METRICS_API}/pods",
}
Grant = tuple[str, str]  # (apiGroup, resource)


@pytest.fixture
def ns(bed_cluster: BedCluster) -> Iterator[str]:
    name = f"t-{secrets.token_hex(3)}"
    bed_cluster.kubectl(f"create namespace {name}")
    yield name
    bed_cluster.kubectl(f"delete namespace {name} --wait=false", check=False)


def _apply(c: BedCluster, ns: str, *objects: dict[str, Any]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    c.bed.run("control-plane", f"{ADMIN} -n {ns} apply -f -", input=body)


def _raw(c: BedCluster, path: str) -> Any:
    got = c.kubectl(f"get --raw {shlex.quote(path)}", check=False)
    return json.loads(got.stdout) if got.returncode == 0 else None


BURN_SECONDS = 60


def test_metrics_api_reports_a_busy_pod_and_every_node(bed_cluster: BedCluster, ns: str) -> None:
    c = bed_cluster
    # one busy loop holding ~32 MiB, on a worker
    script = (
        "x=$(head -c 33554432 /dev/zero | tr '\\0' x); "
        f"end=$(( $(date +%s) + {BURN_SECONDS} )); while [ $(date +%s) -lt $end ]; do :; done"
    )
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burner"},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": SHELL,
                                 "command": ["sh", "-c", script]}]},
    }  # fmt: skip
    _apply(c, ns, pod)
    wait_for(
        "the burner running",
        lambda: (
            (_raw(c, f"/api/v1/namespaces/{ns}/pods/burner") or {}).get("status", {}).get("phase")
            == "Running"
        ),
        timeout=90,
        interval=1,
    )
    started = time.monotonic()

    def busy() -> dict[str, Any] | None:
        item = _raw(c, f"{METRICS_API}/namespaces/{ns}/pods/burner")
        if not item or not item.get("containers"):
            return None
        usage = item["containers"][0]["usage"]
        if parse_cpu(usage["cpu"]) > 0.05 and parse_memory(usage["memory"]) > 16 * 2**20:
            return dict(item)
        return None

    item = wait_for(
        "PodMetrics of the burner with CPU and memory", busy, timeout=BURN_SECONDS - 5, interval=1
    )
    assert time.monotonic() - started < BURN_SECONDS  # seen while it burns
    assert item["kind"] == "PodMetrics" and item["window"]
    assert [x["name"] for x in item["containers"]] == ["main"]
    # one busy loop on a shared, loaded machine: at most ~1 core
    assert parse_cpu(item["containers"][0]["usage"]["cpu"]) < 1.5

    nodes = {n["metadata"]["name"]: n for n in _raw(c, f"{METRICS_API}/nodes")["items"]}
    assert sorted(nodes) == ["control-plane", "worker-1", "worker-2"], sorted(nodes)
    for name, metrics in nodes.items():
        assert parse_memory(metrics["usage"]["memory"]) > 0, name
    node = _raw(c, f"/api/v1/namespaces/{ns}/pods/burner")["spec"]["nodeName"]
    assert node.startswith("worker-"), node
    top = c.kubectl(f"top pod -n {ns} --no-headers").stdout
    assert top.split()[0] == "burner", top


# ------------------------------------------------------------------ the collector's RBAC


def shipped_role() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(render_opex(0.25)) if d]
    return next(d for d in docs if d["kind"] == "ClusterRole")


def grants(role: dict[str, Any]) -> list[Grant]:
    return [(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]]


def without(role: dict[str, Any], removed: Grant) -> list[dict[str, Any]]:
    rules = []
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            kept = [r for r in rule["resources"] if (group, r) != removed]
            if kept:
                rules.append({"apiGroups": [group], "resources": kept, "verbs": rule["verbs"]})
    return rules


def read_grant(path: str) -> Grant:
    group = "metrics.k8s.io" if path.startswith("/apis/metrics.k8s.io/") else ""
    return group, path.rstrip("/").rsplit("/", 1)[1]


def test_the_reads_are_exactly_what_the_role_grants() -> None:
    assert sorted(read_grant(p) for p in READS.values()) == sorted(grants(shipped_role()))
    assert {v for rule in shipped_role()["rules"] for v in rule["verbs"]} == {"list"}


def test_the_collector_role_allows_every_read_and_each_grant_is_needed(
    bed_cluster: BedCluster, ns: str
) -> None:
    """A service account bound to the ClusterRole sparkube ships, then to that role
    without each resource in turn: the cluster's API server (metrics.k8s.io through the
    aggregation layer included) decides each of the collector's reads."""
    c = bed_cluster
    name = f"opex-rbac-{ns}"
    c.kubectl(f"-n {ns} create serviceaccount collector")
    token = c.kubectl(f"-n {ns} create token collector --duration=1h").stdout.strip()

    def bind(rules: list[dict[str, Any]]) -> None:
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name}, "rules": rules}  # fmt: skip
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "collector", "namespace": ns}],
        }  # fmt: skip
        _apply(c, ns, role, binding)

    def statuses() -> dict[str, int]:
        # one kubectl in the control plane for all five reads, with the account's token
        # the server kubeadm wrote for the admin (its serving certificate names it)
        server = "$(awk '/server:/ {print $2}' /etc/kubernetes/admin.conf)"
        reads = " ".join(
            f"kubectl --server {server} "
            f"--certificate-authority /etc/kubernetes/pki/ca.crt --token {token} "
            f"get --raw {path} >/dev/null 2>/tmp/{i}.err; echo $? $(grep -c Forbidden /tmp/{i}.err)"
            + ";"
            for i, path in enumerate(READS.values())
        )
        out = c.bed.run("control-plane", reads).stdout.split("\n")
        result = {}
        for i, (what, line) in enumerate(zip(READS, out, strict=False)):
            code, forbidden = line.split()
            result[what] = 200 if code == "0" else (403 if forbidden != "0" else 500)
            if result[what] == 500:
                print(what, c.bed.run("control-plane", f"cat /tmp/{i}.err").stdout)
        return result

    def settle(expected: dict[str, int]) -> dict[str, int]:
        """The statuses once the API server's RBAC caches have the new role (<= 20 s)."""
        deadline = time.monotonic() + 20
        seen = statuses()
        while seen != expected and time.monotonic() < deadline:
            time.sleep(1)
            seen = statuses()
        return seen

    try:
        bind(shipped_role()["rules"])
        assert settle(dict.fromkeys(READS, 200)) == dict.fromkeys(READS, 200)
        for what in sorted(READS):
            removed = read_grant(READS[what])
            bind(without(shipped_role(), removed))
            expected = {w: (403 if w == what else 200) for w in READS}
            assert settle(expected) == expected, f"without {removed}"
    finally:
        c.kubectl(f"delete clusterrolebinding,clusterrole {name}", check=False)


# ------------------------------------------------------------------ the dashboard tunnel


def test_the_dashboard_tunnel_carries_real_bytes(bed_cluster: BedCluster, ns: str) -> None:
    """sparkube's tunnel code (what ``sparkube dashboard`` runs), through the real control
    plane, to a page served by a pod behind a ClusterIP Service on a worker."""
    c = bed_cluster
    client = client_from_kubeconfig(c.env.cluster_dir(c.name) / "kubeconfig")
    selector = {"app.kubernetes.io/name": "page"}
    # Not ready yet: the message names the pod state and the usual wait.
    with pytest.raises(ClusterError, match="has no pod yet"):
        check_ready(client, ns, selector, "the page", "1 min")
    with pytest.raises(ClusterError, match="is not installed"):
        service_target(client, ns, "page", 80, "the page")

    marker = f"page {secrets.token_hex(4)}"
    web = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "page", "labels": selector},
        "spec": {"containers": [{
            "name": "web", "image": SHELL,
            "command": ["sh", "-c", f"mkdir -p /srv && echo '{marker}' >/srv/index.html && "
                        "exec httpd -f -p 5483 -h /srv"],
            "ports": [{"name": "http", "containerPort": 5483}],
            "readinessProbe": {"tcpSocket": {"port": 5483}, "periodSeconds": 1}}]},
    }  # fmt: skip
    svc = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "page"},
        "spec": {"selector": selector,
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip
    _apply(c, ns, web, svc)

    def ready() -> bool:
        try:
            check_ready(client, ns, selector, "the page", "1 min")
        except ClusterError:
            return False
        return True

    wait_for("the page pod Ready", ready, timeout=120, interval=1)
    target = service_target(client, ns, "page", 80, "the page")
    booted = c.machines.by_name()["control-plane"]
    node = Node(name="control-plane", role=CONTROL_PLANE, instance_id=booted.instance_id,
                ssh_host=booted.public_ip)  # fmt: skip
    settings = ssh_settings(c.env, c.name, boot_timeout=30)
    port = pick_port(0, explicit=False)
    ready_evt = threading.Event()
    bound: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def serve() -> None:
        def on_ready(p: int) -> None:
            bound.append(p)
            ready_evt.set()

        loop.run_until_complete(serve_tunnel(node, settings, target, port, on_ready=on_ready,
                                             stop=stop))  # fmt: skip

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready_evt.wait(60), "tunnel did not come up"
        with urllib.request.urlopen(f"http://127.0.0.1:{bound[0]}/", timeout=20) as resp:
            assert marker in resp.read().decode()
        # the port is taken while the tunnel runs: an explicit --port is refused (exit 2)
        with pytest.raises(UsageError, match="in use"):
            pick_port(bound[0], explicit=True)
        assert pick_port(bound[0], explicit=False) != bound[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
    assert not thread.is_alive()
    with pytest.raises(OSError):  # closed cleanly: nothing listens any more
        urllib.request.urlopen(f"http://127.0.0.1:{bound[0]}/", timeout=5)

    # A Service nothing answers behind (no endpoints: kube-proxy refuses its cluster IP):
    # the tunnel is never announced, the error names the target.
    empty = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
        "spec": {"selector": {"app.kubernetes.io/name": "nothing"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 5483}]},
    }  # fmt: skip
    _apply(c, ns, empty)
    nothing = service_target(client, ns, "empty", 80, "the empty page")
    announced: list[int] = []
    with pytest.raises(ClusterError, match=r"control plane cannot reach the empty page at "):
        asyncio.run(serve_tunnel(node, settings, nothing, pick_port(0, explicit=False),
                                 on_ready=announced.append, reach_timeout=3))  # fmt: skip
    assert announced == []
