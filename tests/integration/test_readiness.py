"""The readiness wait against the real test control plane (kwok nodes).

Also the whole ``kubernetes`` phase end to end: SSH hosts in network namespaces play
the machines (shim kubeadm hands out the test control plane's admin kubeconfig), the
API server is the real one, and the phase waits until its nodes are Ready. kwok nodes
because the tests turn a node NotReady, late or gone on cue, which a real kubelet does
not do to order; the real phase on real nodes: tests/bed/test_1_up.py.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import yaml

from sparkube.env import Environment
from sparkube.errors import ClusterError
from sparkube.kube.client import client_from_kubeconfig
from sparkube.kube.wait import wait_cluster_ready
from sparkube.nodes.phase import (
    KEY_FILE,
    api_readiness,
    run_kubernetes_phase,
    run_nodes_phase,
    ssh_settings,
)
from sparkube.nodes.prepare import render_prepare_script
from sparkube.progress import RecordingReporter
from sparkube.spec import ClusterSpec
from tests.fixtures.common import coredns_deployment
from tests.fixtures.controlplane import KubeControlPlane
from tests.fixtures.sshhosts import SshLab

pytestmark = pytest.mark.integration

COREDNS = coredns_deployment({"image": "registry.k8s.io/coredns:v1.12.1"})


@pytest.fixture
def coredns(kube: KubeControlPlane) -> Any:
    kube.api("POST", "/apis/apps/v1/namespaces/kube-system/deployments", COREDNS)
    yield
    kube.api(
        "DELETE", "/apis/apps/v1/namespaces/kube-system/deployments/coredns", ok_statuses=(404,)
    )


def test_timeout_names_the_nodes_that_are_not_ready_and_why(kube: KubeControlPlane) -> None:
    kube.add_node("rd-1", ready=False)
    client = client_from_kubeconfig(kube.kubeconfig)
    with pytest.raises(ClusterError) as err:
        wait_cluster_ready(client, ["rd-1", "rd-ghost"], timeout=1.0, interval=0.2)
    assert "rd-1" in err.value.message and "rd-ghost" in err.value.message
    detail = err.value.detail or ""
    assert "rd-1: Ready=False (KubeletNotReady: container runtime network not ready" in detail
    assert "rd-ghost: not registered with the API server" in detail
    assert "CoreDNS: missing" in detail


def test_waits_until_nodes_turn_ready_and_coredns_is_available(
    kube: KubeControlPlane, coredns: None
) -> None:
    kube.add_node("rd-1", ready=False)
    kube.add_node("rd-2", ready=False)

    def later() -> None:
        time.sleep(1.0)
        kube.set_node_ready("rd-1", True, wait=False)
        time.sleep(0.5)
        kube.set_node_ready("rd-2", True, wait=False)

    thread = threading.Thread(target=later)
    thread.start()
    started = time.monotonic()
    reporter = RecordingReporter()
    try:
        summary = api_readiness(kube.kubeconfig, {"rd-1": (), "rd-2": ()}, 60.0, reporter)
    finally:
        thread.join()
    assert summary == "2/2 Ready"
    assert time.monotonic() - started >= 1.4
    steps = [e[2:] for e in reporter.events if e[0] == "step"]
    assert ("rd-1", "waiting for Ready") in steps and ("rd-2", "Ready") in steps


def test_kubernetes_phase_end_to_end_against_a_real_api_server(
    ssh_lab: SshLab, sparkube_env: Environment, kube: KubeControlPlane, coredns: None
) -> None:
    spec = ClusterSpec(name="sparkube", workers=len(kube.workers))
    ssh_lab.client_key(sparkube_env.cluster_dir(spec.name, create=True) / KEY_FILE)
    cluster = ssh_lab.cluster(spec.name, workers=len(kube.workers))
    admin = yaml.safe_dump(json.loads(kube.kubeconfig.read_text()))  # as kubeadm writes it
    (ssh_lab.hosts["control-plane"].dir / "admin.conf.src").write_text(admin)
    for proc in ssh_lab.boot(render_prepare_script(spec)):
        assert proc.wait(60) == 0
    settings = ssh_settings(sparkube_env, spec.name, user=ssh_lab.user, boot_timeout=20.0)
    run_nodes_phase(env=sparkube_env, cluster=cluster, settings=settings, interval=0.2)
    kube.set_node_ready("worker-2", False)
    threading.Timer(1.0, kube.set_node_ready, ("worker-2", True), {"wait": False}).start()
    summary = run_kubernetes_phase(
        spec=spec, env=sparkube_env, cluster=cluster, settings=settings,
        api_server=kube.server, ready_timeout=60.0,
    )  # fmt: skip
    assert summary == (
        f"control plane initialised, {len(kube.workers)}/{len(kube.workers)} workers joined, "
        f"{len(kube.workers) + 1}/{len(kube.workers) + 1} Ready"
    )
