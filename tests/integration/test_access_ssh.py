"""``sparkube ssh`` (OpenSSH with the cluster key and pinned host keys) and
``sparkube kubeconfig`` against real sshd hosts in network namespaces."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import yaml

from sparkube.env import Environment
from sparkube.errors import UsageError
from sparkube.nodes.access import ensure_pinned, pick_node, ssh_argv
from sparkube.nodes.phase import KEY_FILE, ssh_settings
from tests.fixtures.common import CliResult
from tests.fixtures.sshhosts import SshLab

pytestmark = pytest.mark.integration


def test_ssh_runs_a_command_with_pinned_host_key(
    ssh_lab: SshLab, sparkube_env: Environment
) -> None:
    ssh_lab.client_key(sparkube_env.cluster_dir("sparkube", create=True) / KEY_FILE)
    cluster = ssh_lab.cluster("sparkube", workers=1)
    settings = ssh_settings(sparkube_env, "sparkube", user=ssh_lab.user, boot_timeout=10.0)
    node = pick_node(cluster, None)
    assert node.name == "control-plane"
    with pytest.raises(UsageError):
        pick_node(cluster, "worker-9")

    ensure_pinned(node, settings)  # first contact: trust on first use, recorded
    argv = ssh_argv(node, settings, ["echo", "hello  world", "$SPARKUBE_TEST_HOST"])
    assert "StrictHostKeyChecking=yes" in argv and "HostKeyAlias=control-plane" in argv
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello  world $SPARKUBE_TEST_HOST\n"  # arguments kept verbatim

    ssh_lab.change_host_key(ssh_lab.hosts["control-plane"])
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255
    assert "host key" in refused.stderr.lower()


def test_kubeconfig_command_prints_and_merges(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    missing = cli("kubeconfig")
    assert missing.exit_code == 2 and "sparkube up" in missing.stderr  # no such cluster here
    from sparkube.nodes.kubeconfig import save_kubeconfig

    path = save_kubeconfig(
        sparkube_env,
        "sparkube",
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "sparkube", "cluster": {"server": "https://x:6443"}}],
                "users": [{"name": "sparkube-admin", "user": {}}],
                "contexts": [
                    {
                        "name": "sparkube",
                        "context": {"cluster": "sparkube", "user": "sparkube-admin"},
                    }
                ],
                "current-context": "sparkube",
            }
        ),
    )
    printed = cli("kubeconfig")
    assert printed.exit_code == 0 and printed.stdout.strip() == str(path)
    home_config = sparkube_env.cwd.parent / "home" / ".kube" / "config"
    home_config.parent.mkdir(parents=True)
    home_config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: other\n"
        "contexts: [{name: other, context: {cluster: other, user: other}}]\n"
        "clusters: [{name: other, cluster: {server: 'https://other:6443'}}]\n"
        "users: [{name: other, user: {token: t}}]\n"
    )
    merged = cli("kubeconfig", "--merge")
    assert merged.exit_code == 0, merged.stderr
    doc = yaml.safe_load(home_config.read_text())
    assert {c["name"] for c in doc["contexts"]} == {"other", "sparkube"}
    assert doc["current-context"] == "other"
