"""Interruptions of a job's workers (sparkube/controller/interruptions.py): which Jobs the
controller tells, on the API's JSON shapes; what ``jobs`` and the live line say; the
record keeping them; the work an interruption made Spark do again, from an event log."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparkube.cli.jobs import _cost_text
from sparkube.controller import interruptions
from sparkube.controller.interruptions import Interruption, changes, describe, live, parse
from sparkube.cost.jobs import Rework
from sparkube.spark import watch
from sparkube.spark.records import JobRecord, parse_record
from sparkube.spark.watch import JobWatching, Outcome, Progress

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


def test_the_record_keeps_the_interruptions_and_old_records_still_read() -> None:
    old = {"job_id": "j", "app": "a.py", "kind": "submit", "state": "Succeeded",
           "submitted": "2025-12-06T05:00:00Z"}  # fmt: skip
    rec = parse_record(old)
    assert rec is not None and rec.interruptions == []
    entry = {"node": "w", "kind": "spot", "at": AT, "executors": 2, "driver": False}
    kept = parse_record({**old, "interruptions": [entry, "junk"]})
    assert kept is not None and kept.interruptions == [entry]
    assert parse_record({**old, "interruptions": "junk"}) == rec
    again = parse_record(json.loads(json.dumps(JobRecord(**{**old, "interruptions": [entry]})
                                               .to_json())))  # fmt: skip
    assert again is not None and again.interruptions == [entry]


class _Follower:
    def __init__(self, *_: Any) -> None:
        self.lines: list[str] = []

    def start(self) -> None: ...

    def drain(self) -> None: ...

    def stop(self) -> None: ...


class _Watched(JobWatching):
    """A job running for a few polls, its Job gaining interruptions meanwhile (the
    cluster replaced by the answers it would give)."""

    def __init__(self, told: list[list[dict[str, Any]]]) -> None:
        super().__init__(None, lambda _region: None)
        self.told, self.polls, self.job_reads = told, 0, 0

    def progress(self, job_id: str, started: float) -> tuple[Progress, Any, list[Any]]:
        self.polls += 1
        phase = "Running" if self.polls <= len(self.told) else "Succeeded"
        driver = {
            "metadata": {"name": "d", "annotations": {"sparkube.io/decommission": "on"}},
            "status": {"phase": phase},
        }
        return Progress(phase, 1, 0, 1, 0.0), driver, [{"metadata": {"name": "e"}}]

    def stuck(self, *_: Any) -> None:
        return None

    def _job(self, job_id: str) -> dict[str, Any]:
        self.job_reads += 1
        return job(job_id, self.told[min(self.polls, len(self.told)) - 1])

    def finish(self, job_id: str, driver: Any, *, streamed: Any = None) -> Outcome:
        return Outcome(0, "Succeeded", driver, [])


def test_a_watching_submit_says_each_interruption_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "LogFollower", _Follower)
    monkeypatch.setattr(watch, "INTERRUPTION_CHECK_INTERVAL", 0.0)
    spot = {"node": "worker-3", "kind": "spot", "at": AT, "executors": 1, "driver": False}
    cordon = {"node": "worker-4", "kind": "rebalance", "at": AT, "executors": 2, "driver": False}
    polls = [[], [spot], [spot], [spot, cordon], [spot, cordon]]
    said: list[str] = []
    watched = _Watched(polls)
    watched.wait("j", on_interruption=said.append, interval=0.0)
    assert said == [
        "worker-3 interrupted (spot): 1 executor decommissioning, its blocks moving to the "
        "other executors and the bucket",
        "worker-4 cordoned (rebalance recommendation): no new pod goes there, the job's pods stay",
    ]
    assert watched.job_reads == len(polls)  # one read per check, while it runs
    # a caller that shows no interruption costs no read of the Job
    quiet = _Watched(polls)
    quiet.wait("j", interval=0.0)
    assert quiet.job_reads == 0


def test_jobs_says_what_an_interruption_cost() -> None:
    assert _cost_text(Rework()) == "interruption cost: no task re-run"
    assert _cost_text(Rework(3, 41.4)) == "interruption cost ≈ 41 s of task time (3 tasks re-run)"
    assert _cost_text(Rework(1, 1500.0, {(0, 1), (2, 1)})) == (
        "interruption cost ≈ 25 min of task time (1 task re-run, 2 stages re-attempted)"
    )


def test_the_record_written_at_the_end_keeps_what_the_job_was_told() -> None:
    class Ending(JobWatching):
        def driver_log(self, pod: str, container: str = "driver") -> str:
            return "done\n"

    driver = {
        "metadata": {"name": "j-driver"},
        "status": {"containerStatuses": [{"name": "driver", "state": {"terminated": {
            "exitCode": 0, "startedAt": "2025-12-06T05:40:00Z",
            "finishedAt": "2025-12-06T05:50:00Z"}}}]},
    }  # fmt: skip
    spot = {"node": "worker-3", "kind": "spot", "at": AT, "executors": 1, "driver": False}
    ending = Ending(None, lambda _region: None)
    _, changes_, _ = ending.ended("j", driver, job=job("j", [spot]))
    assert changes_["interruptions"] == [spot]
    _, untouched, _ = ending.ended("j", driver, job=job("j"))
    assert "interruptions" not in untouched  # nothing to add to the record
