"""What a Spark job costs: its share of the nodes' price over its run. Pure maths.

The model (say it once, use it everywhere):

- The cluster costs the sum of its nodes' hourly prices while they run (control plane
  included; spot nodes at the spot price they were launched at).
- A job holds the resources it *requested* (driver + executors: cores and memory,
  Spark's memory overhead included) for its whole duration.
- Its share of the cluster at a moment is the mean of its CPU share and its memory share
  of the workers' allocatable resources then: ``(cpu/C + mem/M) / 2``.
- Its cost is that share times the cluster's hourly price, integrated over its run.
  The run is cut wherever the set of nodes changed (a worker added or removed), so a
  job that spans a new worker pays the new price and the new capacity from then on.
  A job still running is costed up to now.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

GIB = 2**30


@dataclass(frozen=True)
class PricedNode:
    name: str
    usd_per_hour: float
    cpu: float  # allocatable cores (0 for nodes jobs cannot use, e.g. the control plane)
    memory: int  # allocatable bytes
    start: datetime
    end: datetime | None = None  # None: still running

    def alive(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class JobCost:
    core_hours: float
    gib_hours: float
    usd: float
    hours: float


def cluster_cost(nodes: Sequence[PricedNode], start: datetime, end: datetime) -> float:
    """USD the nodes cost between start and end."""
    total = 0.0
    for n in nodes:
        a = max(start, n.start)
        b = min(end, n.end) if n.end else end
        if b > a:
            total += (b - a).total_seconds() / 3600 * n.usd_per_hour
    return total


def job_cost(
    nodes: Sequence[PricedNode], start: datetime, end: datetime, cpu: float, memory: int
) -> JobCost:
    """The cost of holding ``cpu`` cores and ``memory`` bytes from start to end."""
    hours = max(0.0, (end - start).total_seconds() / 3600)
    cuts = sorted(
        {start, end}
        | {n.start for n in nodes if start < n.start < end}
        | {n.end for n in nodes if n.end and start < n.end < end}
    )
    usd = 0.0
    for a, b in itertools.pairwise(cuts):
        alive = [n for n in nodes if n.alive(a)]
        price = sum(n.usd_per_hour for n in alive)
        cap_cpu = sum(n.cpu for n in alive)
        cap_mem = sum(n.memory for n in alive)
        if cap_cpu <= 0 or cap_mem <= 0:
            continue
        share = (min(1.0, cpu / cap_cpu) + min(1.0, memory / cap_mem)) / 2
        usd += (b - a).total_seconds() / 3600 * price * share
    return JobCost(core_hours=cpu * hours, gib_hours=memory / GIB * hours, usd=usd, hours=hours)
