"""When the worker group grows and shrinks (issue 19, item 4): pure decisions over the
API's JSON and the Auto Scaling group's state, so the rules are tested on data. The
controller's loop turns a :class:`ScalePlan` into ``SetDesiredCapacity``,
``TerminateInstanceInAutoScalingGroup`` (the exact instance, never "any one") and node
annotations.

Out: the oldest queued job that waits for room (admission's head of the line) gets the
fewest new workers that let its driver and minimum executors all fit, counted with
admission's own placement over the room there is plus empty workers of the group's
shape, up to the group's maximum. Nothing more is asked while an instance of the group
is still on its way (launched, not yet a Ready node): it is counted first. With no job
waiting, the executors a running job asks for beyond its minimum (Spark's dynamic
allocation, when its tasks wait) that the scheduler found no room for get new workers
too, as many as fit them, up to the group's maximum.

In: a worker is idle while no pod of a sparkube job that has not ended is on it (a
driver, or an executor: Spark keeps shuffle files on an executor's disk, so a node
holding a running job's executor is never taken away, idle CPU or not). The controller
keeps when each became idle (:data:`IDLE_SINCE` on its Lease, so a restarted controller
keeps counting, and it needs no right on nodes); the idle worker that joined last goes
once idle for ``idle_seconds``, one per cycle, never below the group's minimum, and
none while a job waits in the queue or an admitted job still has pods to place (the
room may be theirs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sparkube.controller.admission import (
    JOB_LABEL,
    Ask,
    Decision,
    QueueJob,
    Room,
    _copy,
    _ended,
    is_jobs,
    node_arrived,
    node_ready,
    place,
    pod_ask,
)
from sparkube.model import MARKET_LABEL, ON_DEMAND, SPOT
from sparkube.spark.diagnose import is_unschedulable

Json = Mapping[str, Any]

#: Lease annotation: JSON ``{node: ISO 8601 UTC}``, when each worker was first seen idle.
IDLE_SINCE = "sparkube.io/idle-since"
#: Lifecycle states of an instance that is in the group and will be a node soon.
ARRIVING = ("Pending", "Pending:Wait", "Pending:Proceed")
#: Seconds a member may take from being first seen to being a Ready node (boot,
#: preparation, join); past that it is reported stuck and no longer holds growth back.
ARRIVAL_SECONDS = 900.0


@dataclass(frozen=True)
class GroupInstance:
    instance_id: str
    lifecycle: str  # Auto Scaling's LifecycleState: Pending, InService, Terminating, ...
    instance_type: str = ""
    zone: str = ""


@dataclass(frozen=True)
class Group:
    """The worker group as Auto Scaling describes it."""

    name: str
    minimum: int
    maximum: int
    desired: int
    instances: tuple[GroupInstance, ...] = ()
    #: Spot workers: the on-demand workers the group launches before any spot one (its
    #: MixedInstancesPolicy); None: one market.
    on_demand_base: int | None = None

    def new_labels(self, index: int) -> dict[str, str]:
        """The market label of the ``index``-th (from 0) worker the group would launch
        next: Auto Scaling fills the on-demand base first. None: no label known (one
        market: nothing asks for one)."""
        if self.on_demand_base is None:
            return {}
        on_demand = len(self.instances) + index < self.on_demand_base
        return {MARKET_LABEL: ON_DEMAND if on_demand else SPOT}


@dataclass(frozen=True)
class Shape:
    """What one new worker offers jobs: its allocatable less the DaemonSets' pods."""

    cpu: float
    memory: int


@dataclass
class ScalePlan:
    desired: int | None = None  # a new desired capacity, or None
    terminate: list[tuple[str, str]] = field(default_factory=list)  # (instance id, node)
    marks: dict[str, str] = field(default_factory=dict)  # idle workers -> idle since
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Members:
    """The group's members as the cluster sees them."""

    ready: frozenset[str]  # InService and a Ready node
    arriving: frozenset[str]  # launched, not yet a Ready node, within ARRIVAL_SECONDS
    stuck: frozenset[str]  # InService for longer than that without a Ready node
    leaving: frozenset[str]  # Terminating, Detaching, Standby, ...: not room any more
    #: Launches asked for and not yet a Ready node: also those AWS has not listed yet
    #: (right after SetDesiredCapacity the desired count moves first).
    pending: int


def members(
    group: Group, nodes: Sequence[Json], first_seen: Mapping[str, float], now: float
) -> Members:
    """Sort the group's instances. ``first_seen``: epoch seconds each instance was first
    seen by the controller (one not in it counts as seen now)."""
    node_of = {instance_of(n): n for n in nodes if instance_of(n)}
    ready: set[str] = set()
    arriving: set[str] = set()
    stuck: set[str] = set()
    leaving: set[str] = set()
    for i in group.instances:
        node = node_of.get(i.instance_id)
        if i.lifecycle == "InService" and node is not None and node_arrived(node):
            ready.add(i.instance_id)  # (admission counts its room from now on)
        elif i.lifecycle in ARRIVING or i.lifecycle == "InService":
            age = now - first_seen.get(i.instance_id, now)
            (arriving if age < ARRIVAL_SECONDS else stuck).add(i.instance_id)
        else:
            leaving.add(i.instance_id)
    pending = max(len(arriving), group.desired - len(ready) - len(stuck))
    return Members(
        frozenset(ready), frozenset(arriving), frozenset(stuck), frozenset(leaving), pending
    )


def instance_of(node: Json) -> str | None:
    """The EC2 instance id of a node, from its ``providerID`` (``aws:///ZONE/ID``)."""
    provider = str((node.get("spec") or {}).get("providerID") or "")
    if not provider.startswith("aws://"):
        return None
    last = provider.rsplit("/", 1)[-1]
    return last if last.startswith("i-") else None


def shape_of(
    nodes: Sequence[Json], baseline: Sequence[Room], group: Group, fallback: Shape
) -> Shape:
    """What a new worker would offer jobs: the most any worker of the group offers with no
    job on it (``baseline``: admission's room less the pods that are not jobs'), else
    ``fallback`` (the instance type's, when the group has no worker yet)."""
    members = {i.instance_id for i in group.instances}
    names = {_name(n) for n in nodes if instance_of(n) in members}
    rooms = [r for r in baseline if r.name in names]
    if not rooms:
        return fallback
    best = max(rooms, key=lambda r: (r.free_cpu, r.free_memory))
    return Shape(best.free_cpu, best.free_memory)


def growth(group: Group, shape: Shape, ready: int) -> list[Room]:
    """The empty workers the group may still have beyond its ``ready`` ones (those on
    their way included), as admission's rooms."""
    return [
        Room(f"new-{i}", shape.cpu, shape.memory, shape.cpu, shape.memory, group.new_labels(i))
        for i in range(max(0, group.maximum - ready))
    ]


def _name(obj: Json) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def busy_nodes(pods: Sequence[Json]) -> set[str]:
    """Nodes holding a pod (driver or executor) of a sparkube job that has not ended."""
    return {
        str((p.get("spec") or {}).get("nodeName"))
        for p in pods
        if is_jobs(p) and not _ended(p) and (p.get("spec") or {}).get("nodeName")
    }


def unplaced_executors(queue: Sequence[QueueJob], pods: Sequence[Json]) -> list[Ask]:
    """Executor pods of admitted jobs that the scheduler found no room for, beyond the
    minimum each job is still owed (room admission already counts for it)."""
    owed = {j.name: max(0, j.min_executors - j.placed_executors) for j in queue if not j.suspended}
    out = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        job = labels.get(JOB_LABEL)
        if (
            job not in owed
            or labels.get("spark-role") != "executor"
            or (pod.get("spec") or {}).get("nodeName")
            or _ended(pod)
            or not is_unschedulable(pod)
        ):
            continue
        if owed[job] > 0:
            owed[job] -= 1
            continue
        out.append(pod_ask(pod))
    return out


def nodes_needed(
    asks: Sequence[Ask], free: Sequence[Room], shape: Shape, most: int, group: Group | None = None
) -> int | None:
    """The fewest empty workers of ``shape`` (at most ``most``; labelled as ``group``
    would launch them) that, added to ``free``, let every ask fit at once; 0 when they
    fit already; None when ``most`` is not enough."""
    for extra in range(0, max(0, most) + 1):
        rooms = _copy(free) + [
            Room(
                f"new-{i}",
                shape.cpu,
                shape.memory,
                shape.cpu,
                shape.memory,
                group.new_labels(i) if group is not None else {},
            )
            for i in range(extra)
        ]
        if place(asks, rooms):
            return extra
    return None


def _parse(when: str) -> datetime | None:
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None


def plan(
    queue: Sequence[QueueJob],
    decision: Decision,
    nodes: Sequence[Json],
    pods: Sequence[Json],
    free: Sequence[Room],
    group: Group,
    shape: Shape,
    *,
    marks: Mapping[str, str],
    idle_seconds: float,
    now: datetime,
    first_seen: Mapping[str, float] | None = None,
) -> ScalePlan:
    """What to change in the group now. ``queue`` and ``decision``: admission's, this
    cycle; ``free``: the room left on the workers after the pods and what admitted jobs
    are owed (as admission counted it, before its own admissions); ``marks``: when each
    worker was first seen idle, as the last plan kept them (:attr:`ScalePlan.marks`);
    ``first_seen``: when the controller first saw each member (epoch seconds)."""
    out = ScalePlan()
    in_group = {i.instance_id: i for i in group.instances}
    who = members(group, nodes, first_seen or {}, now.timestamp())
    for instance in sorted(who.stuck):
        out.reasons.append(
            f"worker {instance} has not become a Ready node in {ARRIVAL_SECONDS / 60:.0f} min"
        )
    waiting = [
        j
        for j in queue
        if j.suspended and j.name not in decision.admit and j.name in decision.waiting
    ]
    owing = [j for j in queue if not j.suspended and j.owed()]

    # ---- out
    room_left = group.maximum - group.desired
    for job in waiting:
        if who.pending:
            out.reasons.append(
                f"job {job.name} waits; {who.pending} worker(s) of the group on the way"
            )
            break
        need = nodes_needed(job.minimum(), free, shape, room_left, group)
        if need:
            out.desired = group.desired + need
            out.reasons.append(
                f"job {job.name} needs {need} more worker(s): desired "
                f"{group.desired} -> {out.desired}"
            )
            break
        if need is None and room_left > 0:
            out.reasons.append(
                f"job {job.name} waits; {room_left} more worker(s) would not fit it either"
            )
        if not decision.waiting[job.name].never:
            break  # first come, first served: nothing is grown for the jobs behind it

    extra = unplaced_executors(queue, pods)
    if extra and not waiting and not who.pending and room_left > 0:
        fitting = [a for a in extra if a.fits(shape.cpu, shape.memory)]
        need = nodes_needed(fitting, free, shape, room_left, group)
        if need is None:
            need = room_left  # not all of them fit even then: as many as may come
        if need:
            out.desired = group.desired + need
            out.reasons.append(
                f"{len(fitting)} executor(s) of running jobs wait for room: desired "
                f"{group.desired} -> {out.desired}"
            )

    # ---- idle marks and in
    busy = busy_nodes(pods)
    idle: list[tuple[datetime, str, str, str]] = []  # (since, node, instance, created)
    for node in nodes:
        name, found = _name(node), instance_of(node)
        if found is None or found not in in_group or not node_ready(node):
            continue  # not a worker of the group (the control plane, an old worker)
        instance = found
        if in_group[instance].lifecycle != "InService":
            continue
        if name in busy:
            continue
        since = _parse(marks[name]) if name in marks else None
        if since is None:
            out.marks[name] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            continue
        out.marks[name] = marks[name]
        created = str((node.get("metadata") or {}).get("creationTimestamp") or "")
        idle.append((since, name, instance, created))
    in_service = sum(1 for i in group.instances if i.lifecycle == "InService")
    # Not while anything may need the room: a job waits, an admitted one still has pods
    # to place (its minimum, or executors it asked for since), or one is admitted this
    # very cycle (its pods are not even made yet).
    if waiting or owing or extra or decision.admit or out.desired is not None:
        return out
    # Of the idle workers, the one that joined last goes once it has been idle long
    # enough (the group's first workers, the ones `up` named, stay while the extra ones
    # come and go: an older worker that became idle first does not go in its place, as
    # the bed once showed after a job the group grew for); one per cycle: the next
    # cycle sees the group as it is then.
    if not idle:
        return out
    since, name, instance, _ = max(idle, key=lambda i: (i[3], i[1]))
    if (now - since).total_seconds() < idle_seconds:
        return out
    if in_service - len(out.terminate) <= group.minimum:
        out.reasons.append(f"worker {name} idle, but the group is at its minimum")
        return out
    out.terminate.append((instance, name))
    out.reasons.append(
        f"worker {name} ({instance}) idle for {(now - since).total_seconds() / 60:.0f} min"
    )
    return out
