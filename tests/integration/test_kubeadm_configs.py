"""The kubeadm configs sparkube renders, checked by the real kubeadm (issue 11).

The SSH hosts' ``kubeadm`` is a shim that accepts any file, so a config kubeadm would
reject could pass every other test. Here the kubeadm built by ``tools/kube/build.sh``
(same Kubernetes module and version as the test control plane) checks them:

- ``kubeadm config validate`` on the init and the join config;
- ``kubeadm init --dry-run`` on the init config: it generates the certificates and
  prints every file it would write (static pod manifests, kubelet config), which the
  test compares with what sparkube asked for. The join command that dry run prints is
  parsed by sparkube and turned into the join config that is validated.

``kubeadm init --dry-run`` writes its certificates under ``/etc/kubernetes/tmp`` and
looks up the node's hostname, so it runs in its own mount and network namespace
(``unshare``, root) with fresh tmpfs on /etc, /var/lib and /run: nothing on this
machine changes and it has no network at all. Preflight errors (no container runtime,
no kubelet, swap, ...) are ignored: this machine is not a node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sparkube.model import CONTROL_PLANE, WORKER, Node
from sparkube.nodes.kubeadm import (
    JoinCommand,
    parse_join_command,
    render_init_config,
    render_join_config,
    render_self_join_template,
)
from sparkube.spec import ClusterSpec
from tests.fixtures.controlplane import binaries_problem, kube_bin_dir

pytestmark = pytest.mark.integration

CP = Node(
    name="control-plane",
    role=CONTROL_PLANE,
    public_ip="54.214.0.10",
    private_ip="10.0.1.23",
    public_dns="ec2-54-214-0-10.us-west-2.compute.amazonaws.com",
)
WORKER_NODE = Node(name="worker-1", role=WORKER, public_ip="54.214.0.11", private_ip="10.0.1.24")


@pytest.fixture(scope="module")
def kubeadm() -> Path:
    bin_dir = kube_bin_dir()
    problem = binaries_problem(bin_dir, check_stamp=not os.environ.get("SPARKUBE_KUBE_BIN_DIR"))
    if problem:
        pytest.skip(problem)
    return bin_dir / "kubeadm"


def run_kubeadm(kubeadm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubeadm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def kubeadm_version(kubeadm: Path) -> str:
    # what sparkube's kubernetes phase reads on the control plane before rendering
    return run_kubeadm(kubeadm, "version", "-o", "short").stdout.strip()


def validate(kubeadm: Path, config: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(config)
    res = run_kubeadm(kubeadm, "config", "validate", "--config", str(path))
    assert res.returncode == 0, f"kubeadm rejects sparkube's {name}:\n{res.stderr}{res.stdout}"
    assert res.stdout.strip() == "ok"


def init_dry_run(kubeadm: Path, config: Path) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("kubeadm init --dry-run runs in its own mount/network namespace: needs root")
    script = (
        "set -e; for d in /etc /var/lib /run; do mount -t tmpfs tmpfs $d; done; "
        'exec "$0" init --dry-run --config "$1" --ignore-preflight-errors=all'
    )
    isolated = ["unshare", "--mount", "--net", "--propagation", "private"]
    return subprocess.run(
        [*isolated, "sh", "-c", script, str(kubeadm), str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def would_write(output: str, path: str) -> str:
    """The content kubeadm's dry run says it would write to ``path``."""
    marker = f'[dryrun] Would write file "{path}" with content:\n'
    assert marker in output, f"kubeadm's dry run does not write {path}"
    lines = []
    for line in output.split(marker, 1)[1].splitlines():
        if line.startswith("["):  # the next "[phase] ..." line
            break
        lines.append(line)
    return "\n".join(lines)


def test_kubeadm_validates_the_init_and_join_configs(kubeadm: Path, tmp_path: Path) -> None:
    version = kubeadm_version(kubeadm)
    assert version.startswith("v1.")
    init = render_init_config(ClusterSpec(name="demo"), CP, kubernetes_version=version)
    validate(kubeadm, init, tmp_path, "kubeadm-init.yaml")
    join = JoinCommand("10.0.1.23:6443", "abcdef.0123456789abcdef", ("sha256:" + "ab" * 32,))
    validate(kubeadm, render_join_config(join, WORKER_NODE), tmp_path, "kubeadm-join.yaml")
    # the template a worker of the group fills in itself (sparkube-join.py's render)
    filled = render_self_join_template()
    for field, value in {
        "@ENDPOINT@": join.endpoint, "@TOKEN@": join.token,
        "@CA_CERT_HASH@": join.ca_cert_hashes[0], "@NODE_NAME@": "i-0123456789abcdef0",
        "@NODE_IP@": "10.0.1.25", "@PROVIDER_ID@": "aws:///us-west-2a/i-0123456789abcdef0",
        "@MARKET@": "spot",
    }.items():  # fmt: skip
        filled = filled.replace(field, value)
    validate(kubeadm, filled, tmp_path, "kubeadm-self-join.yaml")


def test_kubeadm_rejects_a_broken_config(kubeadm: Path, tmp_path: Path) -> None:
    """The check can fail: a pod subnet kubeadm cannot parse is refused."""
    init = render_init_config(ClusterSpec(), CP, kubernetes_version=kubeadm_version(kubeadm))
    docs = list(yaml.safe_load_all(init))
    docs[1]["networking"]["podSubnet"] = "10.244.0.0/33"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    res = run_kubeadm(kubeadm, "config", "validate", "--config", str(path))
    assert res.returncode != 0
    assert "podSubnet" in res.stderr


def test_kubeadm_init_dry_run_builds_the_cluster_sparkube_asked_for(
    kubeadm: Path, tmp_path: Path
) -> None:
    spec = ClusterSpec(name="demo", pod_cidr="10.32.0.0/16")
    config = tmp_path / "kubeadm-init.yaml"
    config.write_text(render_init_config(spec, CP, kubernetes_version=kubeadm_version(kubeadm)))
    res = init_dry_run(kubeadm, config)
    out = res.stdout
    assert res.returncode == 0, f"kubeadm init --dry-run failed:\n{res.stderr}{out[-3000:]}"
    assert "Your Kubernetes control-plane has initialized successfully" in out

    # the API server certificate covers every address sparkube connects to
    cert_line = next(ln for ln in out.splitlines() if "apiserver serving cert is signed" in ln)
    for name in ("control-plane", "ec2-54-214-0-10.us-west-2.compute.amazonaws.com"):
        assert name in cert_line.split(" and IPs ")[0], cert_line
    for ip in ("10.0.1.23", "54.214.0.10", "10.96.0.1"):
        assert ip in cert_line.split(" and IPs ")[1], cert_line

    apiserver = would_write(out, "/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert "--advertise-address=10.0.1.23" in apiserver
    assert "--secure-port=6443" in apiserver
    assert "--service-cluster-ip-range=10.96.0.0/12" in apiserver
    controller = would_write(out, "/etc/kubernetes/manifests/kube-controller-manager.yaml")
    assert "--cluster-cidr=10.32.0.0/16" in controller
    assert "--cluster-name=demo" in controller
    kubelet = yaml.safe_load(would_write(out, "/var/lib/kubelet/config.yaml"))
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["serverTLSBootstrap"] is True
    assert kubelet["containerRuntimeEndpoint"] == "unix:///var/run/containerd/containerd.sock"
    flags = would_write(out, "/var/lib/kubelet/kubeadm-flags.env")
    assert "--node-ip=10.0.1.23" in flags

    # the join command kubeadm prints is one sparkube parses; its join config validates
    join = parse_join_command(out)
    assert join.endpoint == "10.0.1.23:6443"
    validate(kubeadm, render_join_config(join, WORKER_NODE), tmp_path, "kubeadm-join.yaml")
