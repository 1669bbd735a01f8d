"""Preparation check parsing, host-key store and fan-out failure reports (no SSH)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sparkube.errors import NodeError
from sparkube.nodes.fanout import FanOut, NodeCommandError
from sparkube.nodes.hostkeys import HostKeyStore
from sparkube.nodes.phase import check_command, parse_check_output

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGugPjOVydVHyUXBQLQZGh+I+25taEBOgv7nAL117b+F"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHU9Ax4DouBfHbfXCkhgo1Uf9SkTC19Bn7P+YGXd5WYG"


def test_check_output_parsing() -> None:
    facts = parse_check_output(
        "worker-1", "prepare=0\r\nkubeadm=v1.36.4\ncontainerd=2.2.1\nnoise line\n"
    )
    assert facts.ready and facts.prepare_status == 0
    assert facts.kubeadm_version == "v1.36.4" and facts.containerd_version == "2.2.1"
    pending = parse_check_output("worker-1", "prepare=pending\n")
    assert pending.prepare_status is None and not pending.ready
    failed = parse_check_output("w", "prepare=100\nproblem=swap is on\nproblem=kubelet missing\n")
    assert failed.prepare_status == 100
    assert failed.problems == ("swap is on", "kubelet missing")
    assert parse_check_output("w", "prepare=garbage\n").prepare_status == 255


def test_check_command_is_posix_sh() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(
        ["shellcheck", "-s", "sh", "-"], input=check_command(), text=True, capture_output=True
    )
    assert result.returncode == 0, result.stdout


def test_host_key_store_pins_and_replaces_per_instance(tmp_path: Path) -> None:
    store = HostKeyStore.for_cluster(tmp_path)
    assert store.get("worker-1", "i-1") is None
    store.pin("worker-1", KEY_A + " comment", "i-1")
    store.pin("worker-2", KEY_B, "i-2")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.get("worker-1", "i-1").key == KEY_A  # type: ignore[union-attr]
    # a replaced instance is fresh again (trust on first use), the same one is strict
    assert store.get("worker-1", "i-9") is None
    assert store.get("worker-1", "") is not None
    # OpenSSH-compatible lines, node name as host pattern (HostKeyAlias)
    lines = [ln for ln in store.path.read_text().splitlines() if not ln.startswith("#")]
    assert lines[0].startswith("worker-1 ssh-ed25519 ")
    assert store.forget("worker-1") and store.get("worker-1") is None
    message = store.mismatch("worker-2", "10.0.0.5").message
    assert "worker-2" in message and str(store.path) in message


def test_fanout_failures_name_every_node_with_its_tail() -> None:
    out: FanOut[int] = FanOut(values={"worker-1": 1})
    out.raise_for_failures("Joining")  # nothing failed: no error
    out.failures["worker-10"] = NodeCommandError("kubeadm join exited 1", node="worker-10",
                                                 detail="line a\nline b")  # fmt: skip
    out.failures["worker-2"] = NodeError("timed out")
    with pytest.raises(NodeError) as err:
        out.raise_for_failures("Joining the cluster")
    assert "2 nodes (worker-2, worker-10)" in err.value.message
    assert "[worker-10] kubeadm join exited 1" in (err.value.detail or "")
    assert "line b" in (err.value.detail or "")
    single: FanOut[int] = FanOut(failures={"worker-3": NodeError("boom", detail="tail")})
    with pytest.raises(NodeError) as err:
        single.raise_for_failures("Node preparation")
    assert err.value.message == (
        "Node preparation failed on worker-3: boom; fix the cause and run `sparkube up` "
        "again to retry it."
    )
    assert err.value.detail == "tail"
    named = NodeCommandError("kubeadm join exited with status 1 on worker-3", node="worker-3")
    with pytest.raises(NodeError) as err:
        FanOut[int](failures={"worker-3": named}).raise_for_failures("Joining the cluster")
    assert err.value.message.startswith(
        "Joining the cluster failed on worker-3: kubeadm join exited with status 1; fix"
    )
