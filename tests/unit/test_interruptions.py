"""Interruptions of a job's workers (sparkube/controller/interruptions.py): which Jobs the
controller tells, on the API's JSON shapes; what ``jobs`` and the live line say; the
record keeping them; the work an interruption made Spark do again, from an event log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparkube.controller import interruptions
from sparkube.controller.interruptions import Interruption, changes, describe, live, parse

NOW = 1_765_000_000.0  # 2025-12-06T05:46:40Z
AT = "2025-12-06T05:46:40Z"
NTH = "aws-node-termination-handler/"


def node(name: str, *taints: str, control_plane: bool = False) -> dict[str, Any]:
    labels = {"node-role.kubernetes.io/control-plane": ""} if control_plane else {}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": [{"key": t, "effect": "NoSchedule"} for t in taints]},
    }


def pod(
    name: str, job: str, where: str, role: str = "executor", *, phase: str = "Running",
    namespace: str = "spark", deleting: bool = False,
) -> dict[str, Any]:  # fmt: skip
    labels = {"sparkube.io/job": job}
    if role == "driver":
        labels["sparkube.io/role"] = "driver"
        labels["spark-role"] = "driver"
    else:
        labels["spark-role"] = "executor"
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2025-12-06T05:46:39Z"
    return {"metadata": meta, "spec": {"nodeName": where}, "status": {"phase": phase}}


def job(name: str, told: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    ann = {interruptions.ANNOTATION: json.dumps(told)} if told is not None else {}
    return {
        "metadata": {"name": name, "namespace": "spark", "annotations": ann},
        "spec": {"suspend": False},
        "status": status,
    }


def test_a_spot_notice_is_told_to_each_job_with_pods_on_the_node() -> None:
    nodes = [node("worker-1"), node("worker-3", NTH + "spot-itn")]
    pods = [
        pod("a-driver", "a", "worker-1", "driver"),
        pod("a-exec-1", "a", "worker-3"),
        pod("a-exec-2", "a", "worker-3", deleting=True),  # evicted, decommissioning
        pod("a-exec-3", "a", "worker-1"),
        pod("b-exec-1", "b", "worker-1"),  # b has nothing on worker-3
    ]
    said = changes([job("a"), job("b")], pods, nodes, NOW)
    assert said == {"a": [Interruption("worker-3", "spot", AT, executors=2, driver=False)]}
    assert json.loads(interruptions.dumps(said["a"])) == [
        {"node": "worker-3", "kind": "spot", "at": AT, "executors": 2, "driver": False}
    ]


@pytest.mark.parametrize(
    ("taint", "kind"),
    [
        ("spot-itn", "spot"),
        ("rebalance-recommendation", "rebalance"),
        ("scheduled-maintenance", "maintenance"),
        ("asg-lifecycle-termination", "asg-lifecycle-termination"),
    ],
)
def test_each_taint_of_the_handler_is_a_kind(taint: str, kind: str) -> None:
    said = changes([job("a")], [pod("x", "a", "w")], [node("w", NTH + taint)], NOW)
    assert [e.kind for e in said["a"]] == [kind]


def test_other_taints_ended_pods_and_other_places_tell_nothing() -> None:
    pods = [pod("x", "a", "w")]
    for nodes in (
        [node("w", "example.com/maintenance", "node.kubernetes.io/unschedulable")],
        [node("w", "aws-node-termination-handler")],  # no kind after the prefix
        [node("w", NTH + "spot-itn", control_plane=True)],
        [node("other", NTH + "spot-itn"), node("w")],
    ):
        assert changes([job("a")], pods, nodes, NOW) == {}, nodes
    tainted = [node("w", NTH + "spot-itn")]
    assert changes([job("a")], [pod("x", "a", "w", phase="Succeeded")], tainted, NOW) == {}
    # a pod counts only in its Job's namespace
    assert changes([job("a")], [pod("x", "a", "w", namespace="other")], tainted, NOW) == {}
    # a Job that ended or is being deleted is told nothing more
    done = job("a", conditions=[{"type": "Complete", "status": "True"}])
    assert changes([done], pods, tainted, NOW) == {}
    going = job("a")
    going["metadata"]["deletionTimestamp"] = AT
    assert changes([going], pods, tainted, NOW) == {}


def test_entries_are_merged_once_per_node_and_kind_and_never_removed() -> None:
    first = {"node": "w", "kind": "rebalance", "at": "2025-12-06T05:40:00Z", "executors": 3,
             "driver": False}  # fmt: skip
    gone = {"node": "worker-9", "kind": "spot", "at": "2025-12-06T05:00:00Z", "executors": 1,
            "driver": False}  # fmt: skip
    pods = [pod("x", "a", "w")]
    # told already, taint still there: nothing written (the same count or not)
    told = job("a", [gone, first])
    assert changes([told], pods, [node("w", NTH + "rebalance-recommendation")], NOW) == {}
    # the notice follows the recommendation: one more entry, the earlier ones kept as
    # they were (worker-9 is long gone)
    nodes = [node("w", NTH + "rebalance-recommendation", NTH + "spot-itn")]
    (entries,) = changes([told], pods, nodes, NOW).values()
    assert [e.to_json() for e in entries] == [
        gone, first, {"node": "w", "kind": "spot", "at": AT, "executors": 1, "driver": False}
    ]  # fmt: skip


def test_a_driver_on_the_node_is_said() -> None:
    pods = [pod("d", "a", "w", "driver")]
    said = changes([job("a")], pods, [node("w", NTH + "scheduled-maintenance")], NOW)
    assert said["a"] == [Interruption("w", "maintenance", AT, 0, driver=True)]


def test_malformed_annotations_give_what_reads_as_entries() -> None:
    assert parse("not json") == parse(None) == parse({"node": "w"}) == []
    assert parse('[{"node": "w", "kind": "spot", "executors": "2"}, 3, {"kind": "spot"}]') == [
        Interruption("w", "spot", "", 0, False)
    ]
    # an unreadable annotation is replaced by a good one once the job is hit
    bad = job("a")
    bad["metadata"]["annotations"][interruptions.ANNOTATION] = "{oops"
    said = changes([bad], [pod("x", "a", "w")], [node("w", NTH + "spot-itn")], NOW)
    assert [e.node for e in said["a"]] == ["w"]


def test_what_jobs_and_the_live_line_say() -> None:
    spot = Interruption("worker-3", "spot", AT, executors=2)
    one = Interruption("worker-3", "spot", AT, executors=1)
    assert describe(spot, "on") == "worker-3 interrupted (spot): 2 executors decommissioned"
    assert describe(spot, "off") == "worker-3 interrupted (spot): 2 executors lost"
    assert describe(spot, "") == "worker-3 interrupted (spot): 2 executors lost"
    rebalance = Interruption("worker-3", "rebalance", AT, executors=2)
    assert describe(rebalance, "on") == "worker-3 cordoned (rebalance recommendation)"
    assert describe(Interruption("w", "maintenance", AT, 0, True), "on") == (
        "w interrupted (maintenance): its driver evicted"
    )
    assert live(one, "on") == (
        "worker-3 interrupted (spot): 1 executor decommissioning, its blocks moving to the "
        "other executors and the bucket"
    )
    assert live(spot, "off") == (
        "worker-3 interrupted (spot): 2 executors lost: Spark recomputes their shuffle output"
    )
    assert live(rebalance, "on").startswith("worker-3 cordoned (rebalance recommendation): ")
