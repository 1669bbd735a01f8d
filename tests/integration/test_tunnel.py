"""The dashboard tunnel carries real bytes: local port -> SSH -> control plane -> a
ClusterIP Service -> a pod's HTTP server, all on the process cluster.

The "control plane" is an OpenSSH server running as a pod (root, the busybox image =
the host's tools) on the pod network, so it reaches ClusterIPs and pod IPs exactly as
a kubeadm control plane does. The page stands in for kube-opex-analytics, whose image
cannot be pulled here. sparkube's own tunnel code (sparkube.monitoring.tunnel) does the
forwarding, with the cluster key and a pinned host key.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkube.errors import ClusterError, UsageError
from sparkube.model import CONTROL_PLANE, Node
from sparkube.monitoring import addons
from sparkube.monitoring.tunnel import check_ready, pick_port, serve_tunnel, service_target
from sparkube.nodes.fanout import SshSettings
from sparkube.nodes.hostkeys import HostKeyStore
from tests.fixtures.procnodes import ProcessCluster

pytestmark = pytest.mark.integration

SSHD_CONFIG = """Port 2222
ListenAddress 0.0.0.0
HostKey /etc/sshd-keys/host_key
AuthorizedKeysFile /etc/sshd-keys/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
PidFile /tmp/sshd.pid
"""


@pytest.fixture
def monitoring_ns(process_cluster: ProcessCluster) -> Iterator[ProcessCluster]:
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        pytest.skip("needs openssh-server (apt-get install -y openssh-server)")
    pc = process_cluster
    pc.kube.create_namespace(addons.OPEX_NAMESPACE)
    yield pc
    pc.delete_namespace(addons.OPEX_NAMESPACE, wait=90)


def _lightkube(pc: ProcessCluster):  # type: ignore[no-untyped-def]
    from sparkube.kube.client import client_from_kubeconfig

    return client_from_kubeconfig(pc.kube.kubeconfig)


def test_dashboard_tunnel_carries_real_bytes(monitoring_ns: ProcessCluster, tmp_path: Path) -> None:
    import asyncssh

    pc = monitoring_ns
    ns = addons.OPEX_NAMESPACE
    client = _lightkube(pc)
    # Not ready yet: the message names the pod state and the usual wait.
    with pytest.raises(ClusterError, match="has no pod yet"):
        check_ready(client, ns, {"app.kubernetes.io/name": addons.OPEX_SERVICE}, "opex", "1 min")

    marker = f"opex stand-in {secrets.token_hex(4)}"
    page = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "page"},
            "data": {"index.html": f"<html><body>{marker}</body></html>"}}  # fmt: skip
    pc.create(ns, page)
    web = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "opex", "labels": {"app.kubernetes.io/name": addons.OPEX_SERVICE}},
        "spec": {"containers": [{
            "name": "web", "image": "python:3.11-slim",
            "command": ["python3", "-m", "http.server", "5483", "--directory", "/srv"],
            "ports": [{"name": "http", "containerPort": 5483}],
            "volumeMounts": [{"name": "page", "mountPath": "/srv"}]}],
            "volumes": [{"name": "page", "configMap": {"name": "page"}}]},
    }  # fmt: skip
    svc = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": addons.OPEX_SERVICE},
        "spec": {"selector": {"app.kubernetes.io/name": addons.OPEX_SERVICE},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip
    pc.create(ns, web)
    pc.create(ns, svc)

    # the control plane: sshd in a pod, with our key authorized
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = tmp_path / "id_ed25519"
    key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sshd-keys"},
              "stringData": {"host_key": host_key.export_private_key().decode(),
                             "authorized_keys": key.export_public_key().decode()}}  # fmt: skip
    pc.create(ns, secret)
    pc.create(ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sshd"},
                   "data": {"sshd_config": SSHD_CONFIG}})  # fmt: skip
    sshd = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "control-plane"},
        "spec": {"containers": [{
            "name": "sshd", "image": "busybox:1.37",
            "command": ["sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e "
                        "-f /etc/sshd/sshd_config"],
            "volumeMounts": [{"name": "keys", "mountPath": "/etc/sshd-keys"},
                             {"name": "conf", "mountPath": "/etc/sshd"}]}],
            "volumes": [{"name": "keys", "secret": {"secretName": "sshd-keys",
                                                    "defaultMode": 0o600}},
                        {"name": "conf", "configMap": {"name": "sshd"}}]},
    }  # fmt: skip
    pc.create(ns, sshd)
    cp = pc.wait_phase(ns, "control-plane", ("Running",), timeout=60)
    pc.wait_phase(ns, "opex", ("Running",), timeout=60)
    pc.kube.wait_for("opex Ready", lambda: _ready(pc, ns, "opex"), timeout=30)
    check_ready(client, ns, {"app.kubernetes.io/name": addons.OPEX_SERVICE}, "opex", "1 min")
    target = service_target(client, ns, addons.OPEX_SERVICE, addons.OPEX_PORT, "opex")

    node = Node(name="control-plane", role=CONTROL_PLANE, instance_id="i-test",
                ssh_host=cp["status"]["podIP"], ssh_port=2222)  # fmt: skip
    settings = SshSettings(key_path=key_path, host_keys=HostKeyStore(tmp_path / "known_hosts"),
                           user="root", boot_timeout=30)  # fmt: skip
    port = pick_port(0, explicit=False)
    ready = threading.Event()
    bound: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def serve() -> None:
        def on_ready(p: int) -> None:
            bound.append(p)
            ready.set()

        loop.run_until_complete(serve_tunnel(node, settings, target, port, on_ready=on_ready,
                                             stop=stop))  # fmt: skip

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "tunnel did not come up"
        with urllib.request.urlopen(f"http://127.0.0.1:{bound[0]}/", timeout=20) as resp:
            body = resp.read().decode()
        assert marker in body
        # the port is taken while the tunnel runs: an explicit --port is refused (exit 2)
        with pytest.raises(UsageError, match="in use"):
            pick_port(bound[0], explicit=True)
        assert pick_port(bound[0], explicit=False) != bound[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
    assert not thread.is_alive()
    # closed cleanly: nothing listens any more
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{bound[0]}/", timeout=5)
    assert (
        "i-test" in (tmp_path / "known_hosts").read_text() or (tmp_path / "known_hosts").read_text()
    )


def _ready(pc: ProcessCluster, ns: str, name: str) -> bool:
    pod = pc.pod(ns, name)
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod["status"].get("conditions") or []
    )
