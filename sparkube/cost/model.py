"""The one cost model: a ledger in, dollars out. Pure and offline; ``plan``, ``status``,
``usage``, the per-job figures and the rate given to kube-opex-analytics all come from
here.

The rules (docs/DESIGN.md, "Money", says why):

- An instance costs its price while it runs (AWS bills running instances by the second;
  a stopped instance costs nothing but its volumes). On-demand at the on-demand price;
  spot at the zone's spot price in force at each moment.
- A volume costs size × the GB-month price while it exists, a month counted as 730 h
  (the AWS Pricing Calculator's month), attached or not.
- A public IPv4 address costs its hourly price while its instance runs (auto-assigned
  addresses are released when the instance stops).
- An instance in unlimited CPU credit mode also costs the surplus credits it was
  charged (CloudWatch's hourly ``CPUSurplusCreditsCharged``, one credit a vCPU-minute,
  at the per-vCPU-hour price), spread evenly over the hour they were charged in. The
  rate per hour leaves them out: they depend on what the CPUs will do.
- A job pays for what it **reserved** — its pods' requests — while each pod held a node:
  at each moment its share of the workers is the mean of its CPU share and its memory
  share of the workers' capacity, ``(cpu/C + mem/M) / 2``, times what the workers cost
  then. Requests, not usage: a request is what keeps other work off the node, it is
  known exactly and forever (usage is sampled and metrics-server keeps no history), so
  any later recomputation gives the same figure.
- What no job reserved on the workers is **idle**; the control plane is its own line.
  jobs + idle + control plane + volumes + addresses = total, exactly.
- A price that is not known makes its part unknown, not 0: the figures that include it
  are lower bounds ("at least"), and the reasons are listed.
- What spot saved: a spot instance set against the on-demand price of its type while
  it ran (:func:`spot`); a job's saving is its share of the workers, as for its cost,
  times what the running spot workers' spot prices saved against on-demand then. An
  on-demand price the ledger lacks (ledgers from before it was gathered for spot
  types) leaves the saving unknown, with the reason; the totals do not depend on it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sparkube.cost.ledger import (
    CONTROL_PLANE,
    CREDITS,
    INSTANCE,
    IPV4,
    ON_DEMAND,
    SPOT,
    VOLUME,
    WORKER,
    Instance,
    Interval,
    Ledger,
    PriceFact,
)

GIB = 2**30
HOURS_PER_MONTH = 730.0
IDLE = "idle"
CONTROL_PLANE_LINE = "control plane"
VOLUMES_LINE = "volumes"
ADDRESSES_LINE = "addresses"
NO_WORKERS = (
    "{job} ran at {at:%Y-%m-%d %H:%M} UTC while the ledger knows no running worker "
    "instance; that part of its cost is unknown"
)
NO_ON_DEMAND = (
    "the ledger has no on-demand price of {itype} to set its spot price against (ledgers "
    "gathered before sparkube recorded one for spot types have none)"
)
SPOT_UNKNOWN = "a spot price of {itype} in {zone} is unknown"
SURPLUS_CREDITS = (
    "{name} runs in unlimited CPU credit mode and the surplus credits it was charged "
    "could not be read (CloudWatch CPUSurplusCreditsCharged)"
)


def _alive(interval: Interval, at: datetime) -> bool:
    return interval.start <= at and (interval.end is None or at < interval.end)


def _any_alive(intervals: Iterable[Interval], at: datetime) -> bool:
    return any(_alive(i, at) for i in intervals)


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


class Prices:
    """Looks prices up in a ledger's price facts, remembering why one is unknown."""

    def __init__(self, facts: Sequence[PriceFact]) -> None:
        self.facts = facts

    def _fact(self, inst: Instance, at: datetime) -> PriceFact | None:
        """The fact of ``inst``'s type and market in force at ``at``, if any."""
        candidates = [
            f
            for f in self.facts
            if f.kind == INSTANCE and f.instance_type == inst.instance_type
            and f.market == inst.market
            and (f.start is None or f.start <= at) and (f.end is None or at < f.end)
        ]  # fmt: skip
        if inst.market == SPOT:
            # the zone's own price; a zone-less fact only when the ledger has no zone's
            in_zone = [f for f in candidates if f.zone == inst.zone]
            candidates = in_zone or [f for f in candidates if not f.zone]
        if not candidates:
            return None
        # the latest in force (spot history: the newest change before ``at``)
        return max(candidates, key=lambda f: f.start or datetime.min.replace(tzinfo=at.tzinfo))

    def instance(self, inst: Instance, at: datetime) -> tuple[float | None, str]:
        """The hourly price of ``inst`` at ``at``, or (None, why)."""
        fact = self._fact(inst, at)
        if fact is None:
            what = f"{inst.market} price of {inst.instance_type}"
            where = f" in {inst.zone}" if inst.market == SPOT and inst.zone else ""
            return None, f"no {what}{where} at {at:%Y-%m-%d %H:%M} UTC"
        if fact.usd is None:
            return None, fact.reason or f"the price of {inst.instance_type} is unknown"
        return fact.usd, ""

    def on_demand(self, inst: Instance, at: datetime) -> tuple[float | None, str]:
        """What ``inst`` would cost per hour at ``at`` on-demand: the on-demand price of
        its type (a spot instance's too), or (None, why)."""
        fact = self._fact(dataclasses.replace(inst, market=ON_DEMAND), at)
        if fact is None:
            return None, NO_ON_DEMAND.format(itype=inst.instance_type)
        if fact.usd is None:
            return None, fact.reason or f"the on-demand price of {inst.instance_type} is unknown"
        return fact.usd, ""

    def volume(self, volume_type: str) -> tuple[float | None, str]:
        for f in self.facts:
            if f.kind == VOLUME and f.volume_type == volume_type:
                if f.usd is None:
                    return None, f.reason or f"the {volume_type} volume price is unknown"
                return f.usd, ""
        return None, f"no {volume_type} volume price"

    def ipv4(self) -> tuple[float | None, str]:
        for f in self.facts:
            if f.kind == IPV4:
                if f.usd is None:
                    return None, f.reason or "the public IPv4 price is unknown"
                return f.usd, ""
        return None, "no public IPv4 price"

    def credits(self) -> tuple[float | None, str]:
        """USD per surplus credit (one vCPU-minute)."""
        for f in self.facts:
            if f.kind == CREDITS:
                if f.usd is None:
                    return None, f.reason or "the surplus CPU credit price is unknown"
                return f.usd / 60, ""
        return None, "no surplus CPU credit price"

    def boundaries(self) -> set[datetime]:
        return {t for f in self.facts for t in (f.start, f.end) if t is not None}


@dataclass
class JobLine:
    job_id: str
    app: str
    state: str
    start: datetime | None
    end: datetime | None  # None: still running at the ledger's time
    pods: int
    core_hours: float = 0.0
    gib_hours: float = 0.0
    usd: float = 0.0
    exact: bool = True  # False: a price it depends on is unknown; usd is a lower bound
    #: Its share of what the workers would have cost with the spot ones at on-demand
    #: prices (= usd when no spot worker ran while it did); None: an on-demand price a
    #: spot worker needs is unknown, or a spot price is (the saving is then unknown).
    on_demand_usd: float | None = 0.0
    on_spot: bool = False  # a spot worker ran while the job reserved some of the workers

    @property
    def spot_saved_usd(self) -> float | None:
        """What spot saved this job against on-demand; None when no spot worker ran while
        it did, or when the saving is not known."""
        if not self.on_spot or self.on_demand_usd is None:
            return None
        return self.on_demand_usd - self.usd


@dataclass
class InstanceLine:
    instance_id: str
    name: str
    role: str
    instance_type: str
    market: str
    hours: float = 0.0
    usd: float = 0.0
    exact: bool = True
    #: Spot: what it would have cost at its type's on-demand price (and the same
    #: credits) while it ran; None when that price is unknown. On-demand: None.
    on_demand_usd: float | None = None


@dataclass
class Segment:
    """A stretch of time over which nothing changed, and what each line cost in it."""

    start: datetime
    end: datetime
    usd: dict[str, float]


@dataclass
class Rate:
    """Dollars per hour at one moment."""

    instances: float = 0.0
    volumes: float = 0.0
    addresses: float = 0.0
    unknown: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.instances + self.volumes + self.addresses

    @property
    def exact(self) -> bool:
        return not self.unknown


@dataclass
class Breakdown:
    start: datetime
    end: datetime
    jobs: list[JobLine]
    instances: list[InstanceLine]
    idle: float
    control_plane: float
    volumes: float
    addresses: float
    rate: Rate
    unknown: list[str]
    segments: list[Segment]
    #: why what spot saved is not known (the totals above do not depend on it)
    spot_unknown: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return (
            sum(j.usd for j in self.jobs)
            + self.idle
            + self.control_plane
            + self.volumes
            + self.addresses
        )

    @property
    def exact(self) -> bool:
        """False: some price is unknown and every total that includes it is a lower
        bound ("at least")."""
        return not self.unknown


class _Unknowns:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def add(self, reason: str) -> None:
        if reason and reason not in self.reasons:
            self.reasons.append(reason)


@dataclass
class _Instant:
    """One instance's cost per hour at a moment, in three parts (known parts only)."""

    running: bool
    instance: float | None  # None: its price is unknown
    volumes: float
    address: float


def _instant(inst: Instance, at: datetime, prices: Prices, unknown: _Unknowns) -> _Instant:
    running = _any_alive(inst.running, at)
    instance: float | None = 0.0
    address = volumes = 0.0
    if running:
        instance, why = prices.instance(inst, at)
        if instance is None:
            unknown.add(why)
        if inst.public_ipv4:
            ip_usd, why = prices.ipv4()
            if ip_usd is None:
                unknown.add(why)
            address = ip_usd or 0.0
    for vol in inst.volumes:
        if _any_alive(vol.existed, at):
            gb_usd, why = prices.volume(vol.volume_type)
            if gb_usd is None:
                unknown.add(why)
            volumes += vol.size_gb * (gb_usd or 0.0) / HOURS_PER_MONTH
    return _Instant(running, instance, volumes, address)


def rate(ledger: Ledger, at: datetime | None = None) -> Rate:
    """What the cluster costs per hour at ``at`` (default: the ledger's time): instances
    running then, volumes existing then, addresses of running instances."""
    at = at or ledger.generated
    prices = Prices(ledger.prices)
    out = Rate()
    unknown = _Unknowns()
    for inst in ledger.instances:
        now = _instant(inst, at, prices, unknown)
        out.instances += now.instance or 0.0
        out.volumes += now.volumes
        out.addresses += now.address
    out.unknown = unknown.reasons
    return out


def compute(
    ledger: Ledger, *, since: datetime | None = None, until: datetime | None = None
) -> Breakdown:
    """Every figure for the window [since, until] (default: from the first fact to the
    ledger's time). Intervals are cut at the window's edges."""
    end = until or ledger.generated
    starts = [
        i.start
        for inst in ledger.instances
        for i in (*inst.running, *(e for v in inst.volumes for e in v.existed))
    ] + [p.ran.start for j in ledger.jobs for p in j.pods]
    starts += [c.start for inst in ledger.instances for c in inst.surplus_credits or ()]
    start = since or min(starts, default=end)
    start = min(start, end)
    prices = Prices(ledger.prices)
    unknown = _Unknowns()
    spot_unknown = _Unknowns()

    cuts: set[datetime] = {start, end} | prices.boundaries()
    for inst in ledger.instances:
        for i in (*inst.running, *(e for v in inst.volumes for e in v.existed)):
            cuts |= {i.start} | ({i.end} if i.end else set())
        for charge in inst.surplus_credits or ():
            cuts |= {charge.start, charge.end}
    for job in ledger.jobs:
        for pod in job.pods:
            cuts |= {pod.ran.start} | ({pod.ran.end} if pod.ran.end else set())
    times = sorted(t for t in cuts if start <= t <= end)

    jobs = [
        JobLine(
            job.job_id,
            job.app,
            job.state,
            min((p.ran.start for p in job.pods), default=None),
            None
            if any(p.ran.end is None for p in job.pods) or not job.pods
            else max(p.ran.end for p in job.pods if p.ran.end),
            len(job.pods),
        )
        for job in ledger.jobs
    ]
    lines = {
        inst.instance_id: InstanceLine(
            inst.instance_id, inst.name, inst.role, inst.instance_type, inst.market,
            on_demand_usd=0.0 if inst.market == SPOT else None,
        )
        for inst in ledger.instances
    }  # fmt: skip
    for inst in ledger.instances:
        if (
            inst.cpu_credits == "unlimited"
            and inst.surplus_credits is None
            and any(_overlaps(i, start, end) for i in inst.running)
        ):
            unknown.add(SURPLUS_CREDITS.format(name=inst.name or inst.instance_id))
    idle = control = volumes = addresses = 0.0
    segments: list[Segment] = []
    for a, b in itertools.pairwise(times):
        hours = _hours(a, b)
        if hours <= 0:
            continue
        seg: dict[str, float] = {}
        workers_usd = 0.0
        workers_exact = True
        # what the running spot workers' prices saved against on-demand in this stretch
        spot_saved: float | None = 0.0
        spot_ran = False
        cap_cpu = 0.0
        cap_mem = 0
        for inst in ledger.instances:
            now = _instant(inst, a, prices, unknown)
            line = lines[inst.instance_id]
            if now.running:
                line.hours += hours
                if inst.market == SPOT:
                    od, why = prices.on_demand(inst, a)
                    spot_unknown.add(why)
                    if now.instance is None:
                        spot_unknown.add(SPOT_UNKNOWN.format(itype=inst.instance_type,
                                                             zone=inst.zone))  # fmt: skip
                    if od is None or line.on_demand_usd is None:
                        line.on_demand_usd = None
                    else:
                        line.on_demand_usd += od * hours
                    if inst.role == WORKER:
                        spot_ran = True
                        if od is None or now.instance is None or spot_saved is None:
                            spot_saved = None
                        else:
                            spot_saved += (od - now.instance) * hours
                if now.instance is None:
                    line.exact = False
                    workers_exact = workers_exact and inst.role != WORKER
                else:
                    line.usd += now.instance * hours
                    if inst.role == CONTROL_PLANE:
                        seg[CONTROL_PLANE_LINE] = (
                            seg.get(CONTROL_PLANE_LINE, 0.0) + now.instance * hours
                        )
                    else:
                        workers_usd += now.instance * hours
                if inst.role == WORKER:
                    cap_cpu += inst.vcpus
                    cap_mem += inst.memory_bytes
            addresses += now.address * hours
            volumes += now.volumes * hours
            for label, part in ((ADDRESSES_LINE, now.address), (VOLUMES_LINE, now.volumes)):
                if part:
                    seg[label] = seg.get(label, 0.0) + part * hours
            # charged credits count whenever charged (an hour may start before a run)
            for charge in inst.surplus_credits or ():
                if charge.start <= a < charge.end and charge.credits > 0:
                    per_credit, why = prices.credits()
                    if per_credit is None:
                        unknown.add(why)
                        lines[inst.instance_id].exact = False
                        continue
                    usd_c = charge.credits * per_credit * hours / _hours(charge.start, charge.end)
                    lines[inst.instance_id].usd += usd_c
                    if line.on_demand_usd is not None:  # the same credits on-demand
                        line.on_demand_usd += usd_c
                    if inst.role == CONTROL_PLANE:
                        seg[CONTROL_PLANE_LINE] = seg.get(CONTROL_PLANE_LINE, 0.0) + usd_c
                    else:
                        workers_usd += usd_c
        control += seg.get(CONTROL_PLANE_LINE, 0.0)
        shares: list[tuple[JobLine, float]] = []
        for job, jline in zip(ledger.jobs, jobs, strict=True):
            cpu = sum(p.cpu for p in job.pods if _alive(p.ran, a))
            mem = sum(p.memory_bytes for p in job.pods if _alive(p.ran, a))
            if cpu <= 0 and mem <= 0:
                continue
            jline.core_hours += cpu * hours
            jline.gib_hours += mem / GIB * hours
            if not workers_exact:
                jline.exact = False
            if cap_cpu > 0 and cap_mem > 0:
                shares.append((jline, (min(1.0, cpu / cap_cpu) + min(1.0, mem / cap_mem)) / 2))
            else:  # its pods ran on workers the ledger does not know: not free, unknown
                jline.exact = False
                unknown.add(NO_WORKERS.format(job=jline.job_id, at=a))
        held = sum(s for _, s in shares)
        scale = 1.0 / held if held > 1.0 else 1.0  # more reserved than exists: pro rata
        jobs_usd = 0.0
        for jline, share in shares:
            usd = workers_usd * share * scale
            jline.usd += usd
            jobs_usd += usd
            jline.on_spot = jline.on_spot or spot_ran
            if spot_saved is None or jline.on_demand_usd is None:
                jline.on_demand_usd = None
            else:
                jline.on_demand_usd += usd + spot_saved * share * scale
            seg[jline.job_id] = seg.get(jline.job_id, 0.0) + usd
        idle += workers_usd - jobs_usd
        if workers_usd - jobs_usd > 0:
            seg[IDLE] = workers_usd - jobs_usd
        segments.append(Segment(a, b, seg))
    return Breakdown(
        start=start,
        end=end,
        jobs=[j for j in jobs if j.core_hours > 0 or j.gib_hours > 0 or _in_window(j, start, end)],
        instances=[line for line in lines.values() if line.hours > 0 or line.usd > 0],
        idle=idle,
        control_plane=control,
        volumes=volumes,
        addresses=addresses,
        rate=rate(ledger, end),
        unknown=unknown.reasons,
        segments=segments,
        spot_unknown=spot_unknown.reasons,
    )


def _overlaps(interval: Interval, start: datetime, end: datetime) -> bool:
    return interval.start < end and (interval.end is None or interval.end > start)


def _clip(interval: Interval, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The part of ``interval`` inside [start, end] (an open one runs to ``end``), or
    None when none is."""
    a, b = max(interval.start, start), min(interval.end or end, end)
    return (a, b) if a < b else None


def _in_window(job: JobLine, start: datetime, end: datetime) -> bool:
    if job.start is None:
        return False
    return job.start <= end and (job.end is None or job.end >= start)


@dataclass
class Scaling:
    """What following the work cost and saved over a window (:func:`scaling`)."""

    grew: int  # the controller's grow events in the window
    shrank: int  # and its shrink events (one instance each)
    #: Workers the group launched by itself (named by their instance id: the
    #: controller's, and replacements), their hours and cost in the window.
    added: list[str]
    added_hours: float
    added_usd: float
    #: Every worker's hours and cost in the window, and the most that ran at once.
    worker_hours: float
    workers_usd: float
    peak_workers: int
    #: The workers had the peak count run from the first worker's start in the window
    #: to its end, at what a worker hour cost on average: what a cluster sized for the
    #: peak would have cost without scaling; None without worker hours.
    fixed_usd: float | None
    queued_jobs: int  # jobs that waited in the queue in the window
    queued_seconds: float  # all their waits in the window, added up
    exact: bool

    @property
    def saved_usd(self) -> float | None:
        if self.fixed_usd is None:
            return None
        return max(0.0, self.fixed_usd - self.workers_usd)


def scaling(ledger: Ledger, window: Breakdown) -> Scaling:
    """The scaling lines of ``window`` (a :func:`compute` of ``ledger``)."""
    start, end = window.start, window.end
    events = [e for e in ledger.scaling if start <= e.at <= end]
    lines = {line.instance_id: line for line in window.instances}
    workers = [i for i in ledger.instances if i.role == WORKER]
    # (a worker nobody named joined under its instance id; `up` names its own worker-N)
    added = [i.instance_id for i in workers if i.name == i.instance_id and i.name.startswith("i-")]
    worker_lines = [lines[i.instance_id] for i in workers if i.instance_id in lines]
    # the most workers running at once, and the span any ran, within the window
    moments: list[tuple[datetime, int]] = []
    for inst in workers:
        for interval in inst.running:
            cut = _clip(interval, start, end)
            if cut is not None:
                moments += [(cut[0], 1), (cut[1], -1)]
    peak = running = 0
    for _, step in sorted(moments, key=lambda m: (m[0], m[1])):
        running += step
        peak = max(peak, running)
    hours = sum(line.hours for line in worker_lines)
    usd = sum(line.usd for line in worker_lines)
    fixed = None
    if moments and hours > 0:
        span = _hours(min(m[0] for m in moments), max(m[0] for m in moments))
        fixed = peak * span * usd / hours
    waits = 0.0
    queued = 0
    for job in ledger.jobs:
        cut = _clip(job.queued, start, end) if job.queued is not None else None
        if cut is not None:
            queued += 1
            waits += (cut[1] - cut[0]).total_seconds()
    return Scaling(
        grew=sum(1 for e in events if e.kind == "grow"),
        shrank=sum(1 for e in events if e.kind == "shrink"),
        added=added,
        added_hours=sum(lines[i].hours for i in added if i in lines),
        added_usd=sum(lines[i].usd for i in added if i in lines),
        worker_hours=hours,
        workers_usd=usd,
        peak_workers=peak,
        fixed_usd=fixed,
        queued_jobs=queued,
        queued_seconds=waits,
        exact=all(line.exact for line in worker_lines),
    )


@dataclass
class Spot:
    """What the spot instances of a window cost, and what the same instances would have
    cost on-demand (:func:`spot`)."""

    worker_hours: float  # the hours spot instances ran in the window
    usd: float  # what they cost (a lower bound when a spot price is unknown)
    #: at their types' on-demand prices (and the same credits); None: unknown
    on_demand_usd: float | None
    exact: bool  # False: a spot price is unknown, and usd is a lower bound
    unknown: list[str]  # why the saving is not known

    @property
    def saved_usd(self) -> float | None:
        """on-demand - spot; None when either is not known exactly."""
        if self.on_demand_usd is None or not self.exact:
            return None
        return self.on_demand_usd - self.usd


def spot(window: Breakdown) -> Spot | None:
    """The spot lines of ``window`` (a :func:`compute`): None when no spot instance ran
    in it."""
    lines = [line for line in window.instances if line.market == SPOT and line.hours > 0]
    if not lines:
        return None
    od = [line.on_demand_usd for line in lines]
    known = [usd for usd in od if usd is not None]
    return Spot(
        worker_hours=sum(line.hours for line in lines),
        usd=sum(line.usd for line in lines),
        on_demand_usd=sum(known) if len(known) == len(od) else None,
        exact=all(line.exact for line in lines),
        unknown=list(window.spot_unknown),
    )
