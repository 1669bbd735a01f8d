"""Admission rules (sparkube/controller/admission.py) on the API's JSON shapes."""

from __future__ import annotations

import json
from typing import Any

from sparkube.controller import admission
from sparkube.controller.admission import Ask, QueueJob, Room, decide, place, rooms

GI = 2**30


def node(name: str, cpu: str = "2", memory: str = "3800Mi", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(
    name: str,
    node_name: str | None,
    cpu: str,
    memory: str,
    *,
    job: str | None = None,
    role: str | None = None,
    phase: str = "Running",
    init: tuple[str, str] | None = None,
) -> dict[str, Any]:
    labels = {}
    if job:
        labels["sparkube.io/job"] = job
    if role == "driver":
        labels["sparkube.io/role"] = "driver"
    elif role == "executor":
        labels["spark-role"] = "executor"
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    }
    if init:
        spec["initContainers"] = [
            {"name": "i", "resources": {"requests": {"cpu": init[0], "memory": init[1]}}}
        ]
    if node_name:
        spec["nodeName"] = node_name
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"phase": phase},
    }


def job(
    name: str,
    created: str,
    *,
    driver: tuple[float, int] = (0.5, GI),
    executor: tuple[float, int] = (1.0, GI),
    executors: int = 1,
    start: int | None = None,
    suspended: bool = True,
    admitted: str | None = None,
    conditions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    asks = {
        "driver": {"cpu": driver[0], "memory_bytes": driver[1]},
        "executor": {"cpu": executor[0], "memory_bytes": executor[1]},
        "min_executors": executors,
    }
    if start is not None:
        asks["start_executors"] = start
    ann = {admission.ASKS: json.dumps(asks)}
    if admitted:
        ann[admission.ADMITTED] = admitted
    return {
        "metadata": {"name": name, "creationTimestamp": created, "annotations": ann},
        "spec": {"suspend": suspended},
        "status": {"conditions": conditions or []},
    }


def test_rooms_leave_out_what_pods_cannot_land_on_and_subtract_placed_pods() -> None:
    nodes = [
        node("control-plane", taints=[{"key": "cp", "effect": "NoSchedule"}]),
        node("worker-1"),
        node("worker-2", unschedulable=True),
        {**node("worker-3"), "status": {"allocatable": {"cpu": "2"}, "conditions": []}},
        node("worker-4", cpu="1900m", memory="3Gi"),
    ]
    pods = [
        pod("a", "worker-1", "500m", "1Gi"),
        pod("b", "worker-1", "250m", "512Mi", init=("1", "256Mi")),  # init counts: 1 CPU
        pod("done", "worker-1", "1", "1Gi", phase="Succeeded"),
        pod("elsewhere", "worker-4", "100m", "100Mi"),
        pod("unplaced", None, "1", "1Gi"),
    ]
    got = {r.name: r for r in rooms(nodes, pods)}
    assert sorted(got) == ["worker-1", "worker-4"]
    assert got["worker-1"].free_cpu == 2 - 0.5 - 1
    assert got["worker-1"].free_memory == 3800 * 2**20 - GI - 512 * 2**20
    assert abs(got["worker-4"].free_cpu - 1.8) < 1e-9


def test_place_is_all_or_nothing() -> None:
    free = [Room("w1", 2, 4 * GI, 1.5, 2 * GI), Room("w2", 2, 4 * GI, 1.0, 3 * GI)]
    assert not place([Ask(1.0, GI), Ask(1.0, GI), Ask(1.0, GI)], free)
    assert (free[0].free_cpu, free[1].free_cpu) == (1.5, 1.0)  # untouched
    assert place([Ask(1.0, GI), Ask(1.0, GI)], free)
    assert (free[0].free_cpu, free[1].free_cpu) == (0.5, 0.0)


def test_second_job_waits_while_the_first_holds_the_room_then_starts() -> None:
    nodes = [node("worker-1", cpu="2", memory="3800Mi")]
    first = job("j1", "2026-12-07T01:00:00Z", executor=(1.0, int(1.5 * GI)))
    second = job("j2", "2026-12-07T01:00:01Z", executor=(1.0, int(1.5 * GI)))
    queue = admission.queue_jobs([second, first], [], now=0)
    d = decide(queue, rooms(nodes, []))
    assert d.admit == ["j1"]
    assert d.waiting["j2"].position == 1
    assert d.waiting["j2"].waits_for == "job j1 to start"

    # j1 admitted and its pods placed: j2 waits for room, and says which
    first = job("j1", "2026-12-07T01:00:00Z", suspended=False, admitted="2026-12-07T01:00:02Z")
    pods = [
        pod("j1-driver", "worker-1", "500m", "1Gi", job="j1", role="driver"),
        pod("j1-exec-1", "worker-1", "1", "1536Mi", job="j1", role="executor"),
    ]
    d = admission.judge([first, second], pods, nodes, 10**10)[1]
    assert d.admit == []
    waits = d.waiting["j2"].waits_for
    assert waits.startswith("CPU (1.5 asked, 0.5 free) and memory"), waits

    # j1 ended: its pods are gone, j2 starts
    done = job("j1", "2026-12-07T01:00:00Z", suspended=False,
               conditions=[{"type": "Complete", "status": "True"}])  # fmt: skip
    queue = admission.queue_jobs([done, second], [], now=10**10)
    assert [j.name for j in queue] == ["j2"]
    assert decide(queue, rooms(nodes, [])).admit == ["j2"]


def test_a_settling_job_holds_the_queue_until_its_minimum_is_placed() -> None:
    nodes = [node("worker-1", cpu="4", memory="16Gi"), node("worker-2", cpu="4", memory="16Gi")]
    first = job("j1", "2026-12-07T01:00:00Z", executors=2, suspended=False,
                admitted="2026-12-07T01:00:05Z")  # fmt: skip
    second = job("j2", "2026-12-07T01:00:01Z")
    pods = [pod("j1-driver", "worker-1", "500m", "1Gi", job="j1", role="driver")]
    admitted_at = 1796605205.0  # 2026-12-07T01:00:05Z
    queue = admission.queue_jobs([first, second], pods, now=admitted_at + 5)
    assert queue[0].owed() == [Ask(1.0, GI), Ask(1.0, GI)]
    d = decide(queue, rooms(nodes, pods))
    assert d.admit == [] and d.waiting["j2"].waits_for == "job j1 to start"
    # a driver that never gets its executors does not hold the queue for ever
    queue = admission.queue_jobs([first, second], pods, now=admitted_at + 600)
    assert decide(queue, rooms(nodes, pods)).admit == ["j2"]


def test_a_settling_dynamic_job_holds_the_queue_until_its_starting_executors_are_placed() -> None:
    """Dynamic allocation: the minimum is one executor but the job starts with two. The
    next job waits for both (the driver asks for its executors a moment after it
    starts), so it does not take the room the first was sized for; only the minimum is
    reserved, and a job that never gets its second does not hold the queue for ever."""
    nodes = [node("worker-1", cpu="2", memory="8Gi"), node("worker-2", cpu="2", memory="8Gi")]
    first = job("j1", "2026-12-07T01:00:00Z", executors=1, start=2, suspended=False,
                admitted="2026-12-07T01:00:05Z")  # fmt: skip
    second = job("j2", "2026-12-07T01:00:01Z")
    admitted_at = 1796605205.0  # 2026-12-07T01:00:05Z
    pods = [
        pod("j1-driver", "worker-1", "500m", "1Gi", job="j1", role="driver"),
        pod("j1-exec-1", "worker-2", "1", "1Gi", job="j1", role="executor"),
    ]
    queue = admission.queue_jobs([first, second], pods, now=admitted_at + 5)
    assert queue[0].owed() == [] and queue[0].starting()
    d = decide(queue, rooms(nodes, pods))
    assert d.admit == [] and d.waiting["j2"].waits_for == "job j1 to start"
    # its second executor placed: the first has what it was sized for, and j2 is judged
    # on the room left (its driver in worker-1's 0.5 CPU, its executor in worker-2's 1)
    both = [*pods, pod("j1-exec-2", "worker-1", "1", "1Gi", job="j1", role="executor")]
    queue = admission.queue_jobs([first, second], both, now=admitted_at + 10)
    assert not queue[0].starting()
    assert decide(queue, rooms(nodes, both)).admit == ["j2"]
    # settled without its second executor: the queue moves on
    queue = admission.queue_jobs([first, second], pods, now=admitted_at + 600)
    assert decide(queue, rooms(nodes, pods)).admit == ["j2"]
    # asks written before start_executors existed: the minimum is the start
    old = job("j1", "2026-12-07T01:00:00Z", executors=1, suspended=False,
              admitted="2026-12-07T01:00:05Z")  # fmt: skip
    queue = admission.queue_jobs([old, second], pods, now=admitted_at + 5)
    assert queue[0].start_executors == 1 and not queue[0].starting()


def test_first_come_first_served_no_small_job_overtakes() -> None:
    nodes = [node("worker-1", cpu="2", memory="8Gi")]
    big = job("big", "2026-12-07T01:00:00Z", executor=(1.5, GI))  # needs 2 CPU: 0.5 + 1.5
    small = job("small", "2026-12-07T01:00:01Z", executor=(0.1, GI))
    pods = [pod("other", "worker-1", "1", "1Gi", job="older", role="driver")]
    d = admission.judge([big, small], pods, nodes, 0)[1]
    assert d.admit == []
    assert d.waiting["big"] == admission.Waiting(1, "CPU (2 asked, 1 free)")
    assert d.waiting["small"] == admission.Waiting(2, "job big ahead of it")


def test_a_job_that_can_never_fit_does_not_hold_the_queue() -> None:
    nodes = [node("worker-1", cpu="2", memory="3800Mi")]
    huge = job("huge", "2026-12-07T01:00:00Z", executor=(1.0, 8 * GI))
    fine = job("fine", "2026-12-07T01:00:01Z")
    d = admission.judge([huge, fine], [], nodes, 0)[1]
    assert d.admit == ["fine"]
    assert d.waiting["huge"].never
    assert d.waiting["huge"].waits_for == (
        "its executor pod asks for 1 CPU and 8Gi but the largest worker has 2 CPU and 3.7Gi "
        "for jobs"
    )


def test_a_job_whose_pods_each_fit_but_not_all_at_once_never_fits() -> None:
    nodes = [node("worker-1", cpu="2", memory="3800Mi")]
    system = [pod("flannel", "worker-1", "100m", "50Mi")]
    wide = job("wide", "2026-12-07T01:00:00Z", driver=(0.5, 1408 * 2**20),
               executor=(1.0, int(2.5 * GI)))  # fmt: skip
    d = admission.judge([wide], system, nodes, 0)[1]
    assert d.waiting["wide"] == admission.Waiting(
        1,
        "its driver and 1 executor ask for 1.5 CPU and 3.9Gi at once but the worker has "
        "1.9 CPU and 3.7Gi for jobs",
        never=True,
    )


def test_fragmented_room_is_named_as_such() -> None:
    nodes = [node("worker-1", cpu="2", memory="4Gi"), node("worker-2", cpu="2", memory="4Gi")]
    pods = [
        pod("x", "worker-1", "1", "1Gi", job="older", role="driver"),
        pod("y", "worker-2", "1", "1Gi", job="older", role="executor"),
    ]
    wide = job("wide", "2026-12-07T01:00:00Z", driver=(0.1, GI), executor=(1.5, GI))
    d = admission.judge([wide], pods, nodes, 0)[1]
    assert d.waiting["wide"].waits_for == "a worker with room for a pod of 1.5 CPU and 1Gi"


def test_jobs_without_asks_or_ended_or_deleted_are_not_judged() -> None:
    plain = {"metadata": {"name": "p", "creationTimestamp": "x"}, "spec": {"suspend": True}}
    going = job("g", "2026-12-07T01:00:00Z")
    going["metadata"]["deletionTimestamp"] = "2026-12-07T01:00:00Z"
    failed = job("f", "2026-12-07T01:00:00Z", conditions=[{"type": "Failed", "status": "True"}])
    bad = job("b", "2026-12-07T01:00:00Z")
    bad["metadata"]["annotations"][admission.ASKS] = "{not json"
    assert admission.queue_jobs([plain, going, failed, bad], [], now=0) == []


def test_queue_jobs_count_placed_pods_per_job() -> None:
    pods = [
        pod("d", "w1", "1", "1Gi", job="j", role="driver"),
        pod("e1", "w1", "1", "1Gi", job="j", role="executor"),
        pod("e2", None, "1", "1Gi", job="j", role="executor"),  # not placed yet
        pod("e3", "w1", "1", "1Gi", job="j", role="executor", phase="Failed"),
    ]
    (got,) = admission.queue_jobs([job("j", "t", executors=3, suspended=False)], pods, now=0)
    assert got == QueueJob(
        "j", "t", Ask(0.5, GI), Ask(1.0, GI), 3, False, None, placed_driver=True,
        placed_executors=1, start_executors=3,
    )  # fmt: skip
    assert got.owed() == [Ask(1.0, GI), Ask(1.0, GI)]


def test_a_spot_clusters_driver_waits_for_on_demand_room_and_never_goes_on_spot() -> None:
    """The driver requires the on-demand market (its nodeSelector); a spot worker with
    room for the whole job does not start it: it waits, saying for what, and is not
    "never" (the on-demand worker's room comes back); it starts once room is there."""
    market = "sparkube.io/market"
    on_demand = {**node("worker-1"), "metadata": {"name": "worker-1",
                 "labels": {market: "on-demand"}}}  # fmt: skip
    spot = {**node("worker-2", cpu="4", memory="16Gi"), "metadata": {"name": "worker-2",
            "labels": {market: "spot"}}}  # fmt: skip
    asked = job("j2", "2026-12-07T01:00:01Z")
    asked["spec"]["template"] = {"spec": {"nodeSelector": {market: "on-demand"}}}
    (queued,) = admission.queue_jobs([asked], [], now=0)
    assert queued.driver.needs == ((market, "on-demand"),)
    assert queued.executor.needs == ()
    # worker-1 (on-demand) is full: another job's driver and executor hold it
    busy = [pod("j1-driver", "worker-1", "1500m", "3Gi", job="j1", role="driver")]
    d = decide([queued], rooms([on_demand, spot], busy), rooms([on_demand, spot], []))
    assert d.admit == []
    waiting = d.waiting["j2"]
    assert not waiting.never
    assert waiting.waits_for.startswith("a worker with sparkube.io/market=on-demand and room")
    # no on-demand worker at all (the group replaces it): waits, never "never"
    d = decide([queued], rooms([spot], []))
    assert d.admit == [] and not d.waiting["j2"].never
    # the on-demand worker free again: admitted (driver there, executor anywhere)
    assert decide([queued], rooms([on_demand, spot], [])).admit == ["j2"]
    # an on-demand worker too small for the driver, ever: never fits, and says which
    tiny = {**node("worker-3", cpu="250m", memory="512Mi"), "metadata": {"name": "worker-3",
            "labels": {market: "on-demand"}}}  # fmt: skip
    d = decide([queued], rooms([tiny, spot], []))
    assert d.waiting["j2"].never
    assert "largest worker with sparkube.io/market=on-demand has" in d.waiting["j2"].waits_for
