"""Where nodes get containerd (sparkube.nodes.containerd) and what prepare.sh does with it.

The script tests run the rendered preparation script for real with bash, under
``SPARKUBE_NODE_ROOT`` (a temporary folder) and with small stand-ins first on PATH for
what would change this machine (apt-get, systemctl, swapoff, modprobe, sysctl, gpg, curl
to anything but loopback); the release tarball is served on loopback by the test. It
holds a script named ``bin/containerd`` (the official layout), so its SHA-256 is the
test's own and the test gives it to sparkube in place of the pinned one.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sparkube.aws import settings
from sparkube.defaults import DEFAULT_CONTAINERD_RELEASE_URL
from sparkube.env import Environment
from sparkube.errors import ConfigError
from sparkube.nodes import containerd
from sparkube.nodes.prepare import render_prepare_script
from sparkube.spec import SUPPORTED_KUBERNETES, ClusterSpec, load_spec


@pytest.mark.parametrize(
    ("kubernetes", "expected"), [("1.35", "distro"), ("1.36", "distro"), ("1.37", "release")]
)
def test_auto_installs_the_release_from_kubernetes_1_37(kubernetes: str, expected: str) -> None:
    spec = ClusterSpec(kubernetes_version=kubernetes)
    assert spec.containerd == "auto"
    assert containerd.source(spec) == expected
    assert containerd.min_major(kubernetes) == (2 if expected == "release" else 1)


def test_every_supported_kubernetes_has_a_containerd_rule() -> None:
    for minor in SUPPORTED_KUBERNETES:
        assert containerd.min_major(minor) in (1, 2)
    assert containerd.needs_containerd_2("1.38")


@pytest.mark.parametrize("forced", ["distro", "release"])
def test_a_forced_source_wins(forced: str) -> None:
    for minor in SUPPORTED_KUBERNETES:
        assert containerd.source(ClusterSpec(kubernetes_version=minor, containerd=forced)) == forced


def test_the_pinned_release_is_the_published_one() -> None:
    # containerd 2.3.4's .sha256sum files (GitHub release v2.3.4), as pinned by kubespray.
    assert containerd.RELEASE_VERSION == "2.3.4"
    assert containerd.RELEASE_SHA256 == {
        "amd64": "9d68969855fbf676cdb8ed758e420fb048d61f984f61de3e53eddfebe484d168",
        "arm64": "a985fbb7e18fc0362d31a055338f5d7b0e087a3e27f14c70d1c5965399a29f95",
    }
    assert containerd.release_url(DEFAULT_CONTAINERD_RELEASE_URL, "arm64") == (
        "https://github.com/containerd/containerd/releases/download/v2.3.4/"
        "containerd-2.3.4-linux-arm64.tar.gz"
    )
    # The test bed builds the same version (tools/nodes/versions.env).
    versions = Path(__file__).parents[2] / "tools" / "nodes" / "versions.env"
    assert f"CONTAINERD_RELEASE_VERSION=v{containerd.RELEASE_VERSION}\n" in versions.read_text()


def test_the_script_carries_the_source_the_pins_and_the_location() -> None:
    text = render_prepare_script(ClusterSpec(kubernetes_version="1.37"))
    assert 'CONTAINERD_SOURCE="release"' in text
    assert 'CONTAINERD_MIN_MAJOR="2"' in text
    assert f'CONTAINERD_URL="{DEFAULT_CONTAINERD_RELEASE_URL}"' in text
    for sha in containerd.RELEASE_SHA256.values():
        assert sha in text
    text = render_prepare_script(
        ClusterSpec(containerd_release_url="https://mirror.example.com/containerd/")
    )
    assert 'CONTAINERD_SOURCE="distro"' in text and 'CONTAINERD_MIN_MAJOR="1"' in text
    assert 'CONTAINERD_URL="https://mirror.example.com/containerd"' in text


def _spec_error(tmp_path: Path, **environ: str) -> str:
    env = Environment(environ=environ, cwd=tmp_path, interactive=False)
    with pytest.raises(ConfigError) as caught:
        load_spec(env=env)
    assert caught.value.exit_status == 2
    return str(caught.value)


def test_bad_containerd_settings_are_refused_with_the_fix(tmp_path: Path) -> None:
    message = _spec_error(tmp_path, SPARKUBE_CONTAINERD="2.x")
    assert "SPARKUBE_CONTAINERD" in message and "auto, distro, release" in message
    message = _spec_error(tmp_path, SPARKUBE_CONTAINERD_RELEASE_URL="ftp://x/y?z=1")
    assert "SPARKUBE_CONTAINERD_RELEASE_URL" in message and "is not a URL like" in message
    env = Environment(environ={"SPARKUBE_CONTAINERD": " Release "}, cwd=tmp_path, interactive=False)
    assert load_spec(env=env).containerd == "release"


def test_the_flags_set_the_source_and_a_bad_one_exits_2(cli: Any) -> None:
    bad = cli("plan", "--offline", "--containerd", "2.x")
    assert bad.exit_code == 2, bad.stderr
    assert "option --containerd: '2.x' is not one of: auto, distro, release" in bad.stderr
    bad = cli("up", "--containerd-url", "ftp://x/y", "--yes")
    assert bad.exit_code == 2 and "option --containerd-url" in bad.stderr, bad.stderr


def test_a_release_mirror_is_recorded_and_read_back_the_default_is_not(tmp_path: Path) -> None:
    mirror = "https://mirror.example.com:8443/containerd/releases"
    spec = ClusterSpec(containerd="release", containerd_release_url=mirror + "/")
    tags = settings.settings_tags(spec)
    assert tags["sparkube:containerd"] == "release"
    assert tags["sparkube:containerd-release-url"] == mirror
    again = ClusterSpec(containerd_release_url=tags["sparkube:containerd-release-url"])
    assert again.containerd_release_url == spec.containerd_release_url
    assert "sparkube:containerd-release-url" not in settings.settings_tags(ClusterSpec())


# ------------------------------------------------------------ the script, run for real

STUBS = {
    "apt-get": 'echo "apt-get $*" >>"$CALLS"',
    "apt-mark": '[ "$1" = showhold ] && printf "kubeadm\\nkubectl\\nkubelet\\n"; exit 0',
    "systemctl": 'echo "systemctl $*" >>"$CALLS"',
    "swapoff": "exit 0",
    "modprobe": "exit 0",
    "sysctl": "exit 0",
    "gpg": "cat >/dev/null",
    "dpkg": "echo amd64",
    "kubeadm": "echo v1.37.2",
    # Only the test's loopback server is really asked; pkgs.k8s.io's key is not.
    "curl": 'case "$*" in *http://127.0.0.1:*) exec /usr/bin/curl "$@";; *) echo KEY;; esac',
}
#: A distribution's containerd 1.7 (what the noble pocket alone installs).
DISTRO_1_7 = 'echo "containerd github.com/containerd/containerd 1.7.12"'
FAKE_CONTAINERD = """#!/bin/sh
if [ "$1" = config ]; then
  echo "version = 3"
  echo "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]"
  echo "  SystemdCgroup = false"
else
  echo "containerd github.com/containerd/containerd/v2 v2.3.4 fake"
fi
"""


def _tarball() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        data = FAKE_CONTAINERD.encode()
        for name in ("bin/containerd", "bin/ctr", "bin/containerd-shim-runc-v2"):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class _Counting(http.server.SimpleHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[tuple[str, list[str], str]]:
    """A release location on loopback laid out as GitHub's: (base URL, paths asked, sha)."""
    site = tmp_path / "site" / "v2.3.4"
    site.mkdir(parents=True)
    data = _tarball()
    (site / "containerd-2.3.4-linux-amd64.tar.gz").write_bytes(data)
    hits: ClassVar[list[str]] = []
    handler = type("_H", (_Counting,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path / "site"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits, hashlib.sha256(data).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, spec: ClusterSpec, distro_containerd: str = DISTRO_1_7) -> int:
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, body in {**STUBS, "containerd": distro_containerd}.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    root = tmp_path / "root"
    script = tmp_path / "prepare.sh"
    script.write_text(render_prepare_script(spec))
    env = {
        "PATH": f"{stubs}:/usr/bin:/bin",
        "SPARKUBE_NODE_ROOT": str(root),
        "CALLS": str(tmp_path / "calls.log"),
    }
    subprocess.run(["bash", str(script)], env=env, check=False, timeout=60)
    return int((root / "var/lib/sparkube/prepare.done").read_text())


def _log(tmp_path: Path) -> str:
    return (tmp_path / "root/var/log/sparkube-prepare.log").read_text()


def _calls(tmp_path: Path) -> str:
    path = tmp_path / "calls.log"
    text = path.read_text() if path.exists() else ""
    path.unlink(missing_ok=True)
    return text


def test_release_is_downloaded_checked_installed_and_left_alone_on_a_rerun(
    tmp_path: Path,
    release_server: tuple[str, list[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, hits, sha = release_server
    # The test's tarball is not containerd's: its checksum replaces the pinned one here.
    monkeypatch.setitem(containerd.RELEASE_SHA256, "amd64", sha)
    spec = ClusterSpec(kubernetes_version="1.37", containerd_release_url=url)
    assert _run(tmp_path, spec) == 0, _log(tmp_path)
    root = tmp_path / "root"
    assert hits == ["/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz"]
    assert (root / "usr/local/bin/containerd").read_text() == FAKE_CONTAINERD
    assert (root / "usr/local/bin/containerd-shim-runc-v2").is_file()
    unit = (root / "usr/local/lib/systemd/system/containerd.service").read_text()
    for line in ("ExecStart=/usr/local/bin/containerd", "Type=notify", "Delegate=yes",
                 "KillMode=process", "WantedBy=multi-user.target"):  # fmt: skip
        assert line in unit.splitlines(), line
    assert "SystemdCgroup = true" in (root / "etc/containerd/config.toml").read_text()
    calls = _calls(tmp_path)
    # runc from the distribution, no distribution containerd
    assert "install --no-install-recommends runc " in calls
    assert " containerd " not in calls.split("systemctl")[0]
    assert "systemctl daemon-reload" in calls and "systemctl try-restart containerd" in calls
    assert "systemctl restart containerd" in calls  # its first config

    assert _run(tmp_path, spec) == 0, _log(tmp_path)  # again: nothing to do
    assert len(hits) == 1
    calls = _calls(tmp_path)
    assert "daemon-reload" not in calls and "restart" not in calls, calls


def test_a_release_with_another_checksum_is_refused(
    tmp_path: Path, release_server: tuple[str, list[str], str]
) -> None:
    url, hits, sha = release_server  # the pinned (published) checksum stays in place
    spec = ClusterSpec(containerd="release", containerd_release_url=url)
    assert _run(tmp_path, spec) == 1
    assert hits and "is not the published release" in _log(tmp_path)
    assert f"SHA-256 {sha}" in _log(tmp_path)
    assert not (tmp_path / "root/usr/local/bin/containerd").exists()


def test_the_node_refuses_a_distribution_containerd_1_for_kubernetes_1_37(tmp_path: Path) -> None:
    spec = ClusterSpec(kubernetes_version="1.37", containerd="distro")
    assert _run(tmp_path, spec) == 1
    assert (
        "containerd 1.7.12 is too old for Kubernetes 1.37 (it needs 2.0 or later); "
        "set 'containerd: release' in the cluster spec" in _log(tmp_path)
    )
    # ... and takes it for 1.36, or a distribution's 2.x for 1.37 (Ubuntu 24.04's updates)
    assert _run(tmp_path, ClusterSpec(kubernetes_version="1.36")) == 0, _log(tmp_path)
    distro_2 = 'echo "containerd github.com/containerd/containerd/v2 2.2.1"'
    assert _run(tmp_path, spec, distro_containerd=distro_2) == 0, _log(tmp_path)
