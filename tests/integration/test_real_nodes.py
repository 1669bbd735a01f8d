"""Real nodes (issue 15): sparkube's own node preparation, kubeadm configs and phase code
on three systemd-nspawn machines (tests/fixtures/nodebed.py), with real containerd,
kubelet, ``kubeadm init``/``join``, Flannel from sparkube's manifest, kube-proxy and
CoreDNS.

What the nodes would fetch from the internet comes from stand-ins on the bed's bridge,
reached through sparkube's own settings (``kubernetes_apt_repo`` and
``registry_mirrors``, from ``nodebed.spec_settings``/``up_flags``): the Kubernetes apt
repository (prepare.sh's ``curl .../Release.key`` and apt source: kubelet, kubeadm,
kubectl, kubernetes-cni .debs built from the Go binaries), the Debian mirror (prepare.sh's
``apt-get update``/``install``: the template already has containerd, curl, gpg, ...), and
a registry that mirrors registry.k8s.io, ghcr.io, docker.io and sparkube.test: containerd
pulls the images' real names through the ``hosts.toml`` files prepare.sh wrote. The
settings only this VM needs are added by the bed (``VM_KUBEADM_SETTINGS``), and the first
test proves that what sparkube renders contains none of them, and that its defaults are
the real pkgs.k8s.io and no mirror.

``sparkube up`` on moto, with the tests that share the cluster it makes, is in
tests/bed/ (tests/fixtures/bedcluster.py).

Run alone: ``bash tools/nodes/build.sh`` then
``.venv/bin/python -m pytest -m realnodes tests/integration/test_real_nodes.py tests/bed -s``
(as root).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sparkube.aws import userdata
from sparkube.env import Environment
from sparkube.model import CONTROL_PLANE, WORKER, ClusterInfo, Node
from sparkube.nodes import kubeadm, ttl
from sparkube.nodes.kubeadm import JoinCommand
from sparkube.nodes.phase import KEY_FILE, run_kubernetes_phase, run_nodes_phase, ssh_settings
from sparkube.nodes.prepare import full_image_ref, render_prepare_script
from sparkube.spec import ClusterSpec
from tests.fixtures.nodebed import (
    REAL_NODES,
    NodeBed,
    node_bed,  # noqa: F401 - the fixture
    registry_refs,
    spec_settings,
    with_vm_kubeadm,
    with_vm_settings,
)

pytestmark = REAL_NODES

KUBE_VERSION = "v1.36.3"
NAMES = ("control-plane", "worker-1", "worker-2")
ADMIN = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


VM_ONLY_WORDS = (
    "failCgroupV1",
    "ignorePreflightErrors",
    "SystemVerification",
    "maxPerCore",
    "evictionHard",
)


def test_sparkube_renders_none_of_the_vm_settings() -> None:
    spec = ClusterSpec(name="bed", workers=2)
    cp = Node("control-plane", CONTROL_PLANE, private_ip="10.0.0.10", public_ip="203.0.113.5")
    worker = Node("worker-1", WORKER, private_ip="10.0.0.11")
    join = JoinCommand("10.0.0.10:6443", "abcdef.0123456789abcdef", ("sha256:" + "0" * 64,))
    rendered = [
        kubeadm.render_init_config(spec, cp, kubernetes_version=KUBE_VERSION),
        kubeadm.render_join_config(join, worker),
        render_prepare_script(spec),
        userdata.render(render_prepare_script(spec), expires_at=None),
    ]
    for text in rendered:
        for word in (*VM_ONLY_WORDS, "restrict_oom_score_adj", "nspawn", "testbed", ".test"):
            assert word not in text
    # the defaults are the real places: pkgs.k8s.io, and the registries themselves
    for text in rendered[2:]:
        assert 'K8S_APT="https://pkgs.k8s.io/core:/stable:/v1.36/deb/"' in text
        assert 'REGISTRY_MIRRORS=""' in text
    # and the bed's additions are exactly what with_vm_settings adds
    patched = with_vm_settings(rendered[0])
    assert "failCgroupV1: false" in patched and "SystemVerification" in patched


def _hold(bed: NodeBed) -> None:
    """Debugging: with SPARKUBE_REALNODES_HOLD=FILE, keep the bed up until FILE is gone."""
    hold = os.environ.get("SPARKUBE_REALNODES_HOLD")
    if not hold:
        return
    Path(hold).write_text(
        "".join(f"{n.name} {n.address} pid {n.leader()}\n" for n in bed.nodes.values())
    )
    deadline = time.monotonic() + 1800
    while Path(hold).exists() and time.monotonic() < deadline:
        time.sleep(2)


def _kubectl_json(bed: NodeBed, args: str) -> Any:
    return json.loads(bed.run("control-plane", f"{ADMIN} {args} -o json").stdout)


def test_three_real_nodes_come_up_with_sparkube_phases(
    node_bed: NodeBed,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bed = node_bed
    # Workers pre-pull the cluster's Spark image; the shell image stands in while the bed
    # has no Spark image.
    spark = full_image_ref(ClusterSpec().image)
    prepull = spark if spark in registry_refs() else "sparkube.test/shell:1"
    spec = ClusterSpec(
        name="bed",
        workers=2,
        spark_image=None if prepull == spark else prepull,
        **spec_settings(),
    )
    env = Environment(
        environ={"HOME": str(tmp_path), "SPARKUBE_HOME": str(tmp_path / "sparkube")},
        cwd=tmp_path,
        interactive=False,
    )
    cdir = env.cluster_dir(spec.name, create=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(cdir / KEY_FILE)], check=True
    )
    public_key = (cdir / f"{KEY_FILE}.pub").read_text()
    # What `up` gives EC2 as user data (no TTL here), exactly as encoded for RunInstances.
    data = {
        role: userdata.encode(
            userdata.render(render_prepare_script(spec), expires_at=None, role=role)
        )
        for role in (CONTROL_PLANE, WORKER)
    }

    t0 = time.monotonic()
    times: dict[str, float] = {}
    for name in NAMES:
        role = CONTROL_PLANE if name == "control-plane" else WORKER
        bed.add_node(name, public_key=public_key, user_data=data[role])
    nodes = tuple(
        Node(
            name,
            CONTROL_PLANE if name == "control-plane" else WORKER,
            instance_id=f"i-bed{i}",
            state="running",
            private_ip=bed.nodes[name].address,
            ssh_host=bed.nodes[name].address,
        )
        for i, name in enumerate(NAMES)
    )
    cluster = ClusterInfo(name=spec.name, region="us-east-1", nodes=nodes)
    settings = ssh_settings(env, spec.name, boot_timeout=120)

    # nodes phase: sparkube waits for the user data's preparation and checks what it left.
    summary = run_nodes_phase(env=env, cluster=cluster, settings=settings, timeout=600, interval=1)
    times["prepared_s"] = time.monotonic() - t0
    assert "3/3 prepared" in summary, summary

    # kubernetes phase, with this VM's settings merged into what sparkube renders.
    with_vm_kubeadm(monkeypatch)
    cp = bed.nodes["control-plane"].address
    try:
        summary = run_kubernetes_phase(
            spec=spec,
            env=env,
            cluster=cluster,
            settings=settings,
            api_server=f"https://{cp}:6443",
            ready_timeout=300,
        )
    except BaseException:
        for name in NAMES:
            print(f"--- {name}")
            print(bed.run(name, "journalctl -u kubelet --no-pager | tail -25", check=False).stdout)
        print(bed.run("control-plane", f"{ADMIN} get pods -A -o wide", check=False).stdout)
        raise
    times["ready_s"] = time.monotonic() - t0
    assert "3/3 Ready" in summary and "2/2 workers joined" in summary, summary

    # All three Ready, with the real kubelet and runtime versions.
    # `containerd --version` says 1.6.20~ds1 (Debian's); the CRI reports 1.6.20.
    runtime = bed.run("control-plane", "containerd --version").stdout.split()[2].split("~")[0]
    items = _kubectl_json(bed, "get nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in items) == sorted(NAMES)
    for n in items:
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", n["metadata"]["name"]
        info = n["status"]["nodeInfo"]
        assert info["kubeletVersion"] == KUBE_VERSION
        assert info["containerRuntimeVersion"] == f"containerd://{runtime}"

    # The nodes installed from the apt repository and pulled through the mirrors that
    # sparkube's settings named (they have no other way out).
    for name in NAMES:
        source = bed.run(name, "cat /etc/apt/sources.list.d/kubernetes.list").stdout
        assert "https://apt.sparkube.test/core:/stable:/v1.36/deb/ /" in source, source
        hosts = bed.run(name, "cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml").stdout
        assert 'server = "https://registry.k8s.io"' in hosts, hosts
        assert '[host."https://registry.sparkube.test:5000/v2/registry.k8s.io"]' in hosts, hosts
    # Workers pulled the Spark image (or its stand-in) while the control plane initialised.
    prepull_s = {}
    for name in NAMES[1:]:
        prepull_s[name] = bed.prepull_seconds(name)
        listed = bed.run(name, "ctr -n k8s.io images ls -q").stdout.split()
        assert full_image_ref(prepull) in listed, listed
    cp_log = bed.run("control-plane", "test -e /var/log/sparkube-prepull.log", check=False)
    assert cp_log.returncode != 0  # the control plane does not pull the Spark image

    # CoreDNS answers a pod: kubernetes.default is the API service's ClusterIP. busybox's
    # nslookup asks for the name as given (no search list), so it gets the full name;
    # ping resolves the short one through the pod's resolv.conf search list, as
    # programs do (its echo request to a ClusterIP gets no answer, which is fine).
    service_ip = _kubectl_json(bed, "get service kubernetes -n default")["spec"]["clusterIP"]
    bed.run(
        "control-plane",
        f"{ADMIN} run dns-check --image=sparkube.test/shell:1 "
        "--restart=Never --command -- sh -c "
        "'nslookup kubernetes.default.svc.cluster.local && "
        "{ ping -c1 -W1 kubernetes.default || true; }'",
    )
    deadline = time.monotonic() + 120
    phase = ""
    while time.monotonic() < deadline:
        phase = _kubectl_json(bed, "get pod dns-check")["status"].get("phase", "")
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    logs = bed.run("control-plane", f"{ADMIN} logs dns-check", check=False)
    if phase != "Succeeded":
        _hold(bed)
    assert phase == "Succeeded", (phase, logs.stdout, logs.stderr)
    assert f"Address: {service_ip}" in logs.stdout, logs.stdout
    assert f"PING kubernetes.default ({service_ip})" in logs.stdout, logs.stdout
    times["dns_s"] = time.monotonic() - t0

    usage = {name: bed.usage(name) for name in NAMES}

    # A worker rebooted: the user data does not run again, and the node runs pods again
    # (its kubelet, containerd and pod network come back by themselves).
    t_reboot = time.monotonic()
    try:
        bed.reboot("worker-2", timeout=30)
    except TimeoutError:
        _hold(bed)
        raise
    out = bed.wait_user_data("worker-2", timeout=60)
    assert out.count("user data exited") == 1, out[-2000:]
    bed.run(
        "control-plane",
        f"{ADMIN} run after-reboot --image=sparkube.test/shell:1 "
        """--restart=Never --overrides='{"spec":{"nodeName":"worker-2"}}' --command -- """
        "nslookup kubernetes.default.svc.cluster.local",
    )
    deadline = time.monotonic() + 180
    phase = ""
    while time.monotonic() < deadline and phase not in ("Succeeded", "Failed"):
        time.sleep(1)
        phase = _kubectl_json(bed, "get pod after-reboot")["status"].get("phase", "")
    logs = bed.run("control-plane", f"{ADMIN} logs after-reboot", check=False)
    assert phase == "Succeeded", (phase, logs.stdout, bed.nodes["worker-2"].console_tail())
    assert f"Address: {service_ip}" in logs.stdout
    times["reboot_pod_s"] = time.monotonic() - t_reboot
    line = {
        "ready_s": round(times["ready_s"], 1),
        "prepared_s": round(times["prepared_s"], 1),
        "dns_s": round(times["dns_s"], 1),
        "reboot_to_pod_s": round(times["reboot_pod_s"], 1),
        "prepull_image": prepull,
        "prepull_s": prepull_s,
        "kubelet": KUBE_VERSION,
        "runtime": f"containerd://{runtime}",
        "rss_mib": {n: u["rss_bytes"] >> 20 for n, u in usage.items()},
        "cache_mib": {n: u["cache_bytes"] >> 20 for n, u in usage.items()},
        "disk_mib": {n: u["disk_bytes"] >> 20 for n, u in usage.items()},
    }
    print(json.dumps(line))
    out = os.environ.get("SPARKUBE_REALNODES_RESULT")
    if out:
        Path(out).write_text(json.dumps(line) + "\n")


def test_a_node_past_its_ttl_powers_itself_off(
    node_bed: NodeBed,  # noqa: F811
) -> None:
    """The TTL the user data installs, under a node's own systemd: once the expiry file
    says the time has passed, the timer's check powers the machine off (on EC2, with
    shutdown behaviour terminate, that ends the instance)."""
    bed = node_bed
    later = datetime.now(UTC) + timedelta(hours=2)
    data = userdata.render("#!/bin/bash\necho prepared\n", expires_at=later)
    bed.add_node("worker-1", public_key="ssh-ed25519 AAAA unused", user_data=data,
                 control_plane=False)  # fmt: skip
    bed.wait_user_data("worker-1", timeout=120)
    assert bed.run("worker-1", "systemctl is-active sparkube-ttl.timer").stdout.strip() == "active"
    assert bed.run("worker-1", "cat /etc/sparkube/expires-at").stdout.strip() == str(
        int(later.timestamp())
    )
    t0 = time.monotonic()
    bed.run("worker-1", ttl.set_expiry_command(datetime.now(UTC) - timedelta(minutes=1)))
    status = bed.wait_powered_off("worker-1", timeout=150)  # the timer runs every minute
    print(json.dumps({"ttl_poweroff_s": round(time.monotonic() - t0, 1), "nspawn_exit": status}))
    assert status == 0, bed.nodes["worker-1"].console_tail()
