"""Scaling rules (sparkube/controller/scaling.py) on the API's JSON shapes, fed with
admission's own reading of the same data (sparkube/controller/admission.py), as the
controller's cycle does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkube.controller import admission, scaling
from sparkube.controller.scaling import Group, GroupInstance, Shape
from tests.unit.test_admission import GI, job, node, pod

NOW = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
SHAPE = Shape(cpu=2.0, memory=3800 * 2**20)
IDLE = 600.0


def worker(name: str, instance: str) -> dict[str, Any]:
    return node(name, providerID=f"aws:///us-east-1a/{instance}")


def since(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def group(
    *instances: tuple[str, str], minimum: int = 1, maximum: int = 4, desired: int | None = None
) -> Group:
    return Group(
        "sparkube-demo-workers",
        minimum,
        maximum,
        len(instances) if desired is None else desired,
        tuple(GroupInstance(i, state) for i, state in instances),
    )


def decide(
    jobs: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    g: Group,
    now: datetime = NOW,
    marks: dict[str, str] | None = None,
) -> scaling.ScalePlan:
    """One controller cycle's decisions, as loop.Controller.cycle makes them."""
    ready = scaling.members(g, nodes, {}, now.timestamp()).ready
    growth = scaling.growth(g, SHAPE, len(ready))
    queue, decision = admission.judge(jobs, pods, nodes, now.timestamp(), growth)
    free = admission.room_after_owed(queue, admission.rooms(nodes, pods))
    return scaling.plan(
        queue, decision, nodes, pods, free, g, SHAPE, marks=marks or {}, idle_seconds=IDLE, now=now
    )


def busy_pods(job_name: str, node_name: str) -> list[dict[str, Any]]:
    return [
        pod(f"{job_name}-driver", node_name, "500m", "1Gi", job=job_name, role="driver"),
        pod(f"{job_name}-exec-1", node_name, "1", "1Gi", job=job_name, role="executor"),
    ]


def one_busy_worker() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """worker-1 (2 CPU) running job ``first``: 1.5 CPU taken, 0.5 left."""
    running = job("first", "2026-12-07T06:00:00Z", suspended=False,
                  admitted="2026-12-07T06:00:01Z")  # fmt: skip
    return [worker("worker-1", "i-1")], busy_pods("first", "worker-1"), running


def test_provider_id_names_the_instance() -> None:
    assert scaling.instance_of(worker("w", "i-0abc")) == "i-0abc"
    assert scaling.instance_of(node("cp")) is None
    assert scaling.instance_of(node("x", providerID="kind://docker/x")) is None


def test_a_job_that_waits_for_room_gets_the_fewest_workers_that_fit_it() -> None:
    nodes, pods, running = one_busy_worker()
    # driver 0.5 CPU (in worker-1's last 0.5) + 3 executors of 1 CPU: two new workers
    big = job("big", "2026-12-07T06:10:00Z", executors=3)
    out = decide([running, big], nodes, pods, group(("i-1", "InService")))
    assert out.desired == 3, out.reasons
    assert out.terminate == []
    # at the maximum: nothing asked, and said why
    out = decide([running, big], nodes, pods, group(("i-1", "InService"), maximum=2))
    assert out.desired is None
    assert "would not fit it either" in out.reasons[0]


def test_nothing_more_is_asked_while_a_worker_is_on_its_way() -> None:
    nodes, pods, running = one_busy_worker()
    waiting = job("next", "2026-12-07T06:10:00Z")
    for state in ("Pending", "InService"):  # launched; or in service but not a Ready node
        g = group(("i-1", "InService"), ("i-2", state))
        out = decide([running, waiting], nodes, pods, g)
        assert out.desired is None
        assert "on the way" in out.reasons[0]


def test_first_come_first_served_no_growth_for_jobs_behind_the_head() -> None:
    nodes, pods, running = one_busy_worker()
    # the head waits for room worker-1 will have again; the group may not grow: the job
    # behind it gets no worker either (it would overtake the head)
    head = job("head", "2026-12-07T06:05:00Z")
    small = job("small", "2026-12-07T06:06:00Z", executor=(0.5, GI))
    out = decide([running, head, small], nodes, pods, group(("i-1", "InService"), maximum=1))
    assert out.desired is None, out.reasons
    # a job that no worker of the shape could ever hold does not hold the line (as in
    # admission): the one behind it gets its worker
    huge = job("huge", "2026-12-07T06:05:00Z", executor=(8.0, GI))
    out = decide([running, huge, small], nodes, pods, group(("i-1", "InService")))
    assert out.desired == 2, out.reasons
    assert any("job small needs 1 more worker" in r for r in out.reasons), out.reasons


def test_an_idle_worker_is_marked_then_leaves_after_the_idle_time() -> None:
    g = group(("i-1", "InService"), ("i-2", "InService"))
    pods = busy_pods("first", "worker-1")
    nodes = [worker("worker-1", "i-1"), worker("worker-2", "i-2")]
    out = decide([], nodes, pods, g)
    assert out.marks == {"worker-2": "2026-12-07T06:30:00Z"}
    assert out.terminate == []
    # marked 5 minutes ago: stays, mark kept
    marks = {"worker-2": since(NOW - timedelta(minutes=5))}
    out = decide([], nodes, pods, g, marks=marks)
    assert out.terminate == [] and out.marks == marks
    # marked 11 minutes ago: that exact instance goes
    marks = {"worker-2": since(NOW - timedelta(minutes=11))}
    out = decide([], nodes, pods, g, marks=marks)
    assert out.terminate == [("i-2", "worker-2")], out.reasons
    # busy again: the mark is dropped
    out = decide([], nodes, [*pods, *busy_pods("second", "worker-2")], g, marks=marks)
    assert out.marks == {} and out.terminate == []


def test_a_node_holding_an_executor_of_a_running_job_never_leaves() -> None:
    """Its CPU may be idle, but the executor's shuffle files are on its disk."""
    g = group(("i-1", "InService"), ("i-2", "InService"), minimum=0)
    old = since(NOW - timedelta(hours=2))
    marks = {"worker-1": old, "worker-2": old}
    nodes = [worker("worker-1", "i-1"), worker("worker-2", "i-2")]
    executor_only = [pod("j-exec-2", "worker-2", "1", "1Gi", job="j", role="executor")]
    out = decide([], nodes, executor_only, g, marks=marks)
    assert out.terminate == [("i-1", "worker-1")]
    assert out.marks == {"worker-1": old}
    # its pod ended: now it may go (next cycle, after worker-1)
    ended = [pod("j-exec-2", "worker-2", "1", "1Gi", job="j", role="executor", phase="Succeeded")]
    g2 = group(("i-2", "InService"), minimum=0)
    assert decide([], [nodes[1]], ended, g2, marks=marks).terminate == [("i-2", "worker-2")]


def test_never_below_the_minimum_and_never_while_jobs_wait_or_are_owed_pods() -> None:
    old = since(NOW - timedelta(hours=1))
    nodes = [worker("worker-1", "i-1")]
    out = decide([], nodes, [], group(("i-1", "InService"), minimum=1), marks={"worker-1": old})
    assert out.terminate == [] and "at its minimum" in out.reasons[0]
    g = group(("i-1", "InService"), ("i-2", "InService"), minimum=0)
    nodes = [worker("worker-1", "i-1"), worker("worker-2", "i-2")]
    marks = {"worker-1": old, "worker-2": old}
    # an admitted job whose pods are not placed yet: the room may be theirs
    owed = job("owed", "2026-12-07T06:29:00Z", suspended=False, admitted="2026-12-07T06:29:50Z")
    assert decide([owed], nodes, [], g, marks=marks).terminate == []
    # one per cycle, the longest idle first
    marks["worker-2"] = since(NOW - timedelta(hours=1, minutes=1))
    assert decide([], nodes, [], g, marks=marks).terminate == [("i-2", "worker-2")]


def test_workers_outside_the_group_are_left_alone() -> None:
    old = since(NOW - timedelta(hours=1))
    nodes = [worker("worker-9", "i-9"), node("control-plane")]
    out = decide([], nodes, [], group(("i-1", "InService"), minimum=0), marks={"worker-9": old})
    assert out.terminate == [] and out.marks == {}


def test_the_controller_scales_only_when_told_which_group(monkeypatch: Any) -> None:
    from sparkube.controller.__main__ import scaler_from

    # in its pod the credentials are the instance role's; here no metadata is asked
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert scaler_from({}) is None
    environ = {
        "SPARKUBE_WORKER_GROUP": "sparkube-demo-workers",
        "AWS_REGION": "eu-west-3",
        "SPARKUBE_IDLE_SECONDS": "120",
        "SPARKUBE_WORKER_SHAPE": "1.9,3500000000",
    }
    got = scaler_from(environ)
    assert got is not None
    assert (got.group, got.idle_seconds) == ("sparkube-demo-workers", 120.0)
    assert got.shape == Shape(1.9, 3_500_000_000)
    assert got.autoscaling.meta.region_name == "eu-west-3"


def test_a_job_that_fits_only_with_the_workers_the_group_may_add_waits_and_grows_it() -> None:
    """Admission counts the empty workers the group may still add when it judges "never":
    a job larger than the one worker there is waits (and the group grows for it) instead
    of being stopped as one that could never start."""
    nodes = [worker("worker-1", "i-1")]
    g = group(("i-1", "InService"), maximum=3)
    wide = job("wide", "2026-12-07T06:10:00Z", executors=3)  # 0.5 + 3 x 1 CPU
    queue, decision = admission.judge([wide], [], nodes, NOW.timestamp())
    assert decision.waiting["wide"].never  # one worker only: never
    more = scaling.growth(g, SHAPE, 1)
    queue, decision = admission.judge([wide], [], nodes, NOW.timestamp(), more)
    assert not decision.waiting["wide"].never
    assert decision.waiting["wide"].waits_for.startswith("CPU (3.5 asked, 2 free)")
    free = admission.room_after_owed(queue, admission.rooms(nodes, []))
    out = scaling.plan(queue, decision, nodes, [], free, g, SHAPE, marks={},
                       idle_seconds=IDLE, now=NOW)  # fmt: skip
    assert out.desired == 2, out.reasons
    # beyond what the group may ever reach it stays "never"
    huge = job("huge", "2026-12-07T06:10:00Z", executors=9)
    _, decision = admission.judge([huge], [], nodes, NOW.timestamp(), more)
    assert decision.waiting["huge"].never


def test_no_worker_leaves_in_the_cycle_a_job_is_admitted_onto_it() -> None:
    """The admitted job's pods are not even made yet: its room is on the idle worker."""
    old = since(NOW - timedelta(hours=1))
    nodes, pods, running = one_busy_worker()
    nodes.append(worker("worker-2", "i-2"))
    g = group(("i-1", "InService"), ("i-2", "InService"), minimum=0)
    new = job("new", "2026-12-07T06:20:00Z")
    out = decide([running, new], nodes, pods, g, marks={"worker-2": old})
    assert out.terminate == [], out.reasons


def test_launches_aws_has_not_listed_yet_count_as_on_the_way() -> None:
    """Right after SetDesiredCapacity the desired count moves before the instance is
    listed: the next cycle must not ask again, and the job waits rather than "never"."""
    nodes, pods, running = one_busy_worker()
    wide = job("wide", "2026-12-07T06:10:00Z", executors=2)  # fits only with a 2nd worker
    g = group(("i-1", "InService"), maximum=2, desired=2)  # i-2 asked for, not listed
    out = decide([running, wide], nodes, pods, g)
    assert out.desired is None
    assert "1 worker(s) of the group on the way" in out.reasons[0], out.reasons
    _, decision = admission.judge(
        [running, wide], pods, nodes, NOW.timestamp(), scaling.growth(g, SHAPE, 1)
    )
    assert not decision.waiting["wide"].never  # the member on its way counts


def test_a_member_that_never_becomes_a_node_is_reported_and_no_longer_awaited() -> None:
    nodes, pods, running = one_busy_worker()
    waiting = job("next", "2026-12-07T06:10:00Z")
    g = group(("i-1", "InService"), ("i-2", "InService"), maximum=3)
    long_ago = {"i-2": NOW.timestamp() - scaling.ARRIVAL_SECONDS - 1}
    queue, decision = admission.judge([running, waiting], pods, nodes, NOW.timestamp())
    free = admission.room_after_owed(queue, admission.rooms(nodes, pods))
    out = scaling.plan(queue, decision, nodes, pods, free, g, SHAPE, marks={},
                       idle_seconds=IDLE, now=NOW, first_seen=long_ago)  # fmt: skip
    assert "worker i-2 has not become a Ready node in 15 min" in out.reasons
    assert out.desired == 3, out.reasons


def test_members_the_group_is_removing_are_no_room() -> None:
    nodes = [worker("worker-1", "i-1"), worker("worker-2", "i-2")]
    g = group(("i-1", "InService"), ("i-2", "Terminating"), ("i-3", "Pending"))
    who = scaling.members(g, nodes, {}, NOW.timestamp())
    assert who.ready == {"i-1"} and who.leaving == {"i-2"} and who.arriving == {"i-3"}


def test_a_new_worker_ready_but_still_tainted_is_on_its_way_not_never() -> None:
    """Seen on the bed: the new worker reports Ready a moment before the node lifecycle
    controller lifts its ``not-ready`` taint. Admission gives it no room yet; counted as
    a Ready member it would also leave the group's growth, and the job waiting for it
    would be judged never to fit (and stopped). It is a member on its way."""
    wide = job("wide", "2026-12-07T06:10:00Z", executor=(1.5, GI), executors=3)
    taint = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
    nodes = [
        worker("worker-1", "i-1"),
        worker("worker-2", "i-2"),
        node("i-3", providerID="aws:///us-east-1a/i-3", taints=taint),
    ]
    g = group(("i-1", "InService"), ("i-2", "InService"), ("i-3", "InService"), maximum=3)
    who = scaling.members(g, nodes, {}, NOW.timestamp())
    assert who.ready == {"i-1", "i-2"} and who.arriving == {"i-3"}
    growth = scaling.growth(g, SHAPE, len(who.ready))
    _, decision = admission.judge([wide], [], nodes, NOW.timestamp(), growth)
    assert not decision.waiting["wide"].never, decision.waiting
    # once the taint is gone it is room, and the job starts
    nodes[2] = node("i-3", providerID="aws:///us-east-1a/i-3")
    assert scaling.members(g, nodes, {}, NOW.timestamp()).ready == {"i-1", "i-2", "i-3"}
    _, decision = admission.judge([wide], [], nodes, NOW.timestamp(), [])
    assert decision.admit == ["wide"]


def test_no_job_is_never_while_the_group_cannot_be_read() -> None:
    wide = job("wide", "2026-12-07T06:10:00Z", executor=(1.5, GI), executors=2)
    nodes = [worker("worker-1", "i-1")]
    _, sure = admission.judge([wide], [], nodes, NOW.timestamp(), [])
    assert sure.waiting["wide"].never
    _, unsure = admission.judge([wide], [], nodes, NOW.timestamp(), [], sure=False)
    assert not unsure.waiting["wide"].never
    assert unsure.waiting["wide"].waits_for == sure.waiting["wide"].waits_for


def test_of_the_workers_idle_long_enough_the_one_that_joined_last_goes() -> None:
    """Seen on the bed: after a job the group grew for, the first worker (idle before the
    job too, so idle longest) went and the new one stayed. The group's first workers
    (those `up` named) stay; the extra ones come and go."""
    g = group(("i-1", "InService"), ("i-2", "InService"), ("i-9", "InService"), minimum=2)
    first = worker("worker-1", "i-1")
    first["metadata"]["creationTimestamp"] = "2026-12-07T05:00:00Z"
    second = worker("worker-2", "i-2")
    second["metadata"]["creationTimestamp"] = "2026-12-07T05:00:02Z"
    grown = worker("i-9", "i-9")
    grown["metadata"]["creationTimestamp"] = "2026-12-07T06:10:00Z"
    marks = {
        "worker-1": since(NOW - timedelta(hours=1)),
        "worker-2": since(NOW - timedelta(hours=1)),
        "i-9": since(NOW - timedelta(minutes=11)),
    }
    out = decide([], [first, second, grown], [], g, marks=marks)
    assert out.terminate == [("i-9", "i-9")], out.reasons
    # not yet idle long enough: none of the others goes in its place (seen on the bed
    # after a worker's reboot: worker-2 became idle a minute before the new one and went)
    marks["i-9"] = since(NOW - timedelta(minutes=3))
    out = decide([], [first, second, grown], [], g, marks=marks)
    assert out.terminate == [], out.reasons
    # the new one busy: of the idle ones, the one that joined last goes
    busy = busy_pods("first", "i-9")
    running = job("first", "2026-12-07T06:00:00Z", suspended=False,
                  admitted="2026-12-07T06:00:01Z")  # fmt: skip
    out = decide([running], [first, second, grown], busy, g, marks=marks)
    assert out.terminate == [("i-2", "worker-2")], out.reasons  # (above the minimum of 2)


def unschedulable(p: dict[str, Any]) -> dict[str, Any]:
    p["status"]["phase"] = "Pending"
    p["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    ]
    return p


def test_executors_a_running_job_asks_for_beyond_its_minimum_grow_the_group() -> None:
    """Dynamic allocation: job ``first`` (minimum 1 executor, placed) asks for three
    more while its tasks wait; two of 1 CPU fit on one new worker of 2 CPUs, so the
    three need two."""
    nodes, pods, running = one_busy_worker()
    extra = [
        unschedulable(pod(f"first-exec-{i}", None, "1", "1Gi", job="first", role="executor"))
        for i in (2, 3, 4)
    ]
    out = decide([running], nodes, pods + extra, group(("i-1", "InService")))
    assert out.desired == 3, out.reasons
    assert "3 executor(s) of running jobs wait for room" in out.reasons[-1]
    # at most to the group's maximum: as many as may come
    out = decide([running], nodes, pods + extra, group(("i-1", "InService"), maximum=2))
    assert out.desired == 2, out.reasons
    # one just made, not yet tried by the scheduler: nothing yet
    fresh = pod("first-exec-2", None, "1", "1Gi", job="first", role="executor", phase="Pending")
    out = decide([running], nodes, [*pods, fresh], group(("i-1", "InService")))
    assert out.desired is None, out.reasons
    # a queued job comes first: it gets its workers, not the running job's extra
    waiting = job("next", "2026-12-07T06:10:00Z", executor=(1.5, GI))
    out = decide([running, waiting], nodes, pods + extra, group(("i-1", "InService")))
    assert out.desired == 2 and "job next needs 1 more worker" in out.reasons[0], out.reasons


def test_an_executor_still_owed_is_not_counted_twice() -> None:
    """An admitted job's minimum executor not placed yet is already in the room
    admission reserves; only the ones beyond it ask for workers."""
    running = job("first", "2026-12-07T06:00:00Z", suspended=False, executors=2,
                  admitted="2026-12-07T06:00:01Z")  # fmt: skip
    waits = unschedulable(pod("first-exec-2", None, "1", "1Gi", job="first", role="executor"))
    pods = [*busy_pods("first", "worker-1"), waits]
    queue = admission.queue_jobs([running], pods, NOW.timestamp())
    assert scaling.unplaced_executors(queue, pods) == []
    more = unschedulable(pod("first-exec-3", None, "1", "1Gi", job="first", role="executor"))
    assert scaling.unplaced_executors(queue, [*pods, more]) == [admission.Ask(1.0, 2**30)]


def test_no_worker_leaves_while_a_running_job_waits_for_executors() -> None:
    g = group(("i-1", "InService"), ("i-2", "InService"), maximum=2)
    nodes = [worker("worker-1", "i-1"), worker("worker-2", "i-2")]
    running = job("first", "2026-12-07T06:00:00Z", suspended=False,
                  admitted="2026-12-07T06:00:01Z")  # fmt: skip
    # an executor of 4 CPUs fits no worker: it waits, and worker-2 (idle) stays for now
    huge = unschedulable(pod("first-exec-2", None, "4", "1Gi", job="first", role="executor"))
    marks = {"worker-2": since(NOW - timedelta(minutes=11))}
    out = decide([running], nodes, [*busy_pods("first", "worker-1"), huge], g, marks=marks)
    assert out.terminate == [] and out.desired is None, out.reasons
    out = decide([running], nodes, busy_pods("first", "worker-1"), g, marks=marks)
    assert out.terminate == [("i-2", "worker-2")], out.reasons


def test_a_spot_group_grows_for_executors_but_not_for_a_driver_that_needs_on_demand() -> None:
    """With spot workers (one on-demand worker first), the workers the group would add
    are spot: a job whose executors need room gets them; a job whose driver waits for
    the on-demand worker's room does not grow the group (spot workers would not take its
    driver), and says so."""
    market = "sparkube.io/market"
    mixed = dataclasses.replace(group(("i-1", "InService")), on_demand_base=1)
    assert mixed.new_labels(0) == {market: "spot"}
    empty = dataclasses.replace(group(), on_demand_base=1)
    assert [empty.new_labels(i) for i in range(2)] == [{market: "on-demand"}, {market: "spot"}]
    assert group().new_labels(0) == {}  # one market: no label asked for

    on_demand = worker("worker-1", "i-1")
    on_demand["metadata"]["labels"] = {market: "on-demand"}
    pods = busy_pods("first", "worker-1")
    running = job("first", "2026-12-07T06:00:00Z", suspended=False,
                  admitted="2026-12-07T06:00:01Z")  # fmt: skip
    # the driver fits in worker-1's last 0.5 CPU; its 3 executors need two spot workers
    big = job("big", "2026-12-07T06:10:00Z", executors=3)
    big["spec"]["template"] = {"spec": {"nodeSelector": {market: "on-demand"}}}
    out = decide([running, big], [on_demand], pods, mixed)
    assert out.desired == 3, out.reasons
    # a driver larger than worker-1's room left: no spot worker helps it
    large = job("large", "2026-12-07T06:10:00Z", driver=(1.0, GI))
    large["spec"]["template"] = {"spec": {"nodeSelector": {market: "on-demand"}}}
    out = decide([running, large], [on_demand], pods, mixed)
    assert out.desired is None, out.reasons
    assert "would not fit it either" in out.reasons[0]
