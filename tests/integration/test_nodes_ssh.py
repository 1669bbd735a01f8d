"""nodes + kubernetes phases against real OpenSSH servers in network namespaces.

The hosts run shims instead of kubeadm/apt-get/systemctl (tests/fixtures/sshshim.sh);
what matters here is what sparkube sends, in which order, to which node, and how it
copes with slow, failing, unreachable or impersonated nodes. The shim kubectl applies
manifests to the real test API server where a test gives it one
(``SshLab.serve_kube_api``); elsewhere it only checks that it was given manifests.

Why shims and not the real-node bed (tests/bed/, test_real_nodes.py): these tests look
at what a node was asked to do (every argv and stdin sparkube sent, in order: the
bootstrap token never in argv, the kubeconfig saved 0600, the reset after a
half-finished init) and make nodes misbehave on cue (booting, unreachable for a while,
a changed host key, a refused login, twelve of them at once); a real node can do
neither. A worker whose join fails once, on real nodes with the real kubeadm:
test_real_node_faults.py.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import yaml

from sparkube.env import Environment
from sparkube.errors import NodeError
from sparkube.model import ClusterInfo
from sparkube.nodes.hostkeys import HostKeyMismatch
from sparkube.nodes.phase import KEY_FILE, run_kubernetes_phase, run_nodes_phase, ssh_settings
from sparkube.nodes.prepare import render_prepare_script
from sparkube.progress import RecordingReporter
from sparkube.spec import ClusterSpec
from tests.fixtures.controlplane import KubeControlPlane
from tests.fixtures.sshhosts import SshLab

pytestmark = pytest.mark.integration


def _setup(
    lab: SshLab, env: Environment, *, workers: int = 3, boot: bool = True
) -> tuple[ClusterSpec, ClusterInfo]:
    spec = ClusterSpec(name="sparkube", workers=workers)
    lab.client_key(env.cluster_dir(spec.name, create=True) / KEY_FILE)
    cluster = lab.cluster(spec.name, workers=workers)
    if boot:
        for proc in lab.boot(render_prepare_script(spec)):
            assert proc.wait(60) == 0
    return spec, cluster


def _settings(lab: SshLab, env: Environment, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("boot_timeout", 20.0)
    kw.setdefault("connect_timeout", 3.0)
    kw.setdefault("retry_delay", 0.2)
    return ssh_settings(env, "sparkube", user=lab.user, **kw)


def _up(lab: SshLab, env: Environment, spec: ClusterSpec, cluster: ClusterInfo) -> str:
    settings = _settings(lab, env)
    run_nodes_phase(env=env, cluster=cluster, settings=settings, interval=0.2)
    return run_kubernetes_phase(
        spec=spec, env=env, cluster=cluster, settings=settings, readiness=None
    )


def _kubeadm_calls(lab: SshLab, host: str) -> list[str]:
    return [c for c in lab.hosts[host].calls() if c.startswith("kubeadm ")]


def test_happy_path_one_control_plane_three_workers(
    ssh_lab: SshLab, sparkube_env: Environment
) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env)
    reporter = RecordingReporter()
    settings = _settings(ssh_lab, sparkube_env)
    summary = run_nodes_phase(
        env=sparkube_env, cluster=cluster, settings=settings, reporter=reporter, interval=0.2
    )
    assert summary == "4/4 prepared (containerd 2.2.1, kubelet 1.36.4)"
    summary = run_kubernetes_phase(
        spec=spec, env=sparkube_env, cluster=cluster, settings=settings,
        reporter=reporter, readiness=None,
    )  # fmt: skip
    assert summary == "control plane initialised, 3/3 workers joined"

    # the boot script really ran against the shims: packages pinned and held
    cp_calls = ssh_lab.hosts["control-plane"].calls()
    assert "apt-mark hold kubelet kubeadm kubectl" in cp_calls
    assert any("pkgs.k8s.io/core:/stable:/v1.36/deb/Release.key" in c for c in cp_calls)
    # kubeadm init once, from the rendered config; CNI applied server-side from stdin
    init = [c for c in _kubeadm_calls(ssh_lab, "control-plane") if c.startswith("kubeadm init")]
    assert len(init) == 1 and "--config" in init[0]
    assert any(c.startswith("kubectl ") and "--server-side" in c for c in cp_calls)
    config = (ssh_lab.hosts["control-plane"].root / "etc/sparkube/kubeadm-init.yaml").read_text()
    docs = list(yaml.safe_load_all(config))
    assert docs[0]["localAPIEndpoint"]["advertiseAddress"] == cluster.control_plane().private_ip  # type: ignore[union-attr]
    assert "54.214.0.10" in docs[1]["apiServer"]["certSANs"]
    # every worker joined with a config file; the token never appeared in argv
    for worker in ("worker-1", "worker-2", "worker-3"):
        joins = [c for c in _kubeadm_calls(ssh_lab, worker) if c.startswith("kubeadm join")]
        assert joins == [
            f"kubeadm join --config {ssh_lab.hosts[worker].root}/etc/sparkube/kubeadm-join.yaml"
        ]
        assert (ssh_lab.hosts[worker].root / "etc/kubernetes/kubelet.conf").exists()
        assert not (ssh_lab.hosts[worker].root / "etc/sparkube/kubeadm-join.yaml").exists()
        assert not any("abcdef.0123456789abcdef" in c for c in ssh_lab.hosts[worker].calls())
    # kubeconfig saved 0600, renamed, pointing at the public address
    kc_path = sparkube_env.cluster_dir("sparkube") / "kubeconfig"
    assert stat.S_IMODE(kc_path.stat().st_mode) == 0o600
    kc = yaml.safe_load(kc_path.read_text())
    assert kc["current-context"] == "sparkube"
    assert kc["clusters"][0]["cluster"]["server"] == "https://54.214.0.10:6443"
    # host keys pinned for every node
    pinned = (sparkube_env.cluster_dir("sparkube") / "known_hosts").read_text()
    assert all(name in pinned for name in ("control-plane", "worker-1", "worker-3"))
    steps = [e for e in reporter.events if e[0] == "step"]
    assert ("step", "kubernetes", "worker-2", "joined") in steps

    # re-running resumes: nothing is initialised or joined twice
    assert _up(ssh_lab, sparkube_env, spec, cluster) == (
        "control plane already up, 3/3 workers joined"
    )
    assert len([c for c in _kubeadm_calls(ssh_lab, "control-plane") if "init" in c]) == 1
    assert len([c for c in _kubeadm_calls(ssh_lab, "worker-1") if "join" in c]) == 1


@pytest.mark.parametrize(
    "left",
    [
        ("etc/kubernetes/pki/ca.crt", "etc/kubernetes/manifests/kube-apiserver.yaml"),
        ("etc/kubernetes/pki/ca.crt", "etc/kubernetes/admin.conf"),  # API never came up
    ],
    ids=["before-kubeconfig", "api-server-never-up"],
)
def test_a_kubeadm_init_that_stopped_midway_is_reset_then_run_again(
    ssh_lab: SshLab, sparkube_env: Environment, left: tuple[str, ...]
) -> None:
    """What a real init leaves when it dies midway (e.g. the API server never became
    healthy): kubeadm's preflight refuses a second init until ``kubeadm reset``."""
    spec, cluster = _setup(ssh_lab, sparkube_env, workers=1)
    settings = _settings(ssh_lab, sparkube_env)
    run_nodes_phase(env=sparkube_env, cluster=cluster, settings=settings, interval=0.2)
    host = ssh_lab.hosts["control-plane"]
    for path in left:  # owned by the hosts' user, as root's files are to sudo on a node
        (host.root / path).parent.mkdir(parents=True, exist_ok=True)
        (host.root / path).write_text("left by an interrupted init\n")
        for made in (host.root / path, *(host.root / path).parents):
            if made == host.root:
                break
            os.chown(made, ssh_lab.uid, ssh_lab.gid)
    (host.dir / "apiserver.down").touch()  # whatever admin.conf says, nothing answers
    reporter = RecordingReporter()
    summary = run_kubernetes_phase(
        spec=spec, env=sparkube_env, cluster=cluster, settings=settings,
        reporter=reporter, readiness=None,
    )  # fmt: skip
    assert summary == "control plane initialised, 1/1 workers joined"
    verbs = [c.split()[1] for c in _kubeadm_calls(ssh_lab, "control-plane")]
    assert [v for v in verbs if v in ("reset", "init")] == ["reset", "init"]
    assert ("step", "kubernetes", "control-plane",
            "an earlier kubeadm init stopped midway: reset") in reporter.events  # fmt: skip
    # sparkube noted the init as done: resuming does not reset or init again, even
    # while the API server is down (that is the addons phase's wait, not a reason to reset)
    assert (host.root / "etc/sparkube/kubeadm-init.done").exists()
    assert _up(ssh_lab, sparkube_env, spec, cluster) == (
        "control plane already up, 1/1 workers joined"
    )
    verbs = [c.split()[1] for c in _kubeadm_calls(ssh_lab, "control-plane")]
    assert [v for v in verbs if v in ("reset", "init")] == ["reset", "init"]


def test_a_manifest_the_api_server_rejects_fails_the_kubernetes_phase(
    ssh_lab: SshLab,
    sparkube_env: Environment,
    kube: KubeControlPlane,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CNI manifest goes through the real kubectl to the real API server, so a broken
    one stops the phase with the server's reason. The manifest is broken by replacing
    sparkube's own renderer (our boundary) with one whose DaemonSet selector does not
    match its pod labels, which only the API server's validation catches."""
    import sparkube.nodes.phase as phase
    from sparkube.nodes.cni import render_cni_manifest

    def broken(spec: ClusterSpec) -> str:
        docs = list(yaml.safe_load_all(render_cni_manifest(spec)))
        (ds,) = [d for d in docs if d and d["kind"] == "DaemonSet"]
        ds["spec"]["selector"] = {"matchLabels": {"app": "not-flannel"}}
        return yaml.safe_dump_all(docs)

    monkeypatch.setattr(phase, "render_cni_manifest", broken)
    spec, cluster = _setup(ssh_lab, sparkube_env, workers=1)
    ssh_lab.serve_kube_api(ssh_lab.hosts["control-plane"], kube.kubeconfig, kube.kubectl_path)
    with pytest.raises(NodeError) as err:
        _up(ssh_lab, sparkube_env, spec, cluster)
    assert "applying the flannel manifest" in err.value.message
    assert "selector" in (err.value.detail or "") and "does not match" in (err.value.detail or "")
    assert not kube.exists("/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-flannel-ds")
    joins = [c for c in _kubeadm_calls(ssh_lab, "worker-1") if c.startswith("kubeadm join")]
    assert joins == []  # nothing joins a cluster without its network

    monkeypatch.undo()  # the real manifest: applied for real, then the worker joins
    assert _up(ssh_lab, sparkube_env, spec, cluster) == (
        "control plane already up, 1/1 workers joined"
    )
    assert kube.exists("/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-flannel-ds")


def test_a_node_whose_preparation_failed_is_named_with_its_log_tail(
    ssh_lab: SshLab, sparkube_env: Environment
) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env, boot=False)
    ssh_lab.hosts["worker-3"].fail_once("apt-get", "kubelet", "E: Unable to locate package kubelet")
    procs = ssh_lab.boot(render_prepare_script(spec))
    assert sorted(p.wait(60) for p in procs) == [0, 0, 0, 1]
    with pytest.raises(NodeError) as err:
        run_nodes_phase(
            env=sparkube_env, cluster=cluster, settings=_settings(ssh_lab, sparkube_env),
            interval=0.2,
        )  # fmt: skip
    assert "worker-3" in err.value.message and "exit status 1" in err.value.message
    assert "E: Unable to locate package kubelet" in (err.value.detail or "")


def test_waits_for_a_host_that_is_unreachable_for_a_while(
    ssh_lab: SshLab, sparkube_env: Environment
) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env)
    ssh_lab.unreachable_for(ssh_lab.hosts["worker-1"], 4.0)
    started = time.monotonic()
    assert _up(ssh_lab, sparkube_env, spec, cluster).endswith("3/3 workers joined")
    assert time.monotonic() - started >= 3.5


def test_a_host_still_booting_is_waited_for(ssh_lab: SshLab, sparkube_env: Environment) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env, boot=False)
    ssh_lab.hosts["control-plane"].set_delay("apt-get", 1.0)  # boot takes a few seconds
    procs = ssh_lab.boot(render_prepare_script(spec))
    summary = run_nodes_phase(
        env=sparkube_env, cluster=cluster, settings=_settings(ssh_lab, sparkube_env),
        interval=0.2,
    )  # fmt: skip
    assert summary.startswith("4/4 prepared")
    assert all(p.poll() == 0 for p in procs)


def test_a_changed_host_key_is_refused(ssh_lab: SshLab, sparkube_env: Environment) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env)
    _up(ssh_lab, sparkube_env, spec, cluster)
    ssh_lab.change_host_key(ssh_lab.hosts["worker-2"])
    before = len(ssh_lab.hosts["worker-2"].calls())
    with pytest.raises(NodeError) as err:
        run_nodes_phase(
            env=sparkube_env, cluster=cluster, settings=_settings(ssh_lab, sparkube_env)
        )
    assert "worker-2" in err.value.message
    assert isinstance(err.value.__cause__, HostKeyMismatch)
    assert "known_hosts" in err.value.__cause__.message
    assert len(ssh_lab.hosts["worker-2"].calls()) == before  # nothing ran there


def test_authentication_failure_names_the_key(
    ssh_lab: SshLab, sparkube_env: Environment, tmp_path: Path
) -> None:
    _, cluster = _setup(ssh_lab, sparkube_env, workers=1)
    other = tmp_path / "other_key"
    import asyncssh

    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(other))
    os.chmod(other, 0o600)
    settings = _settings(ssh_lab, sparkube_env, key_path=other)
    with pytest.raises(NodeError) as err:
        run_nodes_phase(env=sparkube_env, cluster=cluster, settings=settings)
    assert str(other) in err.value.detail or str(other) in err.value.message  # type: ignore[operator]
    assert "authentication failed" in (err.value.detail or "") + err.value.message


@pytest.mark.slow
def test_twelve_nodes(ssh_lab: SshLab, sparkube_env: Environment) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env, workers=11)
    assert _up(ssh_lab, sparkube_env, spec, cluster) == (
        "control plane initialised, 11/11 workers joined"
    )


def test_preparation_is_idempotent(ssh_lab: SshLab, sparkube_env: Environment) -> None:
    spec, cluster = _setup(ssh_lab, sparkube_env, workers=1)  # first boot done
    host = ssh_lab.hosts["worker-1"]
    first = host.calls()
    for proc in ssh_lab.boot(render_prepare_script(spec)):  # the script runs again
        assert proc.wait(60) == 0
    second = host.calls()[len(first) :]
    assert "install kubelet kubeadm kubectl" in " ".join(first)
    assert "install kubelet kubeadm kubectl" not in " ".join(second)
    assert "systemctl restart containerd" not in second
    assert "systemctl restart containerd" in first
    assert (host.root / "var/lib/sparkube/prepare.done").read_text().strip() == "0"
    conf = (host.root / "etc/containerd/config.toml").read_text()
    assert "SystemdCgroup = true" in conf and "SystemdCgroup = false" not in conf
    summary = run_nodes_phase(
        env=sparkube_env, cluster=cluster, settings=_settings(ssh_lab, sparkube_env)
    )
    assert summary.startswith("2/2 prepared")
