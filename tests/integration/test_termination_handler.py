"""aws-node-termination-handler (sparkube/kube/termination.py) as the real program, on
this host, against the real test API server, with the settings and RBAC sparkube ships.

The binary is the one tools/nodes/build.sh builds from the Go module at the pinned
version (``bin/nth/node-termination-handler`` of the nodes cache; when it is missing
the tests skip, which CI, where build.sh runs first, turns into a failure). Each handler
runs as its image does: user 1000, no capabilities, no new privileges, a read-only root
file system, its service account's token and the cluster CA at the in-cluster paths
(``/var/run/secrets/kubernetes.io/serviceaccount``, on a tmpfs of a private mount
namespace: the program has no flag for another path, so this needs root and
``unshare``), the API server as ``KUBERNETES_SERVICE_HOST``/``PORT`` and the DaemonSet's
environment as shipped (``NODE_NAME`` a kwok node's). Its instance metadata is a stand-in
on loopback (``INSTANCE_METADATA_URL``): IMDSv2 only (a token from ``PUT
/latest/api/token``, every read without it refused with 401, as on sparkube's instances),
the identity and other paths the program reads at start, no scheduled event, and
``spot/instance-action`` and ``events/recommendations/rebalance`` 404 until the test
gives the notice. Nothing leaves loopback.

On each node: a bare pod with an emptyDir and ``terminationGracePeriodSeconds: 100``
(an executor with time to migrate its blocks) and a DaemonSet's pod. kwok plays the
kubelet: it runs the pods and removes a pod once it is being deleted.
"""

from __future__ import annotations

import copy
import datetime as dt
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkube.kube.termination import MARKET_LABEL, NTH_NAME, render_termination_handler
from tests.fixtures import nodebed
from tests.fixtures.common import rules_without
from tests.fixtures.controlplane import KubeControlPlane

pytestmark = pytest.mark.integration

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)
TOKEN_PATH = "/latest/api/token"
SPOT_PATH = "/latest/meta-data/spot/instance-action"
REBALANCE_PATH = "/latest/meta-data/events/recommendations/rebalance"
SCHEDULED_PATH = "/latest/meta-data/events/maintenance/scheduled"
DRAINED = "Node successfully cordoned and drained"
CORDONED = "Node successfully cordoned"
DRAIN_FAILED = "There was a problem while trying to cordon and drain the node"
CORDON_FAILED = "There was a problem while trying to cordon the node"
EXECUTOR_GRACE = 100
#: What each verb of the shipped ClusterRole is for, as the handler shows without it:
#: (node cordoned, executor evicted). Its first drain fails in every case, refused that
#: verb; without ``pods get`` it evicts but cannot see the pod go, so its drain fails
#: and is tried again every two seconds until nothing is left to evict.
WITHOUT: dict[Grant, tuple[bool, bool, bool]] = {  # (cordoned, evicted, tainted)
    ("", "nodes", "get"): (False, False, False),  # it finds its Node by name (no list)
    ("", "nodes", "patch"): (False, False, True),  # the cordon
    ("", "nodes", "update"): (True, True, False),  # the taint (the drain goes on)
    ("", "pods", "list"): (True, False, True),  # the pods on the node
    ("", "pods", "get"): (True, True, True),  # waiting for each evicted pod to go
    ("", "pods/eviction", "create"): (True, False, True),  # the evictions
    ("apps", "daemonsets", "get"): (True, False, True),  # a DaemonSet's pod is left alone
}
SPOT_TAINT = "aws-node-termination-handler/spot-itn"
REBALANCE_TAINT = "aws-node-termination-handler/rebalance-recommendation"


def binary_problem() -> str | None:
    """Why the handler cannot run here (a skip reason), or None."""
    if not os.access(nth_binary(), os.X_OK):
        return (
            f"no aws-node-termination-handler binary at {nth_binary()}: "
            "run sudo bash tools/nodes/build.sh (its nth piece)"
        )
    if os.geteuid() != 0:
        return "the handler reads its token at a fixed path: a private mount namespace needs root"
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} not found (util-linux)"
    return None


def nth_binary() -> Path:
    return nodebed.cache_dir() / "bin" / "nth" / "node-termination-handler"


@pytest.fixture
def nth(kube: KubeControlPlane) -> KubeControlPlane:
    problem = binary_problem()
    if problem:
        pytest.skip(problem)
    return kube


def shipped() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render_termination_handler()) if d]


def shipped_env() -> dict[str, str]:
    """The DaemonSet's environment with literal values (the rest comes from the pod)."""
    (ds,) = [d for d in shipped() if d["kind"] == "DaemonSet"]
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def grants(role: dict[str, Any]) -> list[Grant]:
    return [(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]]  # fmt: skip


def without(role: dict[str, Any], removed: Grant) -> dict[str, Any]:
    """The ClusterRole less one verb of one resource (a rule left empty dropped)."""
    out = copy.deepcopy(role)
    out["rules"] = rules_without(out["rules"], *removed)
    return out


# --------------------------------------------------------------------------- metadata


class Metadata:
    """An EC2 instance metadata service stand-in for one instance, IMDSv2 only."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.token = f"token-{instance_id}"
        self.spot_notice: str | None = None
        self.rebalance_notice: str | None = None
        self.hits: dict[str, int] = {}
        self.refused = 0  # reads without the token
        self._lock = threading.Lock()
        meta = self
        identity = {
            "accountId": "123456789012", "instanceId": instance_id,
            "instanceType": "m6i.large", "privateIp": "10.0.1.23",
            "availabilityZone": "us-east-1a", "region": "us-east-1",
        }  # fmt: skip
        static = {
            "/latest/dynamic/instance-identity/document": json.dumps(identity),
            "/latest/meta-data/instance-id": instance_id,
            "/latest/meta-data/instance-type": "m6i.large",
            "/latest/meta-data/instance-life-cycle": "spot",
            "/latest/meta-data/local-hostname": "ip-10-0-1-23.ec2.internal",
            "/latest/meta-data/local-ipv4": "10.0.1.23",
            "/latest/meta-data/placement/availability-zone": "us-east-1a",
            SCHEDULED_PATH: "[]",
        }

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if self.path != TOKEN_PATH or not ttl.isdigit():
                    self.answer(400)
                    return
                meta.count(TOKEN_PATH)
                data = meta.token.encode()
                self.send_response(200)
                self.send_header("X-aws-ec2-metadata-token-ttl-seconds", ttl)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != meta.token:
                    with meta._lock:
                        meta.refused += 1
                    self.answer(401)
                    return
                meta.count(self.path)
                body = {SPOT_PATH: meta.spot_notice, REBALANCE_PATH: meta.rebalance_notice}.get(
                    self.path, static.get(self.path)
                )
                self.answer(200, body) if body is not None else self.answer(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path: str) -> None:
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    def polls(self, path: str) -> int:
        with self._lock:
            return self.hits.get(path, 0)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def notice_time(seconds: int) -> str:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- one node


@dataclass
class Case:
    """One kwok node with an executor pod and a DaemonSet's pod, and its handler."""

    name: str  # node, namespace and instance
    account: tuple[str, str]  # the handler's service account (namespace, name)
    notice: str = "spot"  # or "rebalance"
    role: dict[str, Any] | None = None  # a ClusterRole to bind the account to (else shipped)
    removed: Grant | None = None
    meta: Metadata | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    daemon_pod: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)  # the executor's watch

    def lines(self) -> list[dict[str, Any]]:
        """The handler's log (JSON_LOGGING), a line that is no JSON as its message."""
        out = []
        assert self.log is not None
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(dict(json.loads(line)))
            except ValueError:
                out.append({"message": line})
        return out

    def messages(self) -> list[str]:
        return [str(line.get("message", "")) for line in self.lines()]

    def tail(self, lines: int = 40) -> str:
        assert self.log is not None
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _make_node(kube: KubeControlPlane, case: Case) -> None:
    ns = kube.create_namespace(case.name)
    kube.add_node(case.name, labels={MARKET_LABEL: "spot", "sparkube.test/nth": case.name})
    daemonset = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "node-agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "node-agent"}},
            "template": {
                "metadata": {"labels": {"app": "node-agent"}},
                "spec": {"nodeSelector": {"sparkube.test/nth": case.name},
                         "containers": [{"name": "agent", "image": "busybox"}]},
            },
        },
    }  # fmt: skip
    kube.api("POST", f"/apis/apps/v1/namespaces/{ns}/daemonsets", daemonset)
    executor = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "executor"},
        "spec": {
            "nodeName": case.name,
            "terminationGracePeriodSeconds": EXECUTOR_GRACE,
            "containers": [{"name": "executor", "image": "busybox",
                            "volumeMounts": [{"name": "blocks", "mountPath": "/blocks"}]}],
            "volumes": [{"name": "blocks", "emptyDir": {}}],
        },
    }  # fmt: skip
    kube.api("POST", f"/api/v1/namespaces/{ns}/pods", executor)


def _pods_running(kube: KubeControlPlane, case: Case) -> bool:
    pods = kube.get(f"/api/v1/namespaces/{case.name}/pods")["items"]
    running = {p["metadata"]["name"]: p for p in pods if p["status"].get("phase") == "Running"}
    daemon = [n for n in running if n.startswith("node-agent-")]
    if "executor" not in running or len(daemon) != 1:
        return False
    case.daemon_pod = daemon[0]
    return True


def _watch_executor(kube: KubeControlPlane, case: Case) -> None:
    """Every change of the executor pod from now on, in a thread (its deletion grace
    period is in the eviction's change only: kwok then deletes it at once)."""
    rv = kube.pod(case.name, "executor")["metadata"]["resourceVersion"]
    query = urllib.parse.urlencode({"watch": "1", "resourceVersion": rv, "timeoutSeconds": "150",
                                    "fieldSelector": "metadata.name=executor"})  # fmt: skip
    req = urllib.request.Request(f"{kube.server}/api/v1/namespaces/{case.name}/pods?{query}")
    resp = urllib.request.urlopen(req, context=kube._ssl, timeout=160)

    def read() -> None:
        with resp:
            for line in resp:
                case.events.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()


def _start(kube: KubeControlPlane, case: Case, workdir: Path, token: str) -> None:
    case.meta = Metadata(f"i-0{abs(hash(case.name)) % 16**16:016x}")
    secrets = workdir / case.name
    secrets.mkdir()
    (secrets / "token").write_text(token)
    shutil.copyfile(kube.ca_file, secrets / "ca.crt")
    case.log = workdir / f"{case.name}.log"
    env = {
        **shipped_env(),
        "PATH": "/usr/bin:/bin",
        "GOMAXPROCS": "1",
        "NODE_NAME": case.name,
        "POD_NAME": f"{NTH_NAME}-{case.name}",
        "NAMESPACE": "kube-system",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(kube.port),
        "INSTANCE_METADATA_URL": case.meta.url,
    }
    # As the image runs it: the in-cluster paths on a tmpfs of its own mount namespace,
    # the binary bound there too (the cache may be in root's home), then / and that
    # tmpfs read-only, user 1000 with no capabilities and no way to gain any.
    script = (
        "set -e; mount -t tmpfs -o size=1m,mode=0755 tmpfs /run; "
        "d=/run/secrets/kubernetes.io/serviceaccount; mkdir -p $d; "
        'cp "$1/token" "$1/ca.crt" $d/; chmod 0444 $d/token $d/ca.crt; '
        'touch /run/nth; mount --bind "$2" /run/nth; '
        "mount -o remount,bind,ro /; mount -o remount,bind,ro /run; "
        "exec setpriv --reuid=1000 --regid=1000 --clear-groups --no-new-privs "
        "--bounding-set=-all --inh-caps=-all /run/nth"
    )
    with case.log.open("wb") as out:
        case.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             str(secrets), str(nth_binary())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip


def _stop(case: Case) -> None:
    if case.proc is not None and case.proc.poll() is None:
        os.killpg(case.proc.pid, signal.SIGTERM)
        try:
            case.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(case.proc.pid, signal.SIGKILL)
            case.proc.wait(10)
    if case.meta is not None:
        case.meta.stop()


def _apply_rbac(kube: KubeControlPlane, case: Case, role: dict[str, Any]) -> None:
    """The shipped ClusterRole, or one less verb, bound to the case's own account."""
    ns, account = case.account
    kube.create_service_account(ns, account)
    name = f"nth-test-{case.name}"
    kube.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
             {**role, "metadata": {"name": name}})  # fmt: skip
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns}],
    }  # fmt: skip
    kube.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)


def _apply_shipped_rbac(kube: KubeControlPlane) -> None:
    """The shipped service account, ClusterRole and binding, as ``up`` applies them."""
    for doc in shipped():
        if doc["kind"] == "DaemonSet":
            continue
        ns = doc["metadata"].get("namespace")
        kind = doc["kind"]
        if kind == "ServiceAccount":
            path = f"/api/v1/namespaces/{ns}/serviceaccounts"
        else:
            path = f"/apis/rbac.authorization.k8s.io/v1/{kind.lower()}s"
        kube.api("POST", path, doc)


@dataclass
class Outcome:
    cordoned: bool
    #: the taint saying what came (spot-itn, rebalance-recommendation), if any
    taint: str | None
    evicted: bool
    grace: int | None  # the executor's deletion grace period, as the eviction set it
    daemon_pod_left: bool
    drained: bool  # the handler said its first drain (a rebalance: cordon) was done
    failed: bool  # ... or that it failed
    error: str = field(default="", compare=False)  # ... and why


def _outcome(kube: KubeControlPlane, case: Case) -> Outcome:
    node = kube.get(f"/api/v1/nodes/{case.name}")
    deleting = [
        e["object"]["metadata"]
        for e in case.events
        if e["type"] == "DELETED" or e["object"]["metadata"].get("deletionTimestamp")
    ]
    # the first change that marked it for deletion: the eviction's (kwok's delete follows)
    grace = deleting[0].get("deletionGracePeriodSeconds") if deleting else None
    exists = kube.exists(f"/api/v1/namespaces/{case.name}/pods/executor")
    daemon = kube.pod(case.name, case.daemon_pod)
    done = DRAINED if case.notice == "spot" else CORDONED
    said = [line for line in case.lines() if line.get("message") in (done, DRAIN_FAILED,
                                                                     CORDON_FAILED)]  # fmt: skip
    first = said[0]["message"] if said else None
    taints = [t for t in node["spec"].get("taints") or []
              if t["key"].startswith("aws-node-termination-handler/")]  # fmt: skip
    return Outcome(
        cordoned=bool(node["spec"].get("unschedulable")),
        taint=f"{taints[0]['key']}:{taints[0]['effect']}" if taints else None,
        evicted=bool(deleting) or not exists,
        grace=grace,
        daemon_pod_left=not daemon["metadata"].get("deletionTimestamp"),
        drained=first == done,
        failed=first in (DRAIN_FAILED, CORDON_FAILED),
        error=str(said[0].get("error", "")) if said else "",
    )


def _run(kube: KubeControlPlane, cases: list[Case], workdir: Path) -> dict[str, Outcome]:
    """Every case's handler side by side: first no notice (nothing may happen), then the
    notice; each case's outcome once its handler said how its first drain went."""
    for case in cases:
        _make_node(kube, case)
        if case.role is not None:
            _apply_rbac(kube, case, case.role)
    kube.wait_for("the pods of every node Running",
                  lambda: all(_pods_running(kube, c) for c in cases), 60)  # fmt: skip
    try:
        for case in cases:
            _start(kube, case, workdir, kube.token_for(*case.account))
        # Not before the notice: every handler has polled for it twice, found none (404)
        # and left its node and pods alone. (With nodes get refused, it first spends 8 s
        # trying to read its node for the reboot check.)
        kube.wait_for(
            "every handler polling its metadata for a notice",
            lambda: (
                all(c.meta is not None and c.meta.polls(SPOT_PATH) >= 2 for c in cases)
                or any(c.proc is not None and c.proc.poll() is not None for c in cases)
            ),
            60,
        )
        for case in cases:
            assert case.proc is not None and case.proc.poll() is None, case.tail()
            assert case.meta is not None
            assert case.meta.polls(TOKEN_PATH) >= 1 and case.meta.refused == 0, case.name
            assert case.meta.polls(REBALANCE_PATH) >= 1 and case.meta.polls(SCHEDULED_PATH) >= 1
            node = kube.get(f"/api/v1/nodes/{case.name}")
            assert not node["spec"].get("unschedulable"), (case.name, case.tail())
            assert not kube.pod(case.name, "executor")["metadata"].get("deletionTimestamp")
            _watch_executor(kube, case)
        # The notices: EC2's two minutes ahead, as EC2 gives them.
        for case in cases:
            assert case.meta is not None
            body = json.dumps({"action": "terminate", "time": notice_time(120)})
            if case.notice == "rebalance":
                case.meta.rebalance_notice = json.dumps({"noticeTime": notice_time(0)})
            else:
                case.meta.spot_notice = body
        kube.wait_for(
            "every handler to say how its drain went",
            lambda: all(o.drained or o.failed for o in (_outcome(kube, c) for c in cases)),
            60, interval=0.5,
        )  # fmt: skip
        time.sleep(1.0)  # an eviction after a rebalance's cordon would show by now
        outcomes = {c.name: _outcome(kube, c) for c in cases}
        for case in cases:
            assert case.proc is not None
            assert case.proc.poll() is None, f"{case.name} exited:\n{case.tail()}"
        return outcomes
    finally:
        for case in cases:
            _stop(case)
        for case in cases:  # a cordoned node would stay in the session's API server
            kube.delete_node(case.name)


def test_a_spot_notice_drains_the_node_and_a_rebalance_only_cordons(
    nth: KubeControlPlane, tmp_path: Path
) -> None:
    """The shipped RBAC, service account and settings. A spot interruption notice: the
    node is cordoned and the executor evicted with its own grace period (100 s, not the
    handler's), its emptyDir no obstacle, the DaemonSet's pod left; the handler says the
    drain is done. A rebalance recommendation alone: the node cordoned, no pod touched."""
    kube = nth
    _apply_shipped_rbac(kube)
    account = ("kube-system", NTH_NAME)
    cases = [Case("nth-spot", account), Case("nth-rebalance", account, notice="rebalance")]
    t0 = time.monotonic()
    outcomes = _run(kube, cases, tmp_path)
    print(f"\nhandlers started, notices given and handled in {time.monotonic() - t0:.1f} s")
    # It read the shipped settings under the names it printed them (in snake case; it
    # prints neither of the last two).
    (printed,) = [line for line in cases[0].lines()
                  if line.get("message") == "aws-node-termination-handler arguments"]  # fmt: skip
    unread = set()
    for name, value in shipped_env().items():
        if name.lower() in printed:
            assert str(printed[name.lower()]).lower() == value.lower(), (name, printed)
        else:
            unread.add(name)
    assert unread == {"ENABLE_ASG_LIFECYCLE_DRAINING", "ENABLE_PROBES_SERVER"}, unread
    spot, rebalance = outcomes["nth-spot"], outcomes["nth-rebalance"]
    drained = Outcome(cordoned=True, taint=f"{SPOT_TAINT}:NoSchedule", evicted=True,
                      grace=EXECUTOR_GRACE, daemon_pod_left=True, drained=True,
                      failed=False)  # fmt: skip
    assert spot == drained, cases[0].tail()
    cordoned = Outcome(cordoned=True, taint=f"{REBALANCE_TAINT}:NoSchedule", evicted=False,
                       grace=None, daemon_pod_left=True, drained=True, failed=False)  # fmt: skip
    assert rebalance == cordoned, cases[1].tail()


def test_each_verb_of_the_shipped_clusterrole_is_needed(
    nth: KubeControlPlane, tmp_path: Path
) -> None:
    """The shipped ClusterRole less one verb at a time, each on its own node with its own
    handler, all at once: every time the first drain fails, and the node is not cordoned
    or the executor is not evicted (or, without ``pods get``, the handler cannot see it
    go), as WITHOUT says. (With all of them: the test above.)"""
    kube = nth
    (role,) = [d for d in shipped() if d["kind"] == "ClusterRole"]
    assert sorted(grants(role)) == sorted(WITHOUT), "a verb shipped or gone: update WITHOUT"
    cases = []
    for index, removed in enumerate(grants(role)):
        name = f"nth-without-{index}"
        cases.append(Case(name, (name, "handler"), role=without(role, removed), removed=removed))
    t0 = time.monotonic()
    outcomes = _run(kube, cases, tmp_path)
    print(f"\n{len(cases)} handlers, each without one verb: {time.monotonic() - t0:.1f} s")
    wrong = {}
    for case in cases:
        assert case.removed is not None
        got = outcomes[case.name]
        print(f"without {case.removed}: cordoned {got.cordoned}, evicted {got.evicted}, "
              f"first drain failed {got.failed}")  # fmt: skip
        _, resource, verb = case.removed
        if case.removed == ("", "nodes", "update"):
            # the taint is a step before the drain: its refusal is logged, the drain done
            refused = any('cannot update resource "nodes"' in line.get("error", "")
                          for line in case.lines())  # fmt: skip
            failed_as_said = not got.failed
        else:
            refused = f'cannot {verb} resource "{resource}"' in got.error  # for that reason
            failed_as_said = got.failed
        seen = (got.cordoned, got.evicted, got.taint is not None)
        if seen != WITHOUT[case.removed] or not failed_as_said or not refused:
            wrong[case.removed] = (got, case.tail(15))
        assert got.daemon_pod_left, case.name
    assert not wrong, wrong
