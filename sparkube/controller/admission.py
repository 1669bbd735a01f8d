"""Which queued jobs start now: all-or-nothing admission over the workers' free room.

A job is submitted as a suspended Kubernetes Job. It is *admitted* (unsuspended) when
its driver and its minimum executors all fit, at once, into what the schedulable
workers have left after every pod already on them and every pod an admitted job is
still owed. Jobs are taken first come, first served: while the oldest queued job does
not fit, no later one starts (a small job slipping past a large one again and again
would starve it). Pure functions over the API's JSON, so the rules are tested on data.

Why whole jobs: Spark's driver starts, then asks for executors one batch at a time. Two
drivers started into room for one job each hold half of what they need and wait for
ever; the scheduler cannot see that they belong together. So room is claimed for the
whole minimum, and the next job is only considered once the last one admitted has
its minimum pods placed (or :data:`SETTLE_SECONDS` passed): from then on the
simulation starts from where the scheduler really put them.

Why not Kueue: it admits a Job's own pods, but Spark's executors are made later by the
driver, outside any Job, so it would admit drivers into room their executors then
cannot get, the deadlock above; and it would be one more component (a Go build here,
an image to trust there) for a decision this module makes in ~200 lines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkube.spark.diagnose import human_cpu, human_memory, parse_cpu, parse_memory

Json = Mapping[str, Any]
log = logging.getLogger("sparkube.controller")

#: Annotation the submitting sparkube writes on the Job: what admission must find room
#: for (``{"driver": {"cpu", "memory_bytes"}, "executor": {...}, "min_executors": N}``).
ASKS = "sparkube.io/admission"
#: Written by the controller on queued Jobs (cleared when admitted).
POSITION = "sparkube.io/queue-position"
WAITS_FOR = "sparkube.io/waits-for"
#: "true" on a queued Job that can never start on the workers there are.
NEVER = "sparkube.io/never-fits"
#: When the controller admitted the Job (ISO 8601, UTC).
ADMITTED = "sparkube.io/admitted"
#: Seconds after its admission that a job's missing minimum pods keep the queue waiting
#: (a driver that never gets its executors must not hold the queue for ever: the
#: watching sparkube stops such a job after about 10 s).
SETTLE_SECONDS = 90.0
ROLE_LABEL = "sparkube.io/role"
JOB_LABEL = "sparkube.io/job"


@dataclass(frozen=True)
class Ask:
    """One pod's requests, and the node labels it requires (its ``nodeSelector``: a
    spot cluster's drivers require ``sparkube.io/market=on-demand``)."""

    cpu: float
    memory: int
    needs: tuple[tuple[str, str], ...] = ()

    def fits(self, cpu: float, memory: int) -> bool:
        return self.cpu <= cpu + 1e-9 and self.memory <= memory

    def needs_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.needs)

    def describe(self) -> str:
        return f"{human_cpu(round(self.cpu, 3))} CPU and {human_memory(self.memory)}"


@dataclass
class Room:
    """A schedulable worker: allocatable and what is left of it."""

    name: str
    cpu: float
    memory: int
    free_cpu: float
    free_memory: int
    labels: Mapping[str, str] = field(default_factory=dict)

    def accepts(self, ask: Ask) -> bool:
        """Whether the worker has every label the pod requires."""
        return all(self.labels.get(k) == v for k, v in ask.needs)

    def take(self, ask: Ask) -> None:
        self.free_cpu -= ask.cpu
        self.free_memory -= ask.memory


@dataclass(frozen=True)
class QueueJob:
    """A sparkube Job as admission sees it."""

    name: str
    created: str  # ISO 8601: the queue's order
    driver: Ask
    executor: Ask
    min_executors: int
    suspended: bool
    #: Admitted: seconds since the controller admitted it (None: not known).
    admitted_for: float | None = None
    #: Its pods that the scheduler placed on a node (and that have not ended).
    placed_driver: bool = False
    placed_executors: int = 0
    #: The executors it starts with (dynamic allocation's initial count; at least the
    #: minimum): while settling, the queue waits for these, not only the minimum.
    start_executors: int = 0

    def minimum(self) -> list[Ask]:
        return [self.driver] + [self.executor] * self.min_executors

    def owed(self) -> list[Ask]:
        """The minimum pods an admitted job does not have placed yet."""
        pods = [] if self.placed_driver else [self.driver]
        return pods + [self.executor] * max(0, self.min_executors - self.placed_executors)

    def starting(self) -> bool:
        """Some pod it starts with is not placed yet (its driver, or fewer executors
        than it starts with)."""
        start = max(self.start_executors, self.min_executors)
        return not self.placed_driver or self.placed_executors < start


@dataclass(frozen=True)
class Waiting:
    position: int  # 1: next to start
    waits_for: str
    never: bool = False  # cannot fit on any worker there is


@dataclass
class Decision:
    admit: list[str] = field(default_factory=list)
    waiting: dict[str, Waiting] = field(default_factory=dict)


# ---------------------------------------------------------------------- reading the API


def pod_ask(pod: Json) -> Ask:
    """A pod's requests as the scheduler counts them: its containers' sum, or its
    largest init container if that is more."""
    spec = pod.get("spec") or {}

    def requests(container: Json) -> tuple[float, int]:
        req = (container.get("resources") or {}).get("requests") or {}
        return parse_cpu(req.get("cpu", 0)), parse_memory(req.get("memory", 0))

    main = [requests(c) for c in spec.get("containers") or []]
    init = [requests(c) for c in spec.get("initContainers") or []]
    cpu = max([sum(c for c, _ in main), *(c for c, _ in init)])
    memory = max([sum(m for _, m in main), *(m for _, m in init)])
    return Ask(cpu, memory)


def _ended(pod: Json) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_jobs(pod: Json) -> bool:
    """A pod of a sparkube job (its driver or an executor)."""
    return JOB_LABEL in ((pod.get("metadata") or {}).get("labels") or {})


def node_ready(node: Json) -> bool:
    """The node's Ready condition is True."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


#: Taints a node carries for a while after it first reports Ready (the node lifecycle
#: controller removes them): until then no pod lands there, so it is no room yet.
STARTUP_TAINTS = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/network-unavailable",
        "node.cloudprovider.kubernetes.io/uninitialized",
    }
)


def node_arrived(node: Json) -> bool:
    """Ready and rid of the taints a new node starts with: pods can land on it (unless
    it is cordoned or tainted by someone)."""
    taints = (node.get("spec") or {}).get("taints") or []
    return node_ready(node) and not any(t.get("key") in STARTUP_TAINTS for t in taints)


def rooms(nodes: Iterable[Json], pods: Iterable[Json]) -> list[Room]:
    """The workers pods can land on (Ready, not cordoned, no NoSchedule or NoExecute
    taint: so not the control plane), each with what its placed pods leave free."""
    out: dict[str, Room] = {}
    for node in nodes:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        if spec.get("unschedulable"):
            continue
        if any(t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or []):
            continue
        if not node_ready(node):
            continue
        alloc = status.get("allocatable") or {}
        cpu, memory = parse_cpu(alloc.get("cpu", 0)), parse_memory(alloc.get("memory", 0))
        meta = node.get("metadata") or {}
        name = str(meta.get("name"))
        out[name] = Room(name, cpu, memory, cpu, memory, dict(meta.get("labels") or {}))
    for pod in pods:
        room = out.get(str((pod.get("spec") or {}).get("nodeName") or ""))
        if room is not None and not _ended(pod):
            room.take(pod_ask(pod))
    return list(out.values())


def queue_jobs(jobs: Iterable[Json], pods: Iterable[Json], now: float) -> list[QueueJob]:
    """The sparkube Jobs that have not ended and carry admission asks, oldest first."""
    from datetime import datetime

    on_nodes: dict[str, tuple[bool, int]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        job = labels.get(JOB_LABEL)
        if not job or _ended(pod) or not (pod.get("spec") or {}).get("nodeName"):
            continue
        has_driver, executors = on_nodes.get(job, (False, 0))
        if labels.get(ROLE_LABEL) == "driver":
            has_driver = True
        elif labels.get("spark-role") == "executor":
            executors += 1
        on_nodes[job] = (has_driver, executors)
    out = []
    for job in jobs:
        meta, spec, status = (
            job.get("metadata") or {},
            job.get("spec") or {},
            job.get("status") or {},
        )
        ann = meta.get("annotations") or {}
        if ASKS not in ann or meta.get("deletionTimestamp"):
            continue
        if any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            continue
        try:
            asks = json.loads(ann[ASKS])
            selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
            driver = Ask(
                float(asks["driver"]["cpu"]),
                int(asks["driver"]["memory_bytes"]),
                tuple(sorted((str(k), str(v)) for k, v in selector.items())),
            )
            executor = Ask(float(asks["executor"]["cpu"]), int(asks["executor"]["memory_bytes"]))
            minimum = int(asks["min_executors"])
            start = int(asks.get("start_executors", minimum))
        except (ValueError, KeyError, TypeError):
            continue  # not ours to judge: left as it is
        admitted_for = None
        if ann.get(ADMITTED):
            try:
                when = datetime.fromisoformat(ann[ADMITTED].replace("Z", "+00:00"))
                admitted_for = max(0.0, now - when.timestamp())
            except ValueError:
                admitted_for = None
        name = str(meta.get("name"))
        on_node = on_nodes.get(name, (False, 0))
        out.append(
            QueueJob(
                name=name,
                created=str(meta.get("creationTimestamp") or ""),
                driver=driver,
                executor=executor,
                min_executors=minimum,
                suspended=bool(spec.get("suspend")),
                start_executors=start,
                admitted_for=admitted_for,
                placed_driver=on_node[0],
                placed_executors=on_node[1],
            )
        )
    return sorted(out, key=lambda j: (j.created, j.name))


# ---------------------------------------------------------------------- deciding


def place(asks: Sequence[Ask], free: Sequence[Room]) -> bool:
    """Put every ask on a room (largest ask first, each on the room it fills best);
    True and the rooms reduced if all fit, False and the rooms unchanged otherwise."""
    trial = {r.name: (r.free_cpu, r.free_memory) for r in free}
    for ask in sorted(asks, key=lambda a: (a.memory, a.cpu), reverse=True):
        best = None
        for room in free:
            cpu, memory = trial[room.name]
            if ask.fits(cpu, memory) and room.accepts(ask):
                left = (cpu - ask.cpu) / max(room.cpu, 1e-9) + (memory - ask.memory) / max(
                    room.memory, 1
                )
                if best is None or left < best[0]:
                    best = (left, room.name)
        if best is None:
            return False
        cpu, memory = trial[best[1]]
        trial[best[1]] = (cpu - ask.cpu, memory - ask.memory)
    for room in free:
        room.free_cpu, room.free_memory = trial[room.name]
    return True


def _copy(workers: Sequence[Room]) -> list[Room]:
    return [Room(r.name, r.cpu, r.memory, r.free_cpu, r.free_memory, r.labels) for r in workers]


def never_fits(asks: Sequence[Ask], roles: Sequence[str], baseline: Sequence[Room]) -> str | None:
    """Why pods ``asks`` (of ``roles``) can never all run at once on these workers, even
    with no job running (``baseline``: each worker's room less the pods that are not
    jobs', e.g. DaemonSets), or None. No worker at all is not "never": one may come."""
    if not baseline:
        return None
    for role, ask in zip(roles, asks, strict=True):
        allowed = [r for r in baseline if r.accepts(ask)]
        if not allowed:
            return None  # no worker it may use now (an on-demand one): one may come
        most = Ask(max(r.free_cpu for r in allowed), max(r.free_memory for r in allowed))
        if not any(ask.fits(r.free_cpu, r.free_memory) for r in allowed):
            which = f"worker with {ask.needs_text()}" if ask.needs else "worker"
            return (
                f"its {role} pod asks for {ask.describe()} but the largest {which} has "
                f"{most.describe()} for jobs"
            )
    if place(asks, _copy(baseline)):
        return None
    total = Ask(sum(a.cpu for a in asks), sum(a.memory for a in asks))
    room = Ask(sum(r.free_cpu for r in baseline), sum(r.free_memory for r in baseline))
    return (
        f"its driver and {len(asks) - 1} executor{'s' if len(asks) != 2 else ''} ask for "
        f"{total.describe()} at once but "
        + ("the worker has" if len(baseline) == 1 else f"the {len(baseline)} workers have")
        + f" {room.describe()} for jobs"
    )


def job_never_fits(job: QueueJob, baseline: Sequence[Room]) -> str | None:
    roles = ["driver"] + ["executor"] * job.min_executors
    return never_fits(job.minimum(), roles, baseline)


def shortage(asks: Sequence[Ask], free: Sequence[Room]) -> str:
    """What the asks wait for, in a few words."""
    for ask in asks:
        if ask.needs and not any(
            r.accepts(ask) and ask.fits(r.free_cpu, r.free_memory) for r in free
        ):
            return f"a worker with {ask.needs_text()} and room for a pod of {ask.describe()}"
    need_cpu = sum(a.cpu for a in asks)
    need_memory = sum(a.memory for a in asks)
    have_cpu = sum(max(0.0, r.free_cpu) for r in free)
    have_memory = sum(max(0, r.free_memory) for r in free)
    short = []
    if need_cpu > have_cpu + 1e-9:
        short.append(
            f"CPU ({human_cpu(round(need_cpu, 3))} asked, {human_cpu(round(have_cpu, 3))} free)"
        )
    if need_memory > have_memory:
        short.append(
            f"memory ({human_memory(need_memory)} asked, {human_memory(have_memory)} free)"
        )
    if short:
        return " and ".join(short)
    largest = max(asks, key=lambda a: (a.memory, a.cpu))
    return f"a worker with room for a pod of {largest.describe()}"


def decide(
    jobs: Sequence[QueueJob],
    workers: Sequence[Room],
    baseline: Sequence[Room] | None = None,
    *,
    sure: bool = True,
) -> Decision:
    """Which suspended jobs to admit now, and for the others their place in the queue
    and what they wait for. ``workers``: the room left now; ``baseline``: the room with
    no job running (for "never fits"; default ``workers``). ``sure=False``: the workers
    that may still come are not known this time (the group could not be read), so no
    job is said never to fit (it would be stopped for good). The caller's lists are left
    alone."""
    free = _copy(workers)
    decision = Decision()
    blocked: str | None = None
    # Admitted jobs first: room they are owed (their minimum) is theirs. One still
    # settling (the pods it starts with not all placed yet: under dynamic allocation
    # more executors than its minimum) holds the queue: the scheduler may place them
    # otherwise than this simulation, and a job let in between its driver and its
    # first executors would take the room the first was sized for, so the next
    # decision waits to start from facts.
    for job in jobs:
        if job.suspended:
            continue
        settling = job.admitted_for is not None and job.admitted_for < SETTLE_SECONDS
        if settling and job.starting() and blocked is None:
            blocked = f"job {job.name} to start"
        owed = job.owed()
        if owed and not place(owed, free):  # room it is owed is reserved when there is some
            log.debug("job %s is owed pods that do not fit now", job.name)
    position = 0
    for job in jobs:
        if not job.suspended:
            continue
        position += 1
        never = job_never_fits(job, workers if baseline is None else baseline)
        if never is not None:
            decision.waiting[job.name] = Waiting(position, never, never=sure)
            continue
        if blocked is None:
            if place(job.minimum(), free):
                decision.admit.append(job.name)
                # the next job waits for this one's pods to be placed
                blocked = f"job {job.name} to start"
                continue
            decision.waiting[job.name] = Waiting(position, shortage(job.minimum(), free))
            blocked = f"job {job.name} ahead of it"
            continue
        decision.waiting[job.name] = Waiting(position, blocked or "the jobs ahead of it")
    # positions among those still queued
    order = [j.name for j in jobs if j.suspended and j.name not in decision.admit]
    for index, name in enumerate(order, start=1):
        w = decision.waiting[name]
        decision.waiting[name] = Waiting(index, w.waits_for, w.never)
    return decision


def room_after_owed(queue: Sequence[QueueJob], workers: Sequence[Room]) -> list[Room]:
    """The workers' room less what admitted jobs are still owed (as :func:`decide`
    reserves it before admitting anything)."""
    free = _copy(workers)
    for job in queue:
        if not job.suspended and job.owed():
            place(job.owed(), free)
    return free


def judge(
    jobs: Iterable[Json],
    pods: Sequence[Json],
    nodes: Sequence[Json],
    now: float,
    growth: Sequence[Room] = (),
    *,
    sure: bool = True,
) -> tuple[list[QueueJob], Decision]:
    """The whole rule from the API's lists: the sparkube Jobs, the pods that have not
    ended (every namespace), the nodes; ``now`` in epoch seconds. ``growth``: the empty
    workers the group may still add (a job that fits only with them waits, it is not
    "never"); ``sure``: see :func:`decide`."""
    queue = queue_jobs(jobs, pods, now)
    workers = rooms(nodes, pods)
    baseline = rooms(nodes, [p for p in pods if not is_jobs(p)]) + _copy(growth)
    return queue, decide(queue, workers, baseline, sure=sure)
