"""Where nodes get Kubernetes packages and images: the ``kubernetes_apt_repo`` and
``registry_mirrors`` settings (spec, flags, environment, validation, tags) and what
prepare.sh makes of them (the apt source, containerd's ``hosts.toml`` files and the CRI's
``config_path`` in both containerd config layouts), and the workers' image pre-pull."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sparkube.aws import settings, userdata
from sparkube.env import Environment
from sparkube.errors import ConfigError
from sparkube.nodes.prepare import (
    full_image_ref,
    mirror_hosts,
    prepull_image,
    render_prepare_script,
)
from sparkube.spec import ClusterSpec, load_spec

# The registry section of `containerd config default` as containerd 1.6 (Debian 12,
# config version 2) and containerd 2.x (config version 3) print it.
CONTAINERD_1 = """version = 2
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

      [plugins."io.containerd.grpc.v1.cri".registry.auths]

      [plugins."io.containerd.grpc.v1.cri".registry.configs]
"""
CONTAINERD_2 = """version = 3
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ''

    [plugins.'io.containerd.cri.v1.images'.image_decryption]
      key_model = 'node'
  [plugins.'io.containerd.transfer.v1.local']
    config_path = ''
"""

# containerd 2.2's default names two folders (containerd issue 12636: mirrors ignored).
CONTAINERD_2_2 = CONTAINERD_2.replace(
    "config_path = ''\n\n", "config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n\n", 1
)
# a config whose registry table has no config_path line
CONTAINERD_2_BARE = CONTAINERD_2.replace("      config_path = ''\n\n", "\n", 1)


def make_env(tmp_path: Path, **environ: str) -> Environment:
    return Environment(environ={"HOME": str(tmp_path), **environ}, cwd=tmp_path, interactive=False)


def test_defaults_are_the_real_places(tmp_path: Path) -> None:
    spec = load_spec(env=make_env(tmp_path))
    assert spec.kubernetes_apt_url == "https://pkgs.k8s.io/core:/stable:/v1.36/deb/"
    assert spec.registry_mirrors == {}
    text = render_prepare_script(spec)
    assert 'K8S_APT="https://pkgs.k8s.io/core:/stable:/v1.36/deb/"' in text
    assert 'REGISTRY_MIRRORS=""' in text
    assert (
        settings.settings_tags(spec)
        .keys()
        .isdisjoint({"sparkube:kubernetes-apt-repo", "sparkube:registry-mirrors"})
    )


def test_settings_from_flags_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "sparkube.yaml").write_text(
        "kubernetes_apt_repo: https://apt.example.com/k8s/v{minor}\n"
        "registry_mirrors:\n"
        "  docker.io: https://harbor.example.com/dockerhub-proxy/\n"
        "  registry.k8s.io: https://mirror.example.com:5000\n"
    )
    spec = load_spec(env=make_env(tmp_path))
    assert spec.kubernetes_apt_url == "https://apt.example.com/k8s/v1.36/"
    assert spec.registry_mirrors == {
        "docker.io": "https://harbor.example.com/dockerhub-proxy",
        "registry.k8s.io": "https://mirror.example.com:5000",
    }
    env = make_env(tmp_path, SPARKUBE_REGISTRY_MIRRORS="ghcr.io=https://m.example.com")
    assert load_spec(env=env).registry_mirrors == {"ghcr.io": "https://m.example.com"}
    flagged = load_spec(
        env=env,
        flags={
            "registry_mirrors": [
                "_default=https://all.example.com",
                "Quay.io=https://q.example.com",
            ]
        },
    )
    assert flagged.registry_mirrors == {
        "_default": "https://all.example.com",
        "quay.io": "https://q.example.com",
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            {"kubernetes_apt_repo": "http://apt.example.com/"},
            r"option --kubernetes-apt-repo: 'http://apt.example.com/' is not an https URL",
        ),
        (
            {"kubernetes_apt_repo": "https://apt.example.com/v{major}/"},
            r"is not an https URL of an apt repository like .*\{minor\} stands for",
        ),
        (
            {"kubernetes_apt_repo": 'https://apt.example.com/"; rm -rf /'},
            r"is not an https URL",
        ),
        (
            {"registry_mirrors": ["docker.io"]},
            r"option --registry-mirror: 'docker.io' is not REGISTRY=URL like registry.k8s.io=",
        ),
        (
            {"registry_mirrors": ["docker.io=http://mirror.example.com"]},
            r"the mirror of docker.io, 'http://mirror.example.com', is not an https URL",
        ),
        (
            {"registry_mirrors": ["https://docker.io=https://mirror.example.com"]},
            r"'https://docker.io' is not a registry host like docker.io",
        ),
        (
            {"registry_mirrors": ["docker.io=https://mirror.example.com/a?b=c"]},
            r"is not an https URL",
        ),
    ],
)
def test_bad_values_name_the_option_and_the_fix(
    tmp_path: Path, flags: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_spec(env=make_env(tmp_path), flags=flags)
    assert str(info.value).count("\n") == 0


def test_cli_refuses_a_bad_mirror_with_exit_2(cli: Any, sparkube_env: Environment) -> None:
    result = cli("plan", "--registry-mirror", "docker.io=ftp://mirror.example.com")
    assert result.exit_code == 2, result.stderr
    assert "option --registry-mirror" in result.stderr and "is not an https URL" in result.stderr
    result = cli("up", "--kubernetes-apt-repo", "pkgs.example.com", "--yes")
    assert result.exit_code == 2, result.stderr
    assert "option --kubernetes-apt-repo: 'pkgs.example.com' is not an https URL" in result.stderr


def test_mirror_host_urls() -> None:
    spec = ClusterSpec(
        registry_mirrors={
            "docker.io": "https://harbor.example.com/dockerhub-proxy",
            "ghcr.io": "https://ecr.example.com/v2/ghcr",
            "registry.k8s.io": "https://mirror.example.com:5000/",
        }
    )
    assert mirror_hosts(spec) == {
        "docker.io": "https://harbor.example.com/v2/dockerhub-proxy",
        "ghcr.io": "https://ecr.example.com/v2/ghcr",
        "registry.k8s.io": "https://mirror.example.com:5000",
    }


def _run_mirror_block(tmp_path: Path, spec: ClusterSpec, config: str) -> str:
    """prepare.sh's registry-mirror block, run by bash against a containerd config."""
    text = render_prepare_script(spec)
    block = text[text.index("# --- registry mirrors") : text.index("# --- end of registry mirrors")]
    head = "\n".join(line for line in text.splitlines() if line.startswith("REGISTRY_MIRRORS="))
    (tmp_path / "etc/containerd").mkdir(parents=True)
    conf = tmp_path / "etc/containerd/config.toml"
    Path(f"{conf}.new").write_text(config)
    script = f'set -euo pipefail\nROOT="{tmp_path}"\nCONF="{conf}"\n{head}\n{block}'
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
    return Path(f"{conf}.new").read_text()


@pytest.mark.parametrize(
    "config",
    [CONTAINERD_1, CONTAINERD_2, CONTAINERD_2_2, CONTAINERD_2_BARE],
    ids=["containerd-1.6", "containerd-2.0", "containerd-2.2", "no-config-path-line"],
)
def test_mirrors_render_hosts_toml_and_config_path(tmp_path: Path, config: str) -> None:
    spec = ClusterSpec(
        registry_mirrors={
            "docker.io": "https://harbor.example.com/dockerhub-proxy",
            "registry.k8s.io": "https://mirror.example.com:5000",
            "registry.example.com:5000": "https://mirror.example.com",
            "_default": "https://all.example.com",
        }
    )
    out = tomllib.loads(_run_mirror_block(tmp_path, spec, config))
    assert CONTAINERD_2_2 != CONTAINERD_2 != CONTAINERD_2_BARE
    if config is CONTAINERD_1:
        registry = out["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    else:
        registry = out["plugins"]["io.containerd.cri.v1.images"]["registry"]
        # only the CRI's registry table changes
        assert out["plugins"]["io.containerd.transfer.v1.local"]["config_path"] == ""
    assert registry["config_path"] == "/etc/containerd/certs.d"
    certs = tmp_path / "etc/containerd/certs.d"
    hosts = {d.name: tomllib.loads((d / "hosts.toml").read_text()) for d in certs.iterdir()}
    assert hosts == {
        "docker.io": {
            "server": "https://registry-1.docker.io",
            "host": {
                "https://harbor.example.com/v2/dockerhub-proxy": {
                    "capabilities": ["pull", "resolve"],
                    "override_path": True,
                }
            },
        },
        "registry.k8s.io": {
            "server": "https://registry.k8s.io",
            "host": {"https://mirror.example.com:5000": {"capabilities": ["pull", "resolve"]}},
        },
        "registry.example.com:5000": {
            "server": "https://registry.example.com:5000",
            "host": {"https://mirror.example.com": {"capabilities": ["pull", "resolve"]}},
        },
        "_default": {"host": {"https://all.example.com": {"capabilities": ["pull", "resolve"]}}},
    }


def test_no_mirrors_leave_containerd_alone(tmp_path: Path) -> None:
    assert _run_mirror_block(tmp_path, ClusterSpec(), CONTAINERD_1) == CONTAINERD_1
    assert not (tmp_path / "etc/containerd/certs.d").exists()


def test_a_config_without_the_registry_table_fails_the_preparation(tmp_path: Path) -> None:
    spec = ClusterSpec(registry_mirrors={"docker.io": "https://m.example.com"})
    with pytest.raises(subprocess.CalledProcessError) as info:
        _run_mirror_block(tmp_path, spec, "version = 2\n")
    assert "could not set the registry config_path" in info.value.stderr


def test_custom_apt_repository_is_recorded_as_used(tmp_path: Path) -> None:
    spec = ClusterSpec(
        kubernetes_apt_repo="https://apt.example.com/k8s/v{minor}/deb",
        registry_mirrors={
            "docker.io": "https://m.example.com",
            "ghcr.io": "https://g.example.com/p",
        },
    )
    text = render_prepare_script(spec)
    assert 'K8S_APT="https://apt.example.com/k8s/v1.36/deb/"' in text
    assert "pkgs.k8s.io" not in text
    tags = settings.settings_tags(spec)
    assert tags["sparkube:kubernetes-apt-repo"] == "https://apt.example.com/k8s/v1.36/deb/"
    assert tags["sparkube:registry-mirrors"] == (
        "docker.io=https://m.example.com ghcr.io=https://g.example.com/p"
    )
    for value in tags.values():
        assert all(ch.isalnum() or ch in " +-=._:/@" for ch in value)
    # a plain re-run reads them back
    again = ClusterSpec(
        kubernetes_apt_repo=tags["sparkube:kubernetes-apt-repo"],
        registry_mirrors=tags["sparkube:registry-mirrors"],
    )
    assert again.kubernetes_apt_url == spec.kubernetes_apt_url
    assert again.registry_mirrors == spec.registry_mirrors


def test_workers_pre_pull_the_spark_image() -> None:
    spec = ClusterSpec()
    assert full_image_ref("apache/spark:4.1.2") == "docker.io/apache/spark:4.1.2"
    assert full_image_ref("busybox") == "docker.io/library/busybox"
    assert full_image_ref("sparkube.test/shell:1") == "sparkube.test/shell:1"
    assert full_image_ref("localhost:5000/x:1") == "localhost:5000/x:1"
    text = render_prepare_script(spec)
    assert f'PREPULL_IMAGE="{full_image_ref(spec.image)}"' in text
    assert re.search(r'if \[ "\$\{SPARKUBE_NODE_ROLE:-\}" = worker \]', text)
    assert "ctr -n k8s.io images pull $hosts" in text
    assert prepull_image(ClusterSpec(spark_image="ghcr.io/x/spark@sha256:" + "0" * 64)) == ""
    # the user data says which role a node has
    worker = userdata.render(text, expires_at=None, role="worker")
    assert "export SPARKUBE_NODE_ROLE=worker\n" in worker
    assert "SPARKUBE_NODE_ROLE=" not in userdata.render(text, expires_at=None).split("<<")[0]
    with pytest.raises(ValueError):
        userdata.render(text, expires_at=None, role="master")
