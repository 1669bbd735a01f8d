"""A real metrics-server (tools/kube/build.sh) behind the real aggregation layer, scraping
the process nodes' kubelet API (tests/fixtures/procnodes.py): ``metrics.k8s.io`` as
kube-opex-analytics, ``kubectl top`` and the HPA read it on a real cluster."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.procnode.agent import parse_quantity
from tests.fixtures.procnodes import ProcessCluster

pytestmark = pytest.mark.integration

BURN_SECONDS = 40


@pytest.fixture
def ns(proc_ns: str) -> str:
    return proc_ns


def burner(name: str, seconds: int) -> dict[str, Any]:
    script = (
        f"import time\nblob = b'x' * (32 * 2**20)\nt = time.time()\n"
        f"while time.time() - t < {seconds}: pass\n"
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": "main", "image": "python:3.11-slim", "command": ["python3", "-c", script]}
            ],
        },
    }


def test_metrics_api_reports_a_busy_pod_and_the_process_nodes(
    process_cluster: ProcessCluster, ns: str
) -> None:
    pc = process_cluster
    pc.create(ns, burner("burner", BURN_SECONDS))
    p = pc.wait_pod(
        ns, "burner",
        lambda p: (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("running"),
        "running",
    )  # fmt: skip
    started = time.monotonic()

    def busy() -> dict[str, Any] | None:
        for item in pc.pod_metrics(ns):
            if item["metadata"]["name"] != "burner":
                continue
            usage = item["containers"][0]["usage"]
            if parse_quantity(usage["cpu"]) > 0 and parse_quantity(usage["memory"]) > 0:
                return dict(item)
        return None

    item = pc.kube.wait_for(
        "PodMetrics of the burner with CPU and memory", busy, timeout=BURN_SECONDS - 5, interval=1
    )
    assert time.monotonic() - started < BURN_SECONDS  # seen while it burns
    assert [c["name"] for c in item["containers"]] == ["main"]
    usage = item["containers"][0]["usage"]
    # one busy loop on a shared, loaded machine: well above idle, at most ~1 core
    assert 0.05 < parse_quantity(usage["cpu"]) < 1.5
    assert parse_quantity(usage["memory"]) > 16 * 2**20  # the 32 MiB it holds, roughly
    assert item["window"]  # e.g. "10.5s"

    nodes = {n["metadata"]["name"]: n for n in pc.node_metrics()}
    assert set(pc.workers) <= set(nodes)
    for name in pc.workers:
        assert parse_quantity(nodes[name]["usage"]["cpu"]) >= 0
        assert parse_quantity(nodes[name]["usage"]["memory"]) > 0
    # the burner's node carries its usage
    assert parse_quantity(nodes[p["spec"]["nodeName"]]["usage"]["memory"]) > 16 * 2**20

    top = pc.kube.kubectl("top", "pod", "-n", ns, "--no-headers").stdout
    assert top.split()[0] == "burner", top
    single = pc.kube.get(f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/burner")
    assert single["kind"] == "PodMetrics"
    pc.kube.api("DELETE", f"/api/v1/namespaces/{ns}/pods/burner?gracePeriodSeconds=1")
