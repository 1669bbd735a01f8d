"""The fault matrix (issue 11): inject a fault, check the sentence and the exit code,
then check that ``up`` resumes to a complete cluster and ``down`` leaves nothing.

Stand-ins: the moto server for AWS, sshd hosts in network namespaces for the nodes
(their kubeadm/kubectl shims record what sparkube ran), the real test control plane with
kwok nodes for the Kubernetes API. Why not the real-node bed for the Ctrl-C cases and
the node never reachable: each needs a cluster of its own from the first phase, a bed
boot (about a minute of CI) each; what they prove is sparkube's resume logic, which the
shims exercise through the same SSH and API calls. Where a fault is injected at one of
sparkube's own boundaries (the progress reporter, the boto3 clients sparkube builds), the
test says so.

Cases covered elsewhere (not repeated here):

- On real nodes, in one cluster's life (test_real_node_faults.py): SSH dropped during
  ``kubeadm init`` (``up`` resumes without a second init); a worker whose join fails
  once (the others join, a re-run retries it); the API server down for a while during
  the addons (waited for) and down longer than ``up`` waits (one sentence, exit 1, then
  ``up`` resumes).
- Ctrl-C in ``infra``: test_infra_failures.py::test_ctrl_c_leaves_a_resumable_state and
  ::test_a_plain_up_resumes_with_the_interrupted_ups_settings; Ctrl-C in ``down``:
  ::test_ctrl_c_during_down_says_run_it_again.
- ``SPARKUBE_HOME`` deleted between ``up`` and ``down``: test_infra_failures.py::
  test_down_works_with_an_empty_sparkube_home.
- A node unreachable for a while (``up`` waits): test_nodes_ssh.py::
  test_waits_for_a_host_that_is_unreachable_for_a_while.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkube.aws.session import CallCounter, is_read, observe_calls
from sparkube.env import Environment
from sparkube.lock import lock_path
from sparkube.nodes.prepare import render_prepare_script
from sparkube.spec import ClusterSpec
from tests.fixtures.common import CliResult, at_step
from tests.fixtures.controlplane import KubeControlPlane
from tests.fixtures.moto_server import MotoAws
from tests.fixtures.sshhosts import SshLab
from tests.integration.test_infra_failures import NOTHING, _count
from tests.integration.test_up_nodes import coredns  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

CIDR = "203.0.113.7/32"
REPO = Path(__file__).resolve().parents[2]
Cli = Callable[..., CliResult]


def _infra(cli: Cli, env: Environment, *args: str) -> CliResult:
    return cli("up", "--until", "infra", "--allow-cidr", CIDR, *args, env=env)


def _one_error(result: CliResult) -> str:
    """The one ``Error:`` sentence of a failed command (no traceback)."""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _down_leaves_nothing(cli: Cli, moto_aws: MotoAws, env: Environment) -> None:
    down = cli("down", "--yes", env=env)
    assert down.exit_code == 0, down.stderr
    assert _count(moto_aws) == NOTHING


# --- 9. two 'up' of the same cluster at once -------------------------------------------


def test_a_second_up_or_down_while_up_runs_refuses_and_writes_nothing(
    cli: Cli, moto_aws: MotoAws
) -> None:
    # The first 'up' is held inside its infra phase (at its first RunInstances, through
    # the call observer) while a second 'up' and a 'down' run in this thread.
    reached, release = threading.Event(), threading.Event()
    writes: dict[str, list[str]] = {"first": [], "others": []}

    def observer(service: str, op: str) -> None:
        first = threading.current_thread().name == "first-up"
        if not is_read(op):
            writes["first" if first else "others"].append(f"{service}.{op}")
        if first and op == "RunInstances" and not reached.is_set():
            reached.set()
            release.wait(60)

    outcome: list[CliResult] = []
    with observe_calls(observer):
        thread = threading.Thread(
            target=lambda: outcome.append(_infra(cli, moto_aws.env, "--workers", "1")),
            name="first-up",
        )
        thread.start()
        try:
            assert reached.wait(60), "the first up never reached RunInstances"
            second = _infra(cli, moto_aws.env, "--workers", "1")
            down = cli("down", "--yes", env=moto_aws.env)
        finally:
            release.set()
            thread.join(120)
    assert second.exit_code == 1, second.stderr
    sentence = _one_error(second)
    assert "Cluster sparkube is busy: 'sparkube up' (pid " in sentence
    assert "wait for it to finish" in sentence and "'sparkube up' again" in sentence
    assert down.exit_code == 1, down.stderr
    assert "busy: 'sparkube up'" in _one_error(down)
    assert writes["others"] == []  # neither wrote anything in AWS
    (first,) = outcome
    assert first.exit_code == 0, first.stderr
    assert _count(moto_aws)["instances"] == 2

    # The lock went with the first 'up': the next one runs (and has nothing to do).
    counter = CallCounter()
    with observe_calls(counter):
        assert _infra(cli, moto_aws.env, "--workers", "1").exit_code == 0
    assert counter.writes() == {}
    _down_leaves_nothing(cli, moto_aws, moto_aws.env)
    assert not lock_path(moto_aws.env, "sparkube").exists()  # down leaves no lock file


def test_a_lock_whose_holder_was_killed_is_free(cli: Cli, moto_aws: MotoAws) -> None:
    # Another process (a real second sparkube would do the same) holds the lock...
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time\n"
            "from sparkube.env import Environment\n"
            "from sparkube.lock import cluster_lock\n"
            "env = Environment(environ={'SPARKUBE_HOME': sys.argv[1]})\n"
            "with cluster_lock(env, 'sparkube', 'up'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n",
            str(moto_aws.env.home),
        ],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = _infra(cli, moto_aws.env, "--workers", "0")
        assert busy.exit_code == 1
        assert f"'sparkube up' (pid {holder.pid}, started " in _one_error(busy)
        assert _count(moto_aws) == NOTHING
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # ...and dies without cleaning up
        holder.wait(10)
    assert _infra(cli, moto_aws.env, "--workers", "0").exit_code == 0
    _down_leaves_nothing(cli, moto_aws, moto_aws.env)


# --- 10. a job running when 'down' is asked ---------------------------------------------


def _driver_job(kube: KubeControlPlane, job_id: str, phase: str = "Running") -> None:
    """A driver Job as sparkube submits it (labels, annotations) whose kwok pod stays
    Running (or ends in ``phase``): a stand-in for a job (no Spark runs on kwok nodes)."""
    if not kube.exists("/api/v1/namespaces/spark"):
        kube.api("POST", "/api/v1/namespaces", {"metadata": {"name": "spark"}})
    labels = {"app.kubernetes.io/managed-by": "sparkube", "sparkube.io/job": job_id}
    kube.api(
        "POST",
        "/apis/batch/v1/namespaces/spark/jobs",
        {
            "metadata": {
                "name": job_id,
                "labels": labels,
                "annotations": {
                    "sparkube.io/app": "wordcount",
                    "sparkube.io/submitted": "2026-12-02T10:00:00+00:00",
                },
            },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {
                        "labels": {
                            **labels,
                            "sparkube.io/role": "driver",
                            "sparkube.test/phase": phase,
                        }
                    },
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "driver", "image": "spark:stand-in"}],
                    },
                },
            },
        },
    )


def test_down_names_a_running_job_and_needs_yes(
    cli: Cli, moto_aws: MotoAws, kube: KubeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _infra(cli, moto_aws.env, "--workers", "1").exit_code == 0
    kubeconfig = moto_aws.env.cluster_dir("sparkube") / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(yaml.safe_load(kube.kubeconfig.read_text())))
    kubeconfig.chmod(0o600)
    _driver_job(kube, "wc-20261202-1000-ab12")
    _driver_job(kube, "wc-20261202-0900-done", "Failed")  # an ended job does not count
    kube.wait_for(
        "the ended job's Failed condition",
        lambda: any(
            c["type"] == "Failed" and c["status"] == "True"
            for c in kube.get("/apis/batch/v1/namespaces/spark/jobs/wc-20261202-0900-done")
            .get("status", {})
            .get("conditions", [])
        ),
        timeout=60,
    )

    refused = cli("down", env=moto_aws.env)
    assert refused.exit_code == 2, refused.stderr
    sentence = _one_error(refused)
    assert "1 job is still running on cluster sparkube (wc-20261202-1000-ab12 (wordcount))" in (
        sentence
    )
    assert "0900-done" not in sentence
    assert "pass --yes" in sentence

    # On a terminal too: no question is asked while a job runs, only --yes deletes.
    asked: list[str] = []

    def confirm(text: str, **_: object) -> bool:
        asked.append(text)
        return True

    monkeypatch.setattr("typer.confirm", confirm)
    on_tty = cli("down", env=dataclasses.replace(moto_aws.env, interactive=True))
    assert on_tty.exit_code == 2 and asked == []
    assert _count(moto_aws)["instances"] == 2

    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert "stopping with the cluster: 1 job is running (wc-20261202-1000-ab12 (wordcount))" in (
        down.stderr
    )
    assert _count(moto_aws) == NOTHING


def test_down_goes_on_when_the_cluster_cannot_say_which_jobs_run(
    cli: Cli, moto_aws: MotoAws
) -> None:
    assert _infra(cli, moto_aws.env, "--workers", "0").exit_code == 0
    with socket.socket() as sock:  # a loopback port nobody listens on: refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "sparkube", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "sparkube",
    }
    path = moto_aws.env.cluster_dir("sparkube") / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert "could not check for running jobs: the API server did not answer" in down.stderr
    assert _count(moto_aws) == NOTHING


# --- 2. AWS throttling bursts -----------------------------------------------------------

_EC2_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
    "<Message>{message}</Message></Error></Errors>"
    "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)
_QUERY_ERROR = (
    "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}"
    "</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId>"
    "</ErrorResponse>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object) -> Any:
        yield self.body


#: Decides, per HTTP request (``service.Operation``, its n-th request, its form body),
#: whether AWS answers with an error instead: (HTTP status, code, message) or None.
Answer = Callable[[str, int, str], tuple[int, str, str] | None]


@contextlib.contextmanager
def aws_answers(monkeypatch: pytest.MonkeyPatch, answer: Answer) -> Iterator[dict[str, int]]:
    """AWS answers some requests with an error, as its endpoints do under load or when a
    zone is full.

    Injected at our own boundary: every client sparkube's ``AwsClients`` makes gets a
    botocore ``before-send`` handler, which runs inside botocore's retry loop, so
    sparkube's retry configuration and error handling meet the errors exactly as if AWS
    had sent them. Yields the number of requests seen per operation.
    """
    from urllib.parse import unquote_plus

    from botocore.awsrequest import AWSResponse

    from sparkube.aws.session import AwsClients

    seen: dict[str, int] = {}
    lock = threading.Lock()

    def before_send(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, op = event_name.split(".", 2)
        key = f"{service}.{op}"
        with lock:
            seen[key] = seen.get(key, 0) + 1
            count = seen[key]
        body = request.body if isinstance(request.body, bytes | str) else b""
        text = unquote_plus(body.decode() if isinstance(body, bytes) else body)
        error = answer(key, count, text)
        if error is None:
            return None
        status, code, message = error
        xml = (_EC2_ERROR if service == "ec2" else _QUERY_ERROR).format(code=code, message=message)
        return AWSResponse(request.url, status, {}, _Raw(xml.encode()))

    original = AwsClients.client

    def client(self: AwsClients, service: str, **kwargs: Any) -> Any:
        made = original(self, service, **kwargs)
        if not getattr(made.meta, "_fault_matrix", False):
            made.meta.events.register("before-send", before_send)
            made.meta._fault_matrix = True
        return made

    monkeypatch.setattr(AwsClients, "client", client)
    yield seen
    monkeypatch.setattr(AwsClients, "client", original)


def throttling(
    monkeypatch: pytest.MonkeyPatch, bursts: dict[str, tuple[str, int]]
) -> contextlib.AbstractContextManager[dict[str, int]]:
    """The first N requests of an operation are throttled (operation -> (code, N))."""

    def answer(key: str, count: int, _: str) -> tuple[int, str, str] | None:
        if key not in bursts or count > bursts[key][1]:
            return None
        return (503 if key.startswith("ec2.") else 400), bursts[key][0], "Rate exceeded"

    return aws_answers(monkeypatch, answer)


def _with(env: Environment, **variables: str) -> Environment:
    return dataclasses.replace(env, environ={**env.environ, **variables})


def test_throttling_bursts_are_retried_through(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _with(moto_aws.env, AWS_MAX_ATTEMPTS="4")
    bursts = {
        "ec2.RunInstances": ("RequestLimitExceeded", 3),
        "iam.CreateRole": ("Throttling", 3),
        "auto-scaling.CreateAutoScalingGroup": ("Throttling", 3),
    }
    with throttling(monkeypatch, bursts) as seen:
        up = _infra(cli, env, "--workers", "1")
    assert up.exit_code == 0, up.stderr
    assert seen["iam.CreateRole"] == 4  # 3 throttled, the 4th went through
    assert seen["ec2.RunInstances"] == 4  # the control plane's (workers: their group)
    assert seen["auto-scaling.CreateAutoScalingGroup"] == 4
    assert _count(moto_aws)["instances"] == 2
    _down_leaves_nothing(cli, moto_aws, env)


def test_a_throttling_burst_longer_than_the_retries_is_one_sentence_and_resumable(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _with(moto_aws.env, AWS_MAX_ATTEMPTS="4")
    with throttling(monkeypatch, {"ec2.RunInstances": ("RequestLimitExceeded", 4)}) as seen:
        up = _infra(cli, env, "--workers", "1")
    assert up.exit_code == 1, up.stderr
    assert seen["ec2.RunInstances"] == 4
    assert _one_error(up) == (
        "Error: AWS kept throttling sparkube (RunInstances); wait a minute and run the "
        "command again."
    )
    assert _count(moto_aws)["instances"] == 0
    resumed = cli("up", "--until", "infra", env=env)
    assert resumed.exit_code == 0, resumed.stderr
    assert _count(moto_aws)["instances"] == 2
    _down_leaves_nothing(cli, moto_aws, env)


# --- 3. no capacity in the first Availability Zone ----------------------------------------


def _no_capacity_in(subnets: dict[str, str], *full: str, suggest: str = "") -> Answer:
    """RunInstances fails as EC2 does when a zone is full: without a SubnetId, EC2 picks
    the first full zone (us-east-1a here); with one, it fails if that subnet's zone is
    full (``subnets``: subnet -> zone). The message has AWS's shape, naming the zone
    and, with ``suggest``, others."""

    def answer(key: str, _: int, body: str) -> tuple[int, str, str] | None:
        if key != "ec2.RunInstances":
            return None
        subnet = re.search(r"SubnetId=(subnet-[0-9a-f]+)", body)
        zone = full[0] if subnet is None else subnets.get(subnet.group(1))
        if zone not in full:
            return None
        message = (
            "We currently do not have sufficient t3.medium capacity in the Availability Zone "
            f"you requested ({zone}). Our system will be working on provisioning additional "
            "capacity."
        )
        if suggest:
            message += (
                " You can currently get t3.medium capacity by not specifying an "
                f"Availability Zone in your request or choosing {suggest}."
            )
        return 500, "InsufficientInstanceCapacity", message

    return answer


def _zones(moto_aws: MotoAws) -> dict[str, str]:
    ec2: Any = moto_aws.client("ec2")
    return {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}


def _node_zones(cli: Cli, env: Environment) -> dict[str, str]:
    status = json.loads(cli("status", "-o", "json", env=env).stdout)
    return {n["name"]: n["availability_zone"] for n in status["nodes"]}


def test_no_capacity_in_the_first_zone_launches_in_the_one_aws_suggests(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = _no_capacity_in(_zones(moto_aws), "us-east-1a", suggest="us-east-1c, us-east-1b")
    with aws_answers(monkeypatch, answer) as seen:
        up = _infra(cli, moto_aws.env, "--workers", "2")
    assert up.exit_code == 0, up.stderr
    assert "no t3.medium capacity in us-east-1a; trying us-east-1c" in up.stderr
    # EC2 sends capacity errors as HTTP 500, which botocore retries within its attempts
    # before sparkube sees them; then one call in us-east-1c, for the control plane. The
    # workers' group launches into the control plane's subnet, so they follow it there
    # (the group's own launches are not RunInstances calls of sparkube's: moto makes
    # them in-process, out of this injection's reach).
    tries = int(moto_aws.env.environ["AWS_MAX_ATTEMPTS"])
    assert seen["ec2.RunInstances"] == tries + 1
    assert set(_node_zones(cli, moto_aws.env).values()) == {"us-east-1c"}
    _down_leaves_nothing(cli, moto_aws, moto_aws.env)


def test_no_capacity_anywhere_is_one_sentence_then_up_resumes(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    zones = _zones(moto_aws)
    everywhere = sorted(set(zones.values()))
    answer = _no_capacity_in(zones, *everywhere)  # AWS suggests nothing
    with aws_answers(monkeypatch, answer) as seen:
        up = _infra(cli, moto_aws.env, "--workers", "1")
    assert up.exit_code == 1, up.stderr
    tries = int(moto_aws.env.environ["AWS_MAX_ATTEMPTS"])  # botocore's, per call
    assert seen["ec2.RunInstances"] == len(everywhere) * tries  # each zone once, no more
    sentence = _one_error(up)
    tried = ", ".join(everywhere)
    assert f"no spare t3.medium capacity in us-east-1 right now (tried {tried})" in sentence
    assert "another --instance-type" in sentence
    assert _count(moto_aws)["instances"] == 0
    resumed = cli("up", "--until", "infra", env=moto_aws.env)
    assert resumed.exit_code == 0, resumed.stderr
    assert _count(moto_aws)["instances"] == 2
    _down_leaves_nothing(cli, moto_aws, moto_aws.env)


def test_a_given_subnet_is_kept_and_the_sentence_says_what_to_change(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    zones = _zones(moto_aws)
    subnet = next(s for s, z in zones.items() if z == "us-east-1a")
    answer = _no_capacity_in(zones, "us-east-1a", suggest="us-east-1b")
    with aws_answers(monkeypatch, answer) as seen:
        up = _infra(cli, moto_aws.env, "--workers", "1", "--subnet-id", subnet)
    assert up.exit_code == 1
    assert seen["ec2.RunInstances"] == int(moto_aws.env.environ["AWS_MAX_ATTEMPTS"])
    assert "another subnet/AZ (--subnet-id)" in _one_error(up)
    _down_leaves_nothing(cli, moto_aws, moto_aws.env)


# --- the whole pipeline: moto + sshd hosts + the control plane ---------------------------


@dataclasses.dataclass
class Lab:
    """A cluster whose infra is made (moto) and whose nodes are sshd hosts, booted."""

    env: Environment
    moto: MotoAws
    ssh: SshLab
    kube: KubeControlPlane
    workers: int

    def calls(self, host: str, prefix: str) -> list[str]:
        return [c for c in self.ssh.hosts[host].calls() if c.startswith(prefix)]

    def status(self, cli: Cli) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(cli("status", "-o", "json", env=self.env).stdout)
        return result


@pytest.fixture
def lab(
    cli: Cli,
    moto_aws: MotoAws,
    ssh_lab: SshLab,
    kube: KubeControlPlane,
    request: pytest.FixtureRequest,
) -> Lab:
    request.getfixturevalue("coredns")  # the kubernetes phase waits for CoreDNS
    workers = len(kube.workers)
    assert _infra(cli, moto_aws.env, "--workers", str(workers)).exit_code == 0
    ssh_lab.authorize((moto_aws.env.cluster_dir("sparkube") / "id_ed25519.pub").read_text())
    ssh_lab.cluster("sparkube", workers=workers)
    admin = yaml.safe_dump(json.loads(kube.kubeconfig.read_text()))
    (ssh_lab.hosts["control-plane"].dir / "admin.conf.src").write_text(admin)
    for proc in ssh_lab.boot(render_prepare_script(ClusterSpec(workers=workers))):
        assert proc.wait(60) == 0
    env = _with(
        moto_aws.env,
        SPARKUBE_NODE_ADDRESSES=",".join(f"{k}={v}" for k, v in ssh_lab.overrides().items()),
        SPARKUBE_SSH_USER=ssh_lab.user,
        SPARKUBE_API_SERVER=kube.server,
        SPARKUBE_SKIP_ADDONS="metrics-server",  # see test_up_nodes.py
    )
    return Lab(env, moto_aws, ssh_lab, kube, workers)


def _complete(cli: Cli, lab: Lab) -> None:
    """``up`` completes the cluster: every phase done, one init, one join per worker."""
    up = cli("up", env=lab.env)
    assert up.exit_code == 0, up.stderr
    assert "Ready in" in up.stdout
    assert lab.status(cli)["phases_pending"] == []
    assert len(lab.calls("control-plane", "kubeadm init")) == 1
    for i in range(1, lab.workers + 1):
        assert len(lab.calls(f"worker-{i}", "kubeadm join")) == 1, f"worker-{i}"
    assert lab.kube.exists("/apis/apps/v1/namespaces/monitoring/deployments/kube-opex-analytics")


def _removed(cli: Cli, lab: Lab) -> None:
    _down_leaves_nothing(cli, lab.moto, lab.env)
    assert not lab.env.cluster_dir("sparkube").exists()


# --- 1. Ctrl-C in nodes, kubernetes and addons ---------------------------------------------


def _ctrl_c_at(monkeypatch: pytest.MonkeyPatch, phase: str, subject: str, text: str) -> None:
    """Press Ctrl-C when ``up`` reports that step: a real SIGINT to this process, which
    Python (or the phase's asyncio loop) turns into KeyboardInterrupt wherever the main
    thread is, as for a user's Ctrl-C."""
    at_step(monkeypatch, phase, subject, text, lambda: signal.raise_signal(signal.SIGINT))


@pytest.mark.parametrize(
    ("phase", "subject", "text", "done"),
    [
        ("nodes", "control-plane", "prepared", ["infra"]),
        ("kubernetes", "worker-1", "kubeadm join", ["infra", "nodes"]),
        ("addons", "spark", "job settings", ["infra", "nodes", "kubernetes"]),
    ],
)
def test_ctrl_c_in_a_phase_then_up_resumes_and_down_removes_all(
    cli: Cli,
    lab: Lab,
    monkeypatch: pytest.MonkeyPatch,
    phase: str,
    subject: str,
    text: str,
    done: list[str],
) -> None:
    if phase != "nodes":  # get to the phase first
        previous = ["nodes", "kubernetes", "addons"][["kubernetes", "addons"].index(phase)]
        assert cli("up", "--until", previous, env=lab.env).exit_code == 0
    with monkeypatch.context() as patch:
        _ctrl_c_at(patch, phase, subject, text)
        interrupted = cli("up", env=lab.env)
    assert interrupted.exit_code == 130, interrupted.stderr
    assert f"✗ {phase}" in interrupted.stderr
    assert _one_error(interrupted) == (
        "Error: Interrupted; run 'sparkube up' again to resume, or 'sparkube down' to remove "
        "what was made."
    )
    assert lab.status(cli)["phases_done"] == done
    _complete(cli, lab)
    _removed(cli, lab)


# --- 4. a node never reachable over SSH -------------------------------------------------


def test_a_node_never_reachable_is_named_and_up_resumes_once_it_is(cli: Cli, lab: Lab) -> None:
    lab.ssh.set_reachable(lab.ssh.hosts["worker-2"], False)
    env = _with(lab.env, SPARKUBE_SSH_BOOT_TIMEOUT="3")
    up = cli("up", env=env)
    assert up.exit_code == 1, up.stderr
    sentence = _one_error(up)
    address = lab.ssh.hosts["worker-2"].address
    assert f"Cannot reach worker-2 at {address} over SSH after 3 s" in sentence
    assert "port 22 is open to your address" in sentence
    assert "run 'sparkube up' again" in sentence
    assert "worker-1" not in sentence and "worker-3" not in sentence
    assert lab.status(cli)["phases_done"] == ["infra"]
    lab.ssh.set_reachable(lab.ssh.hosts["worker-2"], True)
    _complete(cli, lab)
    _removed(cli, lab)
