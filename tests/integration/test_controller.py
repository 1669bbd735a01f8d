"""The controller's loop against the real test control plane (real API server, Job
controller and scheduler; kwok plays the kubelets of three 2-CPU workers).

Jobs here are plain suspended Jobs carrying sparkube's admission annotation, whose one
pod is labelled as a sparkube driver: kwok runs it and completes it after a delay, as a
driver ending. Executors are left out (minimum 0): kwok has no Spark to create them;
whole-job admission with executors on real nodes is tests/bed/test_4_queue.py. What
this proves on the real API: the Lease (one acting replica, a successor after release),
the merge patches (suspend off, annotations on and off), the reads of every namespace's
pods, and a queue that drains in order as pods end.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sparkube.controller import admission
from sparkube.controller.lease import LEASE_NAME, Lease, holder
from sparkube.controller.loop import Controller
from sparkube.kube.client import client_from_kubeconfig
from sparkube.spark.diagnose import parse_cpu
from tests.fixtures.controlplane import KubeControlPlane

pytestmark = pytest.mark.integration

NS = "queue-test"
LEASE_NS = "queue-lease"


def suspended_job(name: str, cpu: str, *, delay: str = "2s") -> dict[str, Any]:
    asks = {
        "driver": {"cpu": parse_cpu(cpu), "memory_bytes": 2**30},
        "executor": {"cpu": 1.0, "memory_bytes": 2**30},
        "min_executors": 0,
    }
    labels = {"app.kubernetes.io/managed-by": "sparkube", "sparkube.io/job": name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {admission.ASKS: json.dumps(asks)},
        },
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {**labels, "sparkube.io/role": "driver"},
                    "annotations": {"sparkube.test/delay": delay},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "driver",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}},
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
def controller(kube: KubeControlPlane) -> Iterator[Controller]:
    kube.create_namespace(NS)
    kube.create_namespace(LEASE_NS)
    client = client_from_kubeconfig(kube.kubeconfig)
    ctl = Controller(client, jobs_namespace=NS, lease=Lease(client, LEASE_NS, "test-a"))
    ctl.start_watches()
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    yield ctl
    ctl.stopping.set()
    ctl.wake.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def _job(kube: KubeControlPlane, name: str) -> dict[str, Any]:
    return dict(kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}"))


def _started(kube: KubeControlPlane, name: str) -> bool:
    return _job(kube, name)["spec"].get("suspend") is False


def test_a_queue_larger_than_the_workers_drains_in_order(
    kube: KubeControlPlane, controller: Controller
) -> None:
    # each driver asks 1.5 of a worker's 2 CPU: one job per worker at a time
    workers = len(kube.workers)
    names = [f"q{i}" for i in range(workers + 2)]
    for name in names:
        kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                 suspended_job(name, "1500m", delay="12s"))  # fmt: skip
        time.sleep(0.05)  # distinct creation order (seconds resolution: tie by name)
    kube.wait_for(
        f"{workers} jobs started", lambda: all(_started(kube, n) for n in names[:workers]), 60
    )

    # once the last admitted job's driver is placed, the next says what it waits for:
    # 1.5 CPU are free in all, but 0.5 on each worker
    def waits_for_room() -> bool:
        ann = _job(kube, names[workers])["metadata"]["annotations"]
        return ann.get(admission.WAITS_FOR) == "a worker with room for a pod of 1.5 CPU and 1Gi"

    kube.wait_for("the next job to wait for a worker", waits_for_room, 30, interval=0.2)
    waiting = _job(kube, names[workers])
    assert waiting["spec"]["suspend"] is True
    assert waiting["metadata"]["annotations"][admission.POSITION] == "1"
    last = _job(kube, names[workers + 1])["metadata"]["annotations"]
    assert last[admission.POSITION] == "2"
    assert last[admission.WAITS_FOR] == f"job {names[workers]} ahead of it"
    # never more running at once than there is room for, and everyone finishes
    seen_running: list[int] = []

    def all_done() -> bool:
        pods = kube.get(f"/api/v1/namespaces/{NS}/pods")["items"]
        seen_running.append(sum(1 for p in pods if p["status"].get("phase") == "Running"))
        jobs = [_job(kube, n) for n in names]
        return all(
            any(c["type"] == "Complete" and c["status"] == "True"
                for c in j.get("status", {}).get("conditions", []))
            for j in jobs
        )  # fmt: skip

    kube.wait_for("every job complete", all_done, 90, interval=0.2)
    assert max(seen_running) <= workers
    for name in names:
        ann = _job(kube, name)["metadata"]["annotations"]
        assert admission.ADMITTED in ann
        assert admission.POSITION not in ann and admission.WAITS_FOR not in ann


def test_a_job_that_never_fits_is_marked_and_does_not_hold_the_queue(
    kube: KubeControlPlane, controller: Controller
) -> None:
    kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", suspended_job("huge", "3"))
    kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", suspended_job("small", "500m"))
    kube.wait_for("small started", lambda: _started(kube, "small"), 30)
    ann = _job(kube, "huge")["metadata"]["annotations"]
    assert ann[admission.NEVER] == "true"
    assert ann[admission.WAITS_FOR].startswith("its driver pod asks for 3 CPU and 1Gi"), ann


def test_one_controller_acts_and_a_successor_takes_over_after_release(
    kube: KubeControlPlane,
) -> None:
    kube.create_namespace(LEASE_NS)
    client = client_from_kubeconfig(kube.kubeconfig)
    first, second = Lease(client, LEASE_NS, "one"), Lease(client, LEASE_NS, "two")
    assert holder(client, LEASE_NS) == (None, None)
    assert first.hold() and not second.hold()
    assert first.hold()  # renewing
    who, age = holder(client, LEASE_NS)
    assert who == "one" and age is not None and age < 5
    first.release()
    assert second.hold() and not first.hold()
    lease = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{LEASE_NAME}")
    assert lease["spec"]["holderIdentity"] == "two"
    assert lease["spec"]["leaseTransitions"] == 1
