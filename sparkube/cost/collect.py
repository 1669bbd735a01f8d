"""Gather a ledger from AWS, the cluster's bucket and (when reachable) the cluster, and
answer the cost questions of ``status``, ``ls`` and ``usage`` from it. Reads only."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sparkube.cost import model
from sparkube.cost.instances import instance_facts
from sparkube.cost.ledger import CONTROL_PLANE, Instance, Job, Ledger, LedgerError, ScaleEvent
from sparkube.cost.prices import for_instances


def gather(
    clients: Any,
    cluster: str,
    region: str,
    bucket: str | None,
    *,
    jobs: Sequence[Job] = (),
    notes: Sequence[str] = (),
    now: datetime | None = None,
    use_bucket: bool = True,
) -> Ledger:
    """The ledger of ``cluster`` as of ``now``: its instances (EC2 and the bucket's
    records), the prices they need, and the given job facts."""
    from sparkube.controller import scalelog

    now = now or datetime.now(UTC)
    instances, more = instance_facts(clients, cluster, bucket if use_bucket else None, now)
    scaling: tuple[ScaleEvent, ...] = ()
    if bucket and use_bucket:
        try:
            scaling = tuple(e for e in scalelog.read(clients.s3, bucket) if e.at <= now)
        except LedgerError as exc:
            more.append(f"the workers' scale events are left out: {exc}")
    gone, said = removed_workers(clients.ec2, instances, scaling)
    instances, more = [*instances, *gone], [*more, *said]
    start = min((r.start for i in instances for r in i.running), default=now)
    prices = for_instances(clients, region, instances, start, now)
    return Ledger(
        cluster=cluster,
        region=region,
        generated=now,
        instances=tuple(instances),
        prices=tuple(prices),
        jobs=tuple(jobs),
        notes=(*more, *notes),
        scaling=scaling,
    )


def removed_workers(
    ec2: Any, instances: Sequence[Instance], events: Sequence[ScaleEvent]
) -> tuple[list[Instance], list[str]]:
    """Workers the controller removed that neither EC2 (it lists a terminated instance
    for about an hour) nor the bucket's instance records know: their interval is from
    the controller's first sight of them to their termination, and their volume and
    address are those of the other workers (all come from the group's one launch
    template)."""
    from sparkube.cost.instances import type_sizes
    from sparkube.cost.ledger import WORKER, Interval

    known = {i.instance_id for i in instances}
    missing = list({
        e.instance: e for e in events if e.kind == "shrink" and e.instance
        and e.instance not in known and e.since is not None and e.instance_type
    }.values())  # fmt: skip
    if not missing:
        return [], []
    sibling = next((i for i in instances if i.role == WORKER), None)
    sizes = type_sizes(ec2, [e.instance_type for e in missing])
    out: list[Instance] = []
    for e in missing:
        assert e.since is not None
        span = Interval(min(e.since, e.at), e.at)
        vcpus, memory = sizes.get(e.instance_type, (0.0, 0))
        volumes = tuple(
            dataclasses.replace(v, volume_id=f"{v.volume_id}~{e.instance}", existed=(span,))
            for v in (sibling.volumes if sibling else ())
        )
        out.append(
            Instance(
                e.instance, e.node or e.instance, WORKER, e.instance_type,
                sibling.market if sibling else "on-demand", e.zone, vcpus, memory, (span,),
                volumes=volumes, public_ipv4=sibling.public_ipv4 if sibling else False,
                cpu_credits=sibling.cpu_credits if sibling else None,
            )
        )  # fmt: skip
    names = ", ".join(i.instance_id for i in out)
    return out, [
        f"worker{'s' if len(out) != 1 else ''} {names} (no longer listed by EC2) counted from "
        "the controller's scale events: from when it first saw each in the group to its "
        "termination, with the other workers' volume and address"
    ]


@dataclass(frozen=True)
class NodeCost:
    usd_per_hour: float | None  # None: unknown
    usd_so_far: float | None
    exact: bool


@dataclass(frozen=True)
class ClusterCost:
    """The cost figures ``status`` and ``ls`` show: per hour now and so far, per node."""

    usd_per_hour: float
    usd_so_far: float
    exact: bool  # False: some price is unknown; the figures are lower bounds
    unknown: tuple[str, ...]
    nodes: dict[str, NodeCost]

    @classmethod
    def of(cls, ledger: Ledger) -> ClusterCost:
        out = model.compute(ledger)
        now = model.rate(ledger)
        lines = {line.instance_id: line for line in out.instances}
        nodes: dict[str, NodeCost] = {}
        for inst in ledger.instances:
            # its own instance price: its volume and address are in the cluster's lines
            bare = dataclasses.replace(inst, volumes=(), public_ipv4=False)
            r = model.rate(_alone(ledger, bare))
            line = lines.get(inst.instance_id)
            nodes[inst.instance_id] = NodeCost(
                usd_per_hour=r.instances if r.exact or r.instances else None,
                usd_so_far=(line.usd if line.exact else None) if line else 0.0,
                exact=bool(r.exact and (line is None or line.exact)),
            )
        return cls(
            usd_per_hour=now.total,
            usd_so_far=out.total,
            exact=out.exact and now.exact,
            unknown=tuple(dict.fromkeys([*out.unknown, *now.unknown])),
            nodes=nodes,
        )


def role_rates(ledger: Ledger) -> tuple[float, float]:
    """(control plane, one worker on average) in USD per hour now, each with its volume
    and address: the rate given to kube-opex-analytics is cp + workers × worker."""
    cp: list[float] = []
    workers: list[float] = []
    for inst in ledger.instances:
        r = model.rate(_alone(ledger, inst))
        if r.total > 0:
            (cp if inst.role == CONTROL_PLANE else workers).append(r.total)
    return sum(cp), (sum(workers) / len(workers) if workers else 0.0)


def _alone(ledger: Ledger, inst: Instance) -> Ledger:
    """The ledger with that one instance, for its own rate."""
    return Ledger(ledger.cluster, ledger.region, ledger.generated, (inst,), ledger.prices)
