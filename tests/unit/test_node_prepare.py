"""The boot-time preparation script: rendering, size, shellcheck and bash -n."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sparkube.nodes.prepare import USER_DATA_LIMIT, render, render_prepare_script
from sparkube.spec import ClusterSpec


def test_pins_the_kubernetes_minor_in_the_package_repository() -> None:
    text = render_prepare_script(ClusterSpec(kubernetes_version="1.37"))
    assert "@@" not in text
    assert 'K8S_MINOR="1.37"' in text
    assert 'K8S_APT="https://pkgs.k8s.io/core:/stable:/v1.37/deb/"' in text
    assert '"${K8S_APT}Release.key"' in text and "kubernetes-apt-keyring.gpg] $K8S_APT /" in text
    assert "apt-mark hold kubelet kubeadm kubectl" in text
    assert "gpg --dearmor --yes" in text  # second run must not fail without a TTY


def test_prepares_kernel_containerd_and_swap() -> None:
    text = render_prepare_script(ClusterSpec())
    for needle in (
        "swapoff -a",
        "modprobe overlay",
        "modprobe br_netfilter",
        "net.ipv4.ip_forward = 1",
        "net.bridge.bridge-nf-call-iptables = 1",
        "SystemdCgroup = true",
        "DPkg::Lock::Timeout=600",
        "prepare.done",
    ):
        assert needle in text, needle
    assert text.startswith("#!/bin/bash\n")


def test_fits_in_ec2_user_data() -> None:
    assert len(render_prepare_script(ClusterSpec(ttl="1d")).encode()) < USER_DATA_LIMIT


def test_render_refuses_missing_and_unsafe_values() -> None:
    with pytest.raises(KeyError):
        render("a @@X@@ b", {})
    with pytest.raises(ValueError):
        render("a @@X@@ b", {"X": "1; rm -rf /"})


@pytest.mark.parametrize("tool", ["bash", "shellcheck"])
def test_script_passes_static_checks(tool: str, tmp_path: Path) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian package {tool})")
    script = tmp_path / "prepare.sh"
    script.write_text(render_prepare_script(ClusterSpec(ttl="4h")))
    args = [tool, "-n", str(script)] if tool == "bash" else [tool, "-s", "bash", str(script)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
