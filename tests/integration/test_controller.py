"""The controller's loop against the real test control plane (real API server, Job
controller and scheduler; kwok plays the kubelets of three 2-CPU workers).

Jobs here are plain suspended Jobs carrying sparkube's admission annotation, whose one
pod is labelled as a sparkube driver: kwok runs it and completes it after a delay, as a
driver ending. Executors are left out (minimum 0): kwok has no Spark to create them;
whole-job admission with executors on real nodes is tests/bed/test_4_queue.py. What
this proves on the real API: the Lease (one acting replica, a successor after release),
the merge patches (suspend off, annotations on and off), the reads of every namespace's
pods, and a queue that drains in order as pods end. With its scaler, against moto's
Auto Scaling: the group grows for a queued job and its idle worker leaves.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sparkube.aws.session import AwsClients
from sparkube.controller import NAMESPACE, admission, scalelog
from sparkube.controller.jointoken import NODE_TOKEN_GROUP, Renewer
from sparkube.controller.lease import LEASE_NAME, Lease, holder
from sparkube.controller.loop import Controller
from sparkube.controller.scalelog import ScaleLog
from sparkube.cost import model as cost_model
from sparkube.cost.collect import gather
from sparkube.kube.client import client_from_kubeconfig
from sparkube.nodes import selfjoin
from sparkube.nodes.kubeadm import JoinCommand
from sparkube.spark.diagnose import parse_cpu
from tests.fixtures.common import rules_without
from tests.fixtures.controlplane import KubeControlPlane

pytestmark = pytest.mark.integration

NS = "queue-test"
LEASE_NS = "queue-lease"


def suspended_job(
    name: str, cpu: str, *, delay: str = "2s", node_selector: dict[str, str] | None = None
) -> dict[str, Any]:
    asks = {
        "driver": {"cpu": parse_cpu(cpu), "memory_bytes": 2**30},
        "executor": {"cpu": 1.0, "memory_bytes": 2**30},
        "min_executors": 0,
    }
    labels = {"app.kubernetes.io/managed-by": "sparkube", "sparkube.io/job": name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {admission.ASKS: json.dumps(asks)},
        },
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {**labels, "sparkube.io/role": "driver"},
                    "annotations": {"sparkube.test/delay": delay},
                },
                "spec": {
                    "restartPolicy": "Never",
                    **({"nodeSelector": node_selector} if node_selector else {}),
                    "containers": [
                        {
                            "name": "driver",
                            "image": "busybox",
                            "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}},
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
def controller(kube: KubeControlPlane) -> Iterator[Controller]:
    kube.create_namespace(NS)
    kube.create_namespace(LEASE_NS)
    client = client_from_kubeconfig(kube.kubeconfig)
    ctl = Controller(client, jobs_namespace=NS, lease=Lease(client, LEASE_NS, "test-a"))
    ctl.start_watches()
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    yield ctl
    ctl.stopping.set()
    ctl.wake.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def _job(kube: KubeControlPlane, name: str) -> dict[str, Any]:
    return dict(kube.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}"))


def _started(kube: KubeControlPlane, name: str) -> bool:
    return _job(kube, name)["spec"].get("suspend") is False


def test_a_queue_larger_than_the_workers_drains_in_order(
    kube: KubeControlPlane, controller: Controller
) -> None:
    # each driver asks 1.5 of a worker's 2 CPU: one job per worker at a time
    workers = len(kube.workers)
    names = [f"q{i}" for i in range(workers + 2)]
    for name in names:
        kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                 suspended_job(name, "1500m", delay="12s"))  # fmt: skip
        time.sleep(0.05)  # distinct creation order (seconds resolution: tie by name)
    kube.wait_for(
        f"{workers} jobs started", lambda: all(_started(kube, n) for n in names[:workers]), 60
    )

    # once the last admitted job's driver is placed, the next says what it waits for:
    # 1.5 CPU are free in all, but 0.5 on each worker
    def waits_for_room() -> bool:
        ann = _job(kube, names[workers])["metadata"]["annotations"]
        return ann.get(admission.WAITS_FOR) == "a worker with room for a pod of 1.5 CPU and 1Gi"

    kube.wait_for("the next job to wait for a worker", waits_for_room, 30, interval=0.2)
    waiting = _job(kube, names[workers])
    assert waiting["spec"]["suspend"] is True
    assert waiting["metadata"]["annotations"][admission.POSITION] == "1"
    last = _job(kube, names[workers + 1])["metadata"]["annotations"]
    assert last[admission.POSITION] == "2"
    assert last[admission.WAITS_FOR] == f"job {names[workers]} ahead of it"
    # never more running at once than there is room for, and everyone finishes
    seen_running: list[int] = []

    def all_done() -> bool:
        pods = kube.get(f"/api/v1/namespaces/{NS}/pods")["items"]
        seen_running.append(sum(1 for p in pods if p["status"].get("phase") == "Running"))
        jobs = [_job(kube, n) for n in names]
        return all(
            any(c["type"] == "Complete" and c["status"] == "True"
                for c in j.get("status", {}).get("conditions", []))
            for j in jobs
        )  # fmt: skip

    kube.wait_for("every job complete", all_done, 90, interval=0.2)
    assert max(seen_running) <= workers
    for name in names:
        ann = _job(kube, name)["metadata"]["annotations"]
        assert admission.ADMITTED in ann
        assert admission.POSITION not in ann and admission.WAITS_FOR not in ann


def test_a_full_on_demand_worker_queues_a_spot_clusters_job_rather_than_its_driver_on_spot(
    kube: KubeControlPlane, controller: Controller
) -> None:
    """Spot workers with room, the one on-demand worker full: the next job's driver
    (which requires sparkube.io/market=on-demand, as a spot cluster's drivers do) is not
    started onto spot. It waits, saying for what, and starts on the on-demand worker once
    the job there ended (the real scheduler places it)."""
    market = "sparkube.io/market"
    on_demand, *spot = kube.workers
    assert spot, "the control plane fixture has one worker"
    for name, value in [(on_demand, "on-demand")] + [(n, "spot") for n in spot]:
        kube.api("PATCH", f"/api/v1/nodes/{name}", {"metadata": {"labels": {market: value}}},
                 content_type="application/merge-patch+json")  # fmt: skip
    try:
        selector = {market: "on-demand"}
        kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                 suspended_job("od-1", "1500m", delay="10s", node_selector=selector))  # fmt: skip
        kube.wait_for("od-1 started", lambda: _started(kube, "od-1"), 30)
        time.sleep(1.1)  # the creation times order the queue
        kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                 suspended_job("od-2", "1500m", delay="2s", node_selector=selector))  # fmt: skip

        def waits() -> str:
            return str(_job(kube, "od-2")["metadata"].get("annotations", {})
                       .get(admission.WAITS_FOR, ""))  # fmt: skip

        wanted = f"a worker with {market}=on-demand"
        kube.wait_for("od-2 to say what it waits for", lambda: waits().startswith(wanted), 30)
        assert not _started(kube, "od-2")  # the spot workers have room: not used for it
        kube.wait_for("od-2 started once od-1 ended", lambda: _started(kube, "od-2"), 60)

        def placed() -> str:
            pods = kube.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dod-2")
            return str(pods["items"][0]["spec"].get("nodeName") or "") if pods["items"] else ""

        kube.wait_for("od-2's driver placed", lambda: placed() != "", 30)
        assert placed() == on_demand
    finally:
        for name in kube.workers:
            kube.api("PATCH", f"/api/v1/nodes/{name}", {"metadata": {"labels": {market: None}}},
                     content_type="application/merge-patch+json")  # fmt: skip


def test_a_job_that_never_fits_is_marked_and_does_not_hold_the_queue(
    kube: KubeControlPlane, controller: Controller
) -> None:
    kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", suspended_job("huge", "3"))
    kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", suspended_job("small", "500m"))
    kube.wait_for("small started", lambda: _started(kube, "small"), 30)
    ann = _job(kube, "huge")["metadata"]["annotations"]
    assert ann[admission.NEVER] == "true"
    assert ann[admission.WAITS_FOR].startswith("its driver pod asks for 3 CPU and 1Gi"), ann


def _taint(kube: KubeControlPlane, node: str, key: str) -> None:
    taints = kube.get(f"/api/v1/nodes/{node}")["spec"].get("taints") or []
    kube.api("PATCH", f"/api/v1/nodes/{node}",
             {"spec": {"taints": [*taints, {"key": key, "effect": "NoSchedule"}]}},
             content_type="application/merge-patch+json")  # fmt: skip


def test_a_job_on_a_worker_the_termination_handler_taints_is_told_on_its_job(
    kube: KubeControlPlane, controller: Controller
) -> None:
    """aws-node-termination-handler taints a spot worker on EC2's notice (then drains
    it): the controller tells each running job with a pod there, on its Job, once per
    node and kind; another taint, on the node of another of its executors, tells
    nothing."""
    from sparkube.controller import interruptions
    from sparkube.model import MARKET_LABEL

    kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
             suspended_job("spotted", "500m", delay="600s"))  # fmt: skip
    kube.wait_for("the job started", lambda: _started(kube, "spotted"), 30)

    def driver_placed() -> bool:  # on a worker of its own, before the spot ones come
        pods = kube.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3Dspotted")
        return bool(pods["items"] and pods["items"][0]["spec"].get("nodeName"))

    kube.wait_for("the driver placed", driver_placed, 30)
    kube.add_node("w-spot", "2", "4Gi", labels={MARKET_LABEL: "spot"})
    kube.add_node("w-other", "2", "4Gi", labels={MARKET_LABEL: "spot"})
    for index, node in enumerate(("w-spot", "w-other")):
        executor = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"spotted-exec-{index + 1}",
                "labels": {
                    "app.kubernetes.io/managed-by": "sparkube",
                    "sparkube.io/job": "spotted",
                    "spark-role": "executor",
                },
            },
            "spec": {
                "nodeName": node,
                "containers": [{"name": "executor", "image": "busybox"}],
            },
        }
        kube.api("POST", f"/api/v1/namespaces/{NS}/pods", executor)
        kube.wait_pod_phase(NS, f"spotted-exec-{index + 1}", "Running")

    def told() -> list[dict[str, Any]]:
        ann = _job(kube, "spotted")["metadata"].get("annotations") or {}
        return list(json.loads(ann.get(interruptions.ANNOTATION, "[]")))

    _taint(kube, "w-other", "example.com/maintenance")
    _taint(kube, "w-spot", "aws-node-termination-handler/spot-itn")
    (entry,) = kube.wait_for("the job told", lambda: told() or None, 30, interval=0.2)
    assert (entry["node"], entry["kind"], entry["executors"], entry["driver"]) == (
        "w-spot", "spot", 1, False
    )  # fmt: skip
    at = dt.datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.UTC) - at).total_seconds()) < 30
    # a second kind on the same node is one more entry; the first stays as it was
    _taint(kube, "w-spot", "aws-node-termination-handler/rebalance-recommendation")
    both = kube.wait_for("the second entry", lambda: told() if len(told()) == 2 else None, 30)
    assert both[0] == entry and both[1]["kind"] == "rebalance"
    time.sleep(2 * 5.0)  # more cycles (the 5 s resync): nothing more is written
    assert told() == both
    assert all(e["node"] == "w-spot" for e in both)


def test_one_controller_acts_and_a_successor_takes_over_after_release(
    kube: KubeControlPlane,
) -> None:
    kube.create_namespace(LEASE_NS)
    client = client_from_kubeconfig(kube.kubeconfig)
    first, second = Lease(client, LEASE_NS, "one"), Lease(client, LEASE_NS, "two")
    assert holder(client, LEASE_NS) == (None, None)
    assert first.hold() and not second.hold()
    assert first.hold()  # renewing
    who, age = holder(client, LEASE_NS)
    assert who == "one" and age is not None and age < 5
    first.release()
    assert second.hold() and not first.hold()
    lease = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{LEASE_NAME}")
    assert lease["spec"]["holderIdentity"] == "two"
    assert lease["spec"]["leaseTransitions"] == 1


# ---------------------------------------------------------------------------- its RBAC

Rule = tuple[str, str, str, str]  # (where: "cluster" or a namespace, apiGroup, resource, verb)


def shipped_rbac() -> list[dict[str, Any]]:
    from sparkube.manifests import render_manifest

    text = render_manifest(
        "sparkube-controller",
        {"NAMESPACE": NAMESPACE, "JOBS_NAMESPACE": "spark", "IMAGE": "x", "CLUSTER": "c",
         "REGION": "r"},
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(text) if d and d["kind"] in ("ClusterRole", "Role")]


def grants(docs: list[dict[str, Any]]) -> list[Rule]:
    out = []
    for doc in docs:
        where = doc["metadata"].get("namespace", "cluster")
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out += [(where, group, resource, verb) for verb in rule["verbs"]]
    return out


def without(docs: list[dict[str, Any]], removed: Rule | None) -> list[dict[str, Any]]:
    """The shipped roles less one verb of one resource (rules left empty dropped)."""
    out = copy.deepcopy(docs)
    if removed is None:
        return out
    where, group, resource, verb = removed
    for doc in out:
        if doc["metadata"].get("namespace", "cluster") != where:
            continue
        doc["rules"] = rules_without(doc["rules"], group, resource, verb)
    return out


def _apply_roles(kube: KubeControlPlane, docs: list[dict[str, Any]], account: str) -> None:
    for doc in docs:
        kind, ns = doc["kind"], doc["metadata"].get("namespace")
        name = f"{account}-{kind.lower()}"
        role = {**doc, "metadata": {"name": name, **({"namespace": ns} if ns else {})}}
        binding_kind = "ClusterRoleBinding" if kind == "ClusterRole" else "RoleBinding"
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": binding_kind,
            "metadata": {"name": name, **({"namespace": ns} if ns else {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
        }
        base = "/apis/rbac.authorization.k8s.io/v1" + (f"/namespaces/{ns}" if ns else "")
        kube.api("POST", f"{base}/{kind.lower()}s", role)
        kube.api("POST", f"{base}/{binding_kind.lower()}s", binding)


def _calls(client: Any, name: str, ssm: Any, node: str) -> tuple[list[str], bool]:
    """Every kind of call the controller makes, as it makes them: take the Lease and
    renew it, one cycle (lists; a merge patch admitting the queued job), a watch of
    each kind, a renewal of the join token (a bootstrap token Secret; the join
    parameter in moto's SSM, written near expiry first), and a worker retired (``node``
    cordoned, then its Node object removed). Returns the calls refused (403) and whether
    the job was admitted."""
    import httpx2
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.batch_v1 import Job
    from lightkube.resources.core_v1 import Node, Pod

    refused = []
    lease = Lease(client, NAMESPACE, name)
    ctl = Controller(client, jobs_namespace="spark", lease=lease)
    calls = [
        ("take the Lease", lease.hold),
        ("renew the Lease", lease.hold),
        ("a cycle", ctl.cycle),
        ("watch Jobs", lambda: next(iter(client.watch(Job, namespace="spark")))),
        ("watch Pods", lambda: next(iter(client.watch(Pod, namespace="*")))),
        ("watch Nodes", lambda: next(iter(client.watch(Node)))),
        ("renew the join token", lambda: _renew_now(client, ssm)),
        ("cordon a worker that goes", lambda: ctl._cordon(node)),
        ("remove the Node of a worker gone", lambda: ctl._forget(node)),
    ]
    for what, call in calls:
        try:
            call()
        except ApiError as exc:
            if exc.status.code != 403:
                raise
            refused.append(what)
        except httpx2.HTTPStatusError as exc:  # a watch refused at its start
            if exc.response.status_code != 403:
                raise
            refused.append(what)
    return refused, False


def _renew_now(client: Any, ssm: Any) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    ssm.put_parameter(Name=selfjoin.parameter_name("c"), Value=selfjoin.parameter_value(
        OLD_JOIN, soon), Type="SecureString", Overwrite=True)  # fmt: skip
    said = Renewer(ssm, "c").renew(client, time.time())
    assert said and "new bootstrap token" in said, said


def test_each_rule_of_the_controllers_roles_is_needed(
    kube: KubeControlPlane, moto_aws: Any
) -> None:
    """The shipped ClusterRole and Roles, then each less one verb: with all of them every
    call the controller makes goes through and it admits a queued job; without any one
    of them, one of its calls is refused (so no rule is there for nothing)."""
    for ns in ("spark", NAMESPACE):
        kube.create_namespace(ns)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    kube.api("POST", "/api/v1/namespaces/spark/pods", pod)  # something for a watch to see
    docs = shipped_rbac()
    rules = grants(docs)
    assert rules, "no rules shipped"
    results: dict[Rule | None, list[str]] = {}
    for index, removed in enumerate([None, *rules]):
        account = f"ctl-{index}"
        kube.create_service_account(NAMESPACE, account)
        _apply_roles(kube, without(docs, removed), account)
        job = suspended_job(f"rbac-{index}", "100m", delay="60s")
        kube.api("POST", "/apis/batch/v1/namespaces/spark/jobs", job)
        token = kube.token_for(NAMESPACE, account)
        client = _client_with_token(kube, token)
        kube.api(  # each variant takes the Lease afresh
            "DELETE",
            f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE_NAME}",
            ok_statuses=(404,),
        )
        kube.add_node(f"gone-{index}", "2", "4Gi")
        refused, _ = _calls(client, account, moto_aws.client("ssm"), f"gone-{index}")
        admitted = _job_in(kube, "spark", f"rbac-{index}")["spec"].get("suspend") is False
        results[removed] = refused + ([] if admitted else ["admitting the job"])
        kube.api("DELETE", f"/apis/batch/v1/namespaces/spark/jobs/rbac-{index}"
                 "?propagationPolicy=Background")  # fmt: skip
        # (a node left would take jobs in the tests after this one: same API server)
        kube.api("DELETE", f"/api/v1/nodes/gone-{index}", ok_statuses=(404,))
    assert results[None] == [], results[None]
    unneeded = [rule for rule in rules if not results[rule]]
    assert unneeded == [], f"rules no call of the controller needs: {unneeded}"
    for rule in rules:
        print(f"without {rule}: refused {results[rule]}")


#: What ``up`` wrote into the join parameter (a token the renewal replaces).
OLD_JOIN = JoinCommand("10.0.1.23:6443", "abcdef.0123456789abcdef", ("sha256:" + "ab" * 32,))


def test_the_controller_renews_the_join_token_before_it_expires(
    kube: KubeControlPlane, moto_aws: Any
) -> None:
    """Workers the group launches hours after ``up`` still join: when the parameter's
    token expires within 45 minutes, the controller makes a bootstrap token as kubeadm
    does (its Secret in kube-system; the API server then authenticates it) and writes
    the parameter again with it, the address and CA hash kept; not before; and without
    a parameter it says so in one line."""
    ssm = moto_aws.client("ssm")
    client = client_from_kubeconfig(kube.kubeconfig)
    name = selfjoin.parameter_name("demo")
    now = time.time()
    later = dt.datetime.fromtimestamp(now, dt.UTC) + dt.timedelta(minutes=50)
    ssm.put_parameter(Name=name, Value=selfjoin.parameter_value(OLD_JOIN, later),
                      Type="SecureString")  # fmt: skip
    renewer = Renewer(ssm, "demo")
    assert renewer.renew(client, now) is None  # 50 minutes left: not yet
    assert not renewer.due(now + 30) and renewer.due(now + 61)
    said = renewer.renew(client, now + 6 * 60)  # 44 minutes left
    assert said is not None and "new bootstrap token" in said, said
    value = json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    assert (value["endpoint"], value["ca_cert_hash"]) == (
        OLD_JOIN.endpoint,
        OLD_JOIN.ca_cert_hashes[0],
    )
    token_id, token_secret = value["token"].split(".")
    assert value["token"] != OLD_JOIN.token and value["token"] not in said
    secret = kube.get(f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token_id}")
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["token-secret"] == token_secret
    assert data["auth-extra-groups"] == NODE_TOKEN_GROUP
    assert data["usage-bootstrap-authentication"] == "true"
    expires = dt.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
    assert expires.strftime("%Y-%m-%dT%H:%M:%SZ") == value["expires"]
    assert abs((expires - dt.datetime.fromtimestamp(now + 6 * 60, dt.UTC)).total_seconds()
               - selfjoin.TOKEN_TTL.total_seconds()) < 2  # fmt: skip
    assert renewer.renew(client, now + 7 * 60) is None  # fresh now
    assert "no join parameter /sparkube/other/join" in str(Renewer(ssm, "other").renew(client, now))


def _job_in(kube: KubeControlPlane, ns: str, name: str) -> dict[str, Any]:
    return dict(kube.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}"))


def _client_with_token(kube: KubeControlPlane, token: str) -> Any:
    """A lightkube client of the test API server with a service account's token."""
    import httpx2
    from lightkube import Client, KubeConfig

    admin = yaml.safe_load(kube.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )
    return Client(config=config, timeout=httpx2.Timeout(15.0), field_manager="t",
                  trust_env=False)  # fmt: skip


def test_a_controller_that_renews_its_lease_but_cannot_act_is_reported(
    kube: KubeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its rights to the Jobs taken away (a binding deleted by hand): it still holds its
    Lease, and says on it why its cycles fail, which a queued submit reports instead of
    waiting for ever."""
    from sparkube.spark import watch
    from sparkube.spark.cluster import ClusterJobs

    for ns in ("spark", NAMESPACE):
        kube.create_namespace(ns)
    account = "ctl-broken"
    kube.create_service_account(NAMESPACE, account)
    docs = shipped_rbac()
    _apply_roles(kube, without(docs, ("spark", "batch", "jobs", "list")), account)
    client = _client_with_token(kube, kube.token_for(NAMESPACE, account))
    ctl = Controller(client, jobs_namespace="spark", lease=Lease(client, NAMESPACE, "broken"))
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    admin = ClusterJobs(client_from_kubeconfig(kube.kubeconfig), lambda _region: None)
    monkeypatch.setattr(watch, "CONTROLLER_FAILING", 0.0)
    failing = "the cluster's sparkube controller runs but fails"

    def reported() -> str | None:
        # until the controller has made its Lease, "no controller" is what is reported
        # (a race this test lost on a loaded machine): wait for the failure itself
        said = admin.controller_problem()
        return said if said and said.startswith(failing) else None

    try:
        problem = kube.wait_for("the failure on the Lease", reported, 30)
    finally:
        ctl.stopping.set()
        ctl.wake.set()
        thread.join(timeout=30)
    said = 'User "system:serviceaccount:sparkube-system:ctl-broken" cannot list resource "jobs"'
    assert problem.startswith(
        f"the cluster's sparkube controller runs but fails (jobs.batch is forbidden: {said}"
    ), problem
    assert problem.endswith("; run sparkube up to put its service account's rights back")


# --------------------------------------------------------------------------- scaling


def _provider(instance: dict[str, Any]) -> str:
    return f"aws:///{instance['AvailabilityZone']}/{instance['InstanceId']}"


def _cordon(kube: KubeControlPlane, name: str, on: bool) -> None:
    kube.api("PATCH", f"/api/v1/nodes/{name}", {"spec": {"unschedulable": on or None}},
             content_type="application/merge-patch+json")  # fmt: skip


def test_the_controller_grows_the_group_for_a_queued_job_and_removes_the_idle_worker(
    kube: KubeControlPlane, cli: Any, moto_aws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The controller with its scaler, on the real API server and moto's Auto Scaling:
    the group ``up --until infra`` made (one worker, at most three). A second job that
    does not fit makes the controller raise the group's desired count; moto launches the
    instance, and the test registers it as a node the way its kubelet would (with
    ``providerID aws:///ZONE/INSTANCE``; kwok plays it); the queued job starts there. When
    the second job has ended, its worker goes while the first job still runs on the other
    (the exact instance, the desired count lowered, no replacement); the other stays once
    it idles too, at the group's minimum; the idle times are on the Lease."""
    caplog.set_level(logging.INFO, logger="sparkube.controller")  # its decisions, if it fails
    from sparkube.controller import scaling
    from sparkube.controller.loop import Scaler

    up = cli("up", "--until", "infra", "--allow-cidr", "203.0.113.7/32", "--workers", "1",
             "--max-workers", "3", env=moto_aws.env)  # fmt: skip
    assert up.exit_code == 0, up.stderr
    asg: Any = moto_aws.client("autoscaling")
    group_name = "sparkube-sparkube-workers"

    def members() -> list[dict[str, Any]]:
        (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ]
        return [i for i in g["Instances"] if i["LifecycleState"] == "InService"]

    (first,) = members()
    for name in kube.workers:  # jobs go to the group's workers only
        _cordon(kube, name, True)
    kube.create_namespace(NS)
    kube.create_namespace(LEASE_NS)
    client = client_from_kubeconfig(kube.kubeconfig)
    node_of = {first["InstanceId"]: "w-1"}
    kube.add_node("w-1", "2", "4Gi", provider_id=_provider(first))
    s3: Any = moto_aws.client("s3")
    (bucket,) = [
        b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("sparkube-")
    ]
    scaler = Scaler(asg, group_name, scaling.Shape(2.0, 4 * 2**30), idle_seconds=4.0,
                    record=ScaleLog(s3, bucket))  # fmt: skip
    ctl = Controller(client, jobs_namespace=NS, lease=Lease(client, LEASE_NS, "scaler"),
                     scaler=scaler)  # fmt: skip
    ctl.start_watches()
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()
    try:
        kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                 suspended_job("s1", "1500m", delay="600s"))  # fmt: skip
        kube.wait_for("s1 started", lambda: _started(kube, "s1"), 30)
        time.sleep(1.1)  # the creation times order the queue
        kube.api("POST", f"/apis/batch/v1/namespaces/{NS}/jobs",
                 suspended_job("s2", "1500m", delay="4s"))  # fmt: skip
        # the controller asks for one more worker; moto launches it at once
        kube.wait_for("a second worker in the group", lambda: len(members()) == 2, 60)
        (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ]
        assert g["DesiredCapacity"] == 2  # one more, not more than the job needs
        (second,) = [i for i in members() if i["InstanceId"] not in node_of]
        assert not _started(kube, "s2")  # no room until the new node is there
        node_of[second["InstanceId"]] = "w-2"
        kube.add_node("w-2", "2", "4Gi", provider_id=_provider(second))
        kube.wait_for("s2 started on the new worker", lambda: _started(kube, "s2"), 30)

        def placed(job: str) -> str:
            pods = kube.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=job-name%3D{job}")
            return str(pods["items"][0]["spec"].get("nodeName") or "")

        kube.wait_for("s2's pod placed", lambda: placed("s2") != "", 30)
        assert placed("s2") == "w-2"

        # s2 ends first: w-2 idles while s1 still runs on w-1; after the idle time w-2
        # goes (the group is above its minimum of 1), w-1 stays
        kube.wait_for("back to one worker", lambda: len(members()) == 1, 90, interval=0.5)
        (left,) = members()
        assert left["InstanceId"] == first["InstanceId"]
        # its Node object goes with it (nothing else would remove it)
        kube.wait_for(
            "w-2's Node removed",
            lambda: kube.api("GET", "/api/v1/nodes/w-2", ok_statuses=(404,)).get("code") == 404,
            30,
        )
        (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ]
        assert g["DesiredCapacity"] == 1

        # w-1 idles too once s1 is gone (deleted here: a run time of its own would race
        # w-2's idle time on a loaded machine), but the minimum keeps it; its idle time is
        # kept on the Lease for a successor
        kube.api("DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/s1",
                 {"propagationPolicy": "Background"})  # fmt: skip

        def marked() -> bool:
            lease = kube.get(
                f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{LEASE_NAME}"
            )
            marks = json.loads(lease["metadata"]["annotations"].get(scaling.IDLE_SINCE, "{}"))
            return "w-1" in marks

        kube.wait_for("w-1's idle time on the Lease", marked, 60, interval=0.5)
        time.sleep(scaler.idle_seconds + 2)
        assert [i["InstanceId"] for i in members()] == [first["InstanceId"]]

        # Both changes are in the bucket for the ledger, and usage's figures count them:
        # the worker the group added is the instance that went, with its hours.
        grow, shrink = scalelog.read(s3, bucket)
        assert (grow.kind, grow.desired_from, grow.desired_to, grow.maximum) == ("grow", 1, 2, 3)
        assert "job s2 needs 1 more worker" in grow.reason
        assert (shrink.kind, shrink.desired_from, shrink.desired_to) == ("shrink", 2, 1)
        assert (shrink.instance, shrink.node) == (second["InstanceId"], "w-2")
        assert "idle for" in shrink.reason and grow.at <= shrink.at
        # what remains of the instance once EC2 forgets it: type, zone, first seen
        assert shrink.instance_type == second["InstanceType"], shrink
        assert shrink.zone == second["AvailabilityZone"]
        assert shrink.since is not None and grow.at <= shrink.since <= shrink.at
        ledger = gather(
            AwsClients(moto_aws.env.environ, "us-east-1"), "sparkube", "us-east-1", bucket
        )
        assert ledger.scaling == (grow, shrink)
        summary = cost_model.scaling(ledger, cost_model.compute(ledger))
        assert (summary.grew, summary.shrank) == (1, 1)
        assert summary.added == [second["InstanceId"]], summary
        assert summary.peak_workers == 2 and summary.added_hours > 0
    finally:
        ctl.stopping.set()
        ctl.wake.set()
        thread.join(timeout=30)
        for name in kube.workers:
            _cordon(kube, name, False)


def test_the_node_of_a_worker_that_left_the_group_is_removed_once_not_ready(
    kube: KubeControlPlane, cli: Any, moto_aws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A spot reclaim: EC2 terminates the instance and Auto Scaling takes it out of the
    group (and replaces it). Nothing else removes its Node object (no cloud controller
    manager), so the controller does, once the node is NotReady; the node of a member
    still in the group stays, Ready or not."""
    caplog.set_level(logging.INFO, logger="sparkube.controller")
    from sparkube.controller import scaling
    from sparkube.controller.loop import Scaler

    up = cli("up", "--until", "infra", "--allow-cidr", "203.0.113.7/32", "--workers", "2",
             "--max-workers", "2", env=moto_aws.env)  # fmt: skip
    assert up.exit_code == 0, up.stderr
    asg: Any = moto_aws.client("autoscaling")
    group_name = "sparkube-sparkube-workers"
    (g,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    lost, kept = g["Instances"]
    kube.create_namespace(NS)
    kube.create_namespace(LEASE_NS)
    kube.add_node("w-lost", "2", "4Gi", ready=False, provider_id=_provider(lost))
    kube.add_node("w-kept", "2", "4Gi", ready=False, provider_id=_provider(kept))
    client = client_from_kubeconfig(kube.kubeconfig)
    scaler = Scaler(asg, group_name, scaling.Shape(2.0, 4 * 2**30), idle_seconds=600.0)
    ctl = Controller(client, jobs_namespace=NS, lease=Lease(client, LEASE_NS, "reclaim"),
                     scaler=scaler)  # fmt: skip
    ctl.start_watches()
    thread = threading.Thread(target=ctl.run, daemon=True)
    thread.start()

    def exists(name: str) -> bool:
        return kube.api("GET", f"/api/v1/nodes/{name}", ok_statuses=(404,)).get("code") != 404

    try:
        kube.wait_for("the controller saw both members", lambda: len(ctl.first_seen) == 2, 30)
        asg.detach_instances(InstanceIds=[lost["InstanceId"]],
                             AutoScalingGroupName=group_name,
                             ShouldDecrementDesiredCapacity=True)  # fmt: skip
        ctl.wake.set()
        kube.wait_for("w-lost's Node removed", lambda: not exists("w-lost"), 30, interval=0.5)
        assert exists("w-kept")  # still a member (NotReady: a worker booting)
        assert any("w-lost" in r.getMessage() and "left the group" in r.getMessage()
                   for r in caplog.records)  # fmt: skip
    finally:
        ctl.stopping.set()
        ctl.wake.set()
        thread.join(timeout=30)
        for name in ("w-lost", "w-kept"):
            kube.api("DELETE", f"/api/v1/nodes/{name}", ok_statuses=(404,))
