"""The fault matrix's cases about nodes (issue 11), on real nodes, in one cluster's life.

Every instance ``sparkube up`` launches in moto boots on the node bed as a machine with
its own systemd, sshd, containerd, kubelet and real kubeadm (tests/fixtures/bedcluster.py,
:func:`bed_machines`). Each fault is made on those machines, never inside sparkube, and
each ``up`` after it is the command the user ran first, run again after reading the
sentence:

1. **SSH dropped during** ``kubeadm init``: once kubeadm init runs on the control plane,
   the sshd process serving sparkube's session there is killed (SIGKILL: the TCP
   connection drops as when a network path dies). ``up`` names the step that lost its
   connection in one sentence and exits 1; on the node the init goes on by itself and
   finishes; the next ``up`` resumes without a second init (the cluster's CA is the one
   that init made).
2. **A worker whose join fails once**: a process on worker-2 holds the kubelet's port,
   so kubeadm join's preflight refuses there. worker-1 joins all the same; ``up`` names
   worker-2 in one sentence (kubeadm's reason below it) and exits 1. With the port free
   again, the next ``up`` joins worker-2 and leaves worker-1 alone.
3. **The API server down longer than** ``up`` **waits** (``SPARKUBE_API_WAIT=5``): the
   control plane's kube-apiserver static pod is taken away during the addons. One
   sentence, exit 1, the addons still to do.
4. **The API server down for a while during the addons**: taken away again and put back
   10 s later; ``up`` waits for it (saying so) and completes.

Then ``down`` leaves nothing in moto (instances, security group, key pair, role,
instance profile, bucket), no machine on the bed and no cluster folder.

When the faults strike: 1 when the kubeadm process shows on the machine (watched from a
thread); 2 before ``up`` starts; 3 and 4 when ``up`` reports the Spark job settings
applied. For those two the CLI's progress reporter (our own boundary) is used as a clock
only: the action moves the API server's manifest out of /etc/kubernetes/manifests on
the control plane, as a restarting control plane would be, and returns once the
server refuses connections, so the addons' next request meets it stopped.

This replaces the shim-based tests of the same cases (sshd hosts with kubeadm/kubectl
shims and the kwok control plane) that test_fault_matrix.py and test_nodes_ssh.py had.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sparkube.cli.app import run
from sparkube.env import Environment
from tests.fixtures.bedcluster import ADMIN, BedMachines, bed_machines, print_boot_logs
from tests.fixtures.common import CliResult, at_step
from tests.fixtures.nodebed import REAL_NODES

pytestmark = REAL_NODES

CLUSTER = "faults"
CP = "control-plane"
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
PARKED = "/root/kube-apiserver.yaml"
CA = "/etc/kubernetes/pki/ca.crt"
KUBELET_PORT = 10250
HOLDER = "hold-kubelet-port"

#: Run on the control plane: once ``kubeadm init`` runs there, and still 2 s later, kill
#: the nearest sshd above it (the session process serving sparkube's connection) and
#: print kubeadm's pid; exit non-zero while there is nothing to do yet.
DROP_SSH = """
pid=$(pgrep -of '^kubeadm init --config') || exit 1
sleep 2
kill -0 "$pid" || exit 3
p=$pid
while [ "$p" -gt 1 ]; do
  p=$(ps -o ppid= -p "$p" | tr -d ' ')
  [ -n "$p" ] || exit 4
  case "$(cat /proc/$p/comm)" in sshd*) kill -KILL "$p"; echo "$pid"; exit 0;; esac
done
exit 2
"""


def _cli(m: BedMachines, *args: str, env: Environment | None = None) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), env=env or m.env, stdout=out, stderr=err)
    result = CliResult(code, out.getvalue(), err.getvalue())
    print(f"$ sparkube {' '.join(args[:3])} -> {code}\n{result.stderr[-6000:]}", flush=True)
    return result


def _with(env: Environment, **variables: str) -> Environment:
    return dataclasses.replace(env, environ={**env.environ, **variables})


def _one_error(result: CliResult) -> str:
    """The one ``Error:`` sentence of a failed command (no traceback)."""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _status(m: BedMachines) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        _cli(m, "status", "--cluster", CLUSTER, "-o", "json").stdout
    )
    return result


def _joined(m: BedMachines, worker: str) -> bool:
    return m.bed.run(worker, "test -f /etc/kubernetes/kubelet.conf", check=False).returncode == 0


def _ca(m: BedMachines) -> str:
    return m.bed.run(CP, f"sha256sum {CA}").stdout.split()[0]


def _left(m: BedMachines) -> dict[str, int]:
    """What of the cluster moto still holds."""
    ec2: Any = m.ec2
    iam: Any = m.moto.client("iam")
    s3: Any = m.moto.client("s3")
    tag = [{"Name": "tag:sparkube:cluster", "Values": [CLUSTER]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}]
    return {
        "instances": sum(
            len(r["Instances"]) for r in ec2.describe_instances(Filters=tag + live)["Reservations"]
        ),
        "groups": len(ec2.describe_security_groups(Filters=tag)["SecurityGroups"]),
        "keys": len(ec2.describe_key_pairs(Filters=tag)["KeyPairs"]),
        "roles": len(iam.list_roles(PathPrefix="/sparkube/")["Roles"]),
        "profiles": len(iam.list_instance_profiles(PathPrefix="/sparkube/")["InstanceProfiles"]),
        "buckets": len(
            [b for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"sparkube-{CLUSTER}")]
        ),
    }


NOTHING = {"instances": 0, "groups": 0, "keys": 0, "roles": 0, "profiles": 0, "buckets": 0}


@pytest.fixture
def machines(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedMachines]:
    with bed_machines(moto_url, tmp_path_factory.mktemp("faults"), name=CLUSTER) as m:
        try:
            yield m
        finally:
            if _left(m)["instances"]:  # the test failed before its own 'down'
                print_boot_logs(m.bed, m.machines)
                with contextlib.suppress(Exception):
                    m.bed.run(CP, f"test -f {PARKED} && mv {PARKED} {MANIFEST}", check=False)
                _cli(m, "down", "--cluster", CLUSTER, "--yes")


# --- faults made on the machines --------------------------------------------------------


def _drop_ssh_during_kubeadm_init(
    m: BedMachines, dropped: list[int], stop: threading.Event
) -> None:
    """Watch the control plane (from its boot on) for kubeadm init, then drop the SSH
    session running it (:data:`DROP_SSH`); kubeadm's pid goes into ``dropped``."""
    while not stop.is_set():
        if m.bed.running(CP):
            with contextlib.suppress(RuntimeError, KeyError, subprocess.TimeoutExpired):
                got = m.bed.run(CP, DROP_SSH, check=False, timeout=30)
                if got.returncode == 0:
                    dropped.append(int(got.stdout.split()[-1]))
                    return
        time.sleep(0.2)


def _api_address(m: BedMachines) -> tuple[str, int]:
    """Where sparkube reaches the API server: its saved kubeconfig's server."""
    kubeconfig = yaml.safe_load((m.env.cluster_dir(CLUSTER) / "kubeconfig").read_text())
    url = urlsplit(kubeconfig["clusters"][0]["cluster"]["server"])
    assert url.hostname and url.port, url
    return url.hostname, url.port


def _stop_api_server(m: BedMachines) -> None:
    """Take the kube-apiserver static pod away (its kubelet stops it); return once its
    address refuses connections."""
    m.bed.run(CP, f"mv {MANIFEST} {PARKED}")
    address = _api_address(m)
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(address, timeout=2).close()
        except ConnectionRefusedError:
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the API server at {address} still answers after 120 s")
        time.sleep(0.2)


def _start_api_server(m: BedMachines) -> None:
    m.bed.run(CP, f"mv {PARKED} {MANIFEST}")


# --- one cluster's life -------------------------------------------------------------------


def test_faults_on_real_nodes_then_up_resumes_and_down_leaves_nothing(
    machines: BedMachines,
) -> None:
    m = machines
    bed = m.bed
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    # 1. SSH dropped during kubeadm init.
    dropped: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_drop_ssh_during_kubeadm_init, args=(m, dropped, stop))
    watcher.start()
    try:
        up = _cli(m, *m.up_args())
    finally:
        stop.set()
        watcher.join(60)
    timings["up_ssh_dropped_s"] = time.monotonic() - t0
    assert dropped, f"kubeadm init never ran on the control plane: {up.stderr[-3000:]}"
    assert up.exit_code == 1, up.stderr[-3000:]
    assert "✓ nodes" in up.stderr and "✗ kubernetes" in up.stderr, up.stderr[-3000:]
    sentence = _one_error(up)
    assert "kubeadm init on control-plane lost its SSH connection" in sentence
    assert "run 'sparkube up' again" in sentence
    assert _status(m)["phases_done"] == ["infra", "nodes"]
    # On the node, init carries on without its connection and finishes: its last phases
    # (the cluster-info the joins read, kube-proxy) are there.
    bed.wait_for(
        CP,
        f"! kill -0 {dropped[0]} 2>/dev/null",
        timeout=600,
        what="the dropped kubeadm init ended",
    )
    bed.run(CP, f"{ADMIN} -n kube-public get configmap cluster-info")
    bed.run(CP, f"{ADMIN} -n kube-system get daemonset kube-proxy")
    ca = _ca(m)

    # 2. worker-2's join fails once: a process holds the kubelet's port there.
    bed.run(
        "worker-2",
        f"systemd-run --unit={HOLDER} socat -u TCP-LISTEN:{KUBELET_PORT},reuseaddr,fork "
        "OPEN:/dev/null",
    )
    bed.wait_for("worker-2", f"ss -Hltn 'sport = :{KUBELET_PORT}' | grep -q .", timeout=30)
    t1 = time.monotonic()
    up = _cli(m, *m.up_args())
    timings["up_join_failed_s"] = time.monotonic() - t1
    assert up.exit_code == 1, up.stderr[-3000:]
    assert "✗ kubernetes" in up.stderr
    assert "control plane already initialised" in up.stderr, up.stderr[-3000:]
    assert "stopped midway" not in up.stderr  # no reset, no second init
    sentence = _one_error(up)
    assert sentence.startswith(
        "Error: Joining the cluster failed on worker-2: kubeadm join exited with status 1"
    ), sentence
    assert "worker-1" not in sentence and "sparkube up` again" in sentence
    assert f"Port-{KUBELET_PORT}" in up.stderr  # kubeadm's own reason, below the sentence
    assert _joined(m, "worker-1") and not _joined(m, "worker-2")
    assert _status(m)["phases_done"] == ["infra", "nodes"]
    bed.run("worker-2", f"systemctl stop {HOLDER}")

    # 3. worker-2 joins on the next up; the API server then goes down during the addons
    # for longer than up waits.
    t2 = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        at_step(patch, "addons", "spark", "job settings", lambda: _stop_api_server(m))
        up = _cli(m, *m.up_args(), env=_with(m.env, SPARKUBE_API_WAIT="5"))
    timings["up_api_down_long_s"] = time.monotonic() - t2
    assert "control plane already up, 2/2 workers joined, 3/3 Ready" in up.stderr, up.stderr
    assert _joined(m, "worker-2")
    assert up.exit_code == 1, up.stderr[-3000:]
    assert "✓ kubernetes" in up.stderr and "✗ addons" in up.stderr
    sentence = _one_error(up)
    assert f"The API server of cluster {CLUSTER} could not be reached for 5 s (" in sentence
    assert "run 'sparkube up' again to finish the addons" in sentence
    assert _status(m)["phases_done"] == ["infra", "nodes", "kubernetes"]
    _start_api_server(m)  # the control plane is back
    bed.wait_for(CP, f"{ADMIN} get --raw=/readyz", timeout=300, what="the API server back")

    # 4. The API server down for a while during the addons: up waits for it.
    t3 = time.monotonic()
    timers: list[threading.Timer] = []

    def restart() -> None:
        _stop_api_server(m)
        timers.append(threading.Timer(10.0, _start_api_server, args=(m,)))
        timers[0].start()

    try:
        with pytest.MonkeyPatch.context() as patch:
            at_step(patch, "addons", "spark", "job settings", restart)
            up = _cli(m, *m.up_args())
    finally:
        for timer in timers:
            timer.join(60)
    timings["up_api_down_briefly_s"] = time.monotonic() - t3
    assert timers, "the API server was never stopped"
    assert up.exit_code == 0, up.stderr[-3000:]
    assert re.search(r"API server unreachable \(\w+\); retrying", up.stderr), up.stderr[-3000:]
    assert "✓ addons" in up.stderr
    assert "Ready in" in up.stdout, up.stdout
    assert _status(m)["phases_pending"] == []
    assert _ca(m) == ca  # exactly one kubeadm init ever made this cluster
    bed.run(CP, f"{ADMIN} -n kube-system get deployment metrics-server")
    bed.run(CP, f"{ADMIN} -n spark get configmap")

    # down leaves nothing: in moto, on the bed, in sparkube's folder.
    t4 = time.monotonic()
    down = _cli(m, "down", "--cluster", CLUSTER, "--yes")
    assert down.exit_code == 0, down.stderr[-3000:]
    m.machines.wait(lambda _: not bed.nodes, timeout=120, what="machines removed after down")
    timings["down_s"] = time.monotonic() - t4
    assert not m.machines.errors, m.machines.errors[-1]
    assert _left(m) == NOTHING
    assert not m.env.cluster_dir(CLUSTER).exists()
    timings["total_s"] = time.monotonic() - t0
    print(json.dumps({k: round(v, 1) for k, v in timings.items()}))
