"""Kubeconfig rewrite (names, server) and merge without clobbering."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from sparkube.env import Environment
from sparkube.errors import ClusterError
from sparkube.nodes.kubeconfig import (
    merge_into_user_config,
    merge_kubeconfig,
    rewrite_admin_kubeconfig,
    save_kubeconfig,
    server_url,
    user_kubeconfig_path,
)

ADMIN = """
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://10.0.1.23:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""

OTHER = """
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: https://prod.example.com}
- name: demo
  cluster: {server: https://old.example.com}
contexts:
- name: prod
  context: {cluster: prod, user: prod-user}
users:
- name: prod-user
  user: {token: xyz}
current-context: prod
"""


def test_rewrite_names_everything_after_the_cluster() -> None:
    out = yaml.safe_load(
        rewrite_admin_kubeconfig(ADMIN, cluster="demo", server=server_url("54.1.2.3"))
    )
    assert out["clusters"] == [
        {
            "name": "demo",
            "cluster": {
                "certificate-authority-data": "Q0E=",
                "server": "https://54.1.2.3:6443",
            },
        }
    ]
    assert out["users"][0]["name"] == "demo-admin"
    assert out["users"][0]["user"]["client-key-data"] == "S0VZ"
    assert out["contexts"] == [
        {"name": "demo", "context": {"cluster": "demo", "user": "demo-admin"}}
    ]
    assert out["current-context"] == "demo"


def test_rewrite_refuses_what_is_not_an_admin_conf() -> None:
    with pytest.raises(ClusterError):
        rewrite_admin_kubeconfig("just: text", cluster="demo", server="https://x:6443")
    with pytest.raises(ClusterError):
        rewrite_admin_kubeconfig(": : :", cluster="demo", server="https://x:6443")


def test_server_url_brackets_ipv6() -> None:
    assert server_url("2001:db8::1") == "https://[2001:db8::1]:6443"


def test_merge_keeps_other_entries_and_current_context() -> None:
    ours = rewrite_admin_kubeconfig(ADMIN, cluster="demo", server="https://54.1.2.3:6443")
    merged = yaml.safe_load(merge_kubeconfig(ours, OTHER))
    assert [c["name"] for c in merged["clusters"]] == ["prod", "demo"]
    demo = next(c for c in merged["clusters"] if c["name"] == "demo")
    assert demo["cluster"]["server"] == "https://54.1.2.3:6443"  # ours replaced the old one
    assert [c["name"] for c in merged["contexts"]] == ["prod", "demo"]
    assert [u["name"] for u in merged["users"]] == ["prod-user", "demo-admin"]
    assert merged["current-context"] == "prod"
    # merging twice changes nothing
    assert yaml.safe_load(merge_kubeconfig(ours, yaml.safe_dump(merged))) == merged


def test_merge_into_nothing_sets_our_context() -> None:
    ours = rewrite_admin_kubeconfig(ADMIN, cluster="demo", server="https://54.1.2.3:6443")
    merged = yaml.safe_load(merge_kubeconfig(ours, None))
    assert merged["current-context"] == "demo"


def test_merge_into_user_config_honours_kubeconfig_env(
    sparkube_env: Environment, tmp_path: Path
) -> None:
    ours = rewrite_admin_kubeconfig(ADMIN, cluster="demo", server="https://54.1.2.3:6443")
    saved = save_kubeconfig(sparkube_env, "demo", ours)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(OTHER)
    env = Environment(
        environ={**sparkube_env.environ, "KUBECONFIG": f"{target}:/nonexistent/other"},
        cwd=sparkube_env.cwd,
        interactive=False,
    )
    assert user_kubeconfig_path(env) == target
    assert merge_into_user_config(env, "demo") == target
    merged = yaml.safe_load(target.read_text())
    assert {c["name"] for c in merged["contexts"]} == {"prod", "demo"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_default_user_kubeconfig_is_in_home(sparkube_env: Environment) -> None:
    assert user_kubeconfig_path(sparkube_env) == Path(sparkube_env.environ["HOME"]) / ".kube/config"
