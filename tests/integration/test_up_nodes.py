"""``sparkube up`` through infra -> nodes -> kubernetes, then ``sparkube ssh``.

AWS is the moto server; the instances moto reports are played by sshd hosts in network
namespaces (``SPARKUBE_NODE_ADDRESSES`` maps node names to them: nothing connects to a
moto address); the Kubernetes API is the real test control plane, whose admin
kubeconfig the shim ``kubeadm init`` leaves on the control-plane host. The same ``up``
on real nodes, with real kubeadm: tests/bed/test_1_up.py; this module keeps what needs
no real node and would cost a bed boot (``sparkube ssh``, the address override).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from sparkube.aws.session import CallCounter, observe_calls
from sparkube.nodes.prepare import render_prepare_script
from sparkube.spec import ClusterSpec
from tests.fixtures.common import CliResult
from tests.fixtures.controlplane import KubeControlPlane
from tests.fixtures.moto_server import MotoAws
from tests.fixtures.sshhosts import SshLab

pytestmark = pytest.mark.integration

CIDR = "203.0.113.7/32"


@pytest.fixture
def coredns(kube: KubeControlPlane) -> Iterator[None]:
    from tests.integration.test_readiness import COREDNS

    kube.api("POST", "/apis/apps/v1/namespaces/kube-system/deployments", COREDNS)
    yield
    kube.api(
        "DELETE", "/apis/apps/v1/namespaces/kube-system/deployments/coredns", ok_statuses=(404,)
    )


def test_up_runs_nodes_and_kubernetes_then_ssh_works(
    cli: Callable[..., CliResult],
    moto_aws: MotoAws,
    ssh_lab: SshLab,
    kube: KubeControlPlane,
    coredns: None,
) -> None:
    workers = len(kube.workers)
    infra = cli(
        "up", "--until", "infra", "--allow-cidr", CIDR, "--workers", str(workers),
        env=moto_aws.env,
    )  # fmt: skip
    assert infra.exit_code == 0, infra.stderr
    cdir = moto_aws.env.cluster_dir("sparkube")
    ssh_lab.authorize((cdir / "id_ed25519.pub").read_text())
    ssh_lab.cluster("sparkube", workers=workers)  # creates the hosts
    admin = yaml.safe_dump(json.loads(kube.kubeconfig.read_text()))
    (ssh_lab.hosts["control-plane"].dir / "admin.conf.src").write_text(admin)
    # the control plane's kubectl applies the CNI manifest to the real API server
    ssh_lab.serve_kube_api(ssh_lab.hosts["control-plane"], kube.kubeconfig, kube.kubectl_path)
    for proc in ssh_lab.boot(render_prepare_script(ClusterSpec(workers=workers))):
        assert proc.wait(60) == 0

    environ: dict[str, Any] = dict(moto_aws.env.environ)
    environ.update(
        SPARKUBE_NODE_ADDRESSES=",".join(f"{k}={v}" for k, v in ssh_lab.overrides().items()),
        SPARKUBE_SSH_USER=ssh_lab.user,
        SPARKUBE_API_SERVER=kube.server,
        # kwok runs no metrics-server pod: its APIService would make the API server dial
        # a ClusterIP nobody serves here, an address outside this test's namespaces.
        SPARKUBE_SKIP_ADDONS="metrics-server",
    )
    env = dataclasses.replace(moto_aws.env, environ=environ)
    # A plain 'up' completes the cluster that 'up --until infra --workers N' started.
    up = cli("up", env=env)
    assert up.exit_code == 0, up.stderr
    assert f"{workers + 1}/{workers + 1} prepared" in up.stderr
    assert f"{workers}/{workers} workers joined, {workers + 1}/{workers + 1} Ready" in up.stderr
    assert "✓ nodes" in up.stderr and "✓ kubernetes" in up.stderr
    # without a terminal: a plain line per node step
    assert re.search(r"^ +\d+:\d\d worker-1 +kubeadm join$", up.stderr, re.M), up.stderr
    assert "Ready in" in up.stdout and "(context sparkube)" in up.stdout
    # the addons put the S3 jars into the cluster's bucket, each checked (from the
    # session's loopback Maven repository, never Maven Central)
    assert re.search(r"37 checked jars in s3://\S+/jars/ \(37 uploaded", up.stderr), up.stderr
    # the real kubectl on the control plane applied the CNI manifest to the API server
    applied = [c for c in ssh_lab.hosts["control-plane"].calls() if c.startswith("kubectl ")]
    assert len(applied) == 1 and "apply --server-side" in applied[0]
    flannel = kube.get("/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-flannel-ds")
    assert flannel["metadata"]["managedFields"][0]["manager"] == "sparkube"
    # the addons phase wrote the jobs' settings and the monitoring addons
    settings = kube.get("/api/v1/namespaces/spark/configmaps/sparkube-cluster")["data"]
    assert settings["bucket"].startswith("sparkube-sparkube-") and settings["workers"] == str(
        workers
    )
    assert float(settings["worker_usd_per_hour"]) > 0
    assert kube.exists("/apis/apps/v1/namespaces/monitoring/deployments/kube-opex-analytics")
    assert kube.exists("/apis/apps/v1/namespaces/spark/deployments/spark-history")
    # ... and sparkube's controller, its code put in the bucket first (pip installed its
    # packages from the tests' wheelhouse: PIP_NO_INDEX)
    assert kube.exists("/apis/apps/v1/namespaces/sparkube-system/deployments/sparkube-controller")
    assert re.search(r"controller +code \w{12} \+ \d+ packages .* \(2 uploaded", up.stderr)
    assert not kube.exists("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")
    status = json.loads(cli("status", "-o", "json", env=env).stdout)
    assert status["phases_done"][:3] == ["infra", "nodes", "kubernetes"]
    assert status["phases_pending"] == []

    printed = cli("kubeconfig", env=env)
    assert printed.exit_code == 0
    kc = yaml.safe_load((cdir / "kubeconfig").read_text())
    assert kc["current-context"] == "sparkube"

    ok = cli("ssh", "worker-1", "--", "true", env=env)
    assert ok.exit_code == 0, ok.stderr
    failing = cli("ssh", "--", "sh", "-c", "exit 3", env=env)
    assert failing.exit_code == 3

    # re-running resumes: nothing initialised or joined again
    counter = CallCounter()
    with observe_calls(counter):
        again = cli("up", "--allow-cidr", CIDR, "--workers", str(workers), env=env)
    assert again.exit_code == 0, again.stderr
    assert counter.writes() == {}  # no AWS write, phases done not recorded again
    assert "control plane already up" in again.stderr
    inits = [c for c in ssh_lab.hosts["control-plane"].calls() if c.startswith("kubeadm init")]
    assert len(inits) == 1
