"""What ``plan``, ``status`` and ``ls`` say, as typed views: ``--output json`` is one of
them serialised by :func:`to_json`; the text of ``status`` and ``ls`` reads the same
fields.

Each view is a frozen dataclass built from the typed records the AWS layer returns
(:class:`~sparkube.aws.provider.Plan`, :class:`~sparkube.model.ClusterInfo`,
:class:`~sparkube.model.Node`, :class:`~sparkube.aws.discovery.ClusterSummary`); its
fields are the JSON keys, in order. Plain dataclasses, so ``sparkube --help`` loads no
model library. Costs of nodes (per hour, so far) are computed here once for both
outputs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sparkube.model import CONTROL_PLANE, ClusterInfo, Node

if TYPE_CHECKING:  # imported where used: '--help' and '--version' load no AWS SDK
    from sparkube.aws.discovery import ClusterSummary
    from sparkube.aws.pricing import CostEstimate
    from sparkube.aws.provider import Plan
    from sparkube.cost.collect import ClusterCost
    from sparkube.spec import ClusterSpec


def to_json(view: Any) -> str:
    """The one serialiser of ``--output json``: a view (or a list of views) as JSON,
    its fields as keys in their order."""
    return json.dumps(_plain(view))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _ttl_minutes(ttl: timedelta | None) -> int | None:
    return int(ttl.total_seconds() // 60) if ttl else None


def time_left(expires: datetime | None, now: datetime) -> str:
    """``1h05m``, ``expired``, or ``-`` without a TTL."""
    if expires is None:
        return "-"
    left = expires - now
    if left <= timedelta(0):
        return "expired"
    minutes = int(left.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


# --- costs of nodes -----------------------------------------------------------------


def hours_up(node: Node, now: datetime) -> float:
    """Hours since the node was launched, while it runs (0 once stopped)."""
    if node.launch_time is None or node.state not in ("running", "pending"):
        return 0.0
    return max(0.0, (now - node.launch_time).total_seconds() / 3600)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceView:
    kind: str
    name: str
    exists: bool
    detail: str


@dataclass(frozen=True)
class InstancesView:
    role: str
    count: int
    existing: int
    instance_type: str
    vcpus: int
    memory_mib: int
    architecture: str
    ami: str
    root_volume_gb: int
    spot: bool
    usd_per_hour_each: float | None
    #: standard or unlimited; None for a type without CPU credits (not burstable)
    cpu_credits: str | None
    #: The most of this role (workers: the group's maximum; ``count`` is its minimum).
    max_count: int
    #: Spot workers: how many run on-demand (the group's first: drivers run there), and
    #: the on-demand price of each, beside the spot one above.
    on_demand_count: int = 0
    on_demand_usd_per_hour_each: float | None = None


def _r6(value: float | None) -> float | None:
    """Plan's figures per hour to a millionth of a dollar: parts add up to the total."""
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class VolumesView:
    count: int
    gb_each: int
    volume_type: str | None
    usd_per_gb_month: float | None
    source: str | None


@dataclass(frozen=True)
class AddressesView:
    count: int
    usd_per_hour_each: float
    source: str


@dataclass(frozen=True)
class CostView:
    """The hourly price: instances + root volumes + public IPv4 addresses. With a part
    unknown, ``usd_per_hour`` is what is known (at least) and ``exact`` is false;
    ``unknown`` says why (an unknown price, or surplus CPU credits in unlimited mode)."""

    usd_per_hour: float | None
    market: str
    source: str
    exact: bool
    unknown: list[str]
    instances_usd_per_hour: float | None
    volumes_usd_per_hour: float | None
    addresses_usd_per_hour: float
    volumes: VolumesView
    addresses: AddressesView

    @classmethod
    def of(cls, cost: CostEstimate, source: str | None = None) -> CostView:
        from sparkube.aws.pricing import IPV4_SOURCE, IPV4_USD_PER_HOUR

        volume = cost.volume
        return cls(
            usd_per_hour=_r6(cost.at_least_usd_per_hour),
            market=cost.market,
            source=source or cost.sources,
            exact=cost.exact,
            unknown=cost.unknown,
            instances_usd_per_hour=_r6(cost.instances_usd_per_hour),
            volumes_usd_per_hour=_r6(cost.volumes_usd_per_hour),
            addresses_usd_per_hour=_r6(cost.addresses_usd_per_hour) or 0.0,
            volumes=VolumesView(
                count=cost.nodes if cost.volume_gb else 0,
                gb_each=cost.volume_gb,
                volume_type=volume.volume_type if volume else None,
                usd_per_gb_month=volume.usd_per_gb_month if volume else None,
                source=volume.source if volume else None,
            ),
            addresses=AddressesView(cost.addresses, IPV4_USD_PER_HOUR, IPV4_SOURCE),
        )


@dataclass(frozen=True)
class PlanView:
    """``plan -o json``: what ``up`` would create, what exists, and the price."""

    cluster: str
    region: str
    vpc_id: str
    allow_cidrs: list[str]
    resources: list[ResourceView]
    instances: list[InstancesView]
    #: The price per hour at the minimum of workers (what ``up`` launches) ...
    cost: CostView
    #: ... and with the worker group at its maximum.
    cost_at_max: CostView
    ttl_minutes: int | None

    @classmethod
    def of(cls, plan: Plan) -> PlanView:
        return cls(
            cluster=plan.cluster,
            region=plan.region,
            vpc_id=plan.vpc_id,
            allow_cidrs=list(plan.allow_cidrs),
            resources=[ResourceView(r.kind, r.name, r.exists, r.detail) for r in plan.resources],
            instances=[
                InstancesView(
                    role=i.role,
                    count=i.count,
                    existing=i.existing,
                    instance_type=i.instance_type,
                    vcpus=i.vcpus,
                    memory_mib=i.memory_mib,
                    architecture=i.architecture,
                    ami=i.ami,
                    root_volume_gb=i.root_volume_gb,
                    spot=i.spot,
                    usd_per_hour_each=i.usd_per_hour,
                    cpu_credits=i.cpu_credits,
                    max_count=i.count if i.max_count is None else i.max_count,
                    on_demand_count=i.on_demand_count,
                    on_demand_usd_per_hour_each=i.on_demand_usd_per_hour,
                )
                for i in plan.instances
            ],
            cost=CostView.of(plan.cost),
            cost_at_max=CostView.of(plan.cost_at_max),
            ttl_minutes=plan.ttl_minutes,
        )


@dataclass(frozen=True)
class OfflineInstancesView:
    role: str
    count: int
    instance_type: str
    spot: bool
    usd_per_hour_each: float | None
    cpu_credits: str | None
    max_count: int


@dataclass(frozen=True)
class OfflinePlanView:
    """``plan -o json`` when nothing was asked of AWS: the bundled table's estimate."""

    offline: bool
    reason: str
    cluster: str
    region: str
    instances: list[OfflineInstancesView]
    cost: CostView
    cost_at_max: CostView
    ttl_minutes: int | None

    @classmethod
    def of(
        cls, spec: ClusterSpec, region: str, cost: CostEstimate, *, reason: str, source: str
    ) -> OfflinePlanView:
        from sparkube.aws.instances import is_burstable

        each = [(CONTROL_PLANE, 1, cost.control_plane), ("worker", spec.workers, cost.worker)]
        return cls(
            offline=True,
            reason=reason,
            cluster=spec.name,
            region=region,
            instances=[
                OfflineInstancesView(
                    role=role,
                    count=count,
                    instance_type=price.instance_type,
                    spot=role == "worker" and spec.spot,
                    usd_per_hour_each=price.usd_per_hour,
                    cpu_credits=spec.cpu_credits if is_burstable(price.instance_type) else None,
                    max_count=spec.max_count if role == "worker" else count,
                )
                for role, count, price in each
            ],
            cost=CostView.of(cost, source),
            cost_at_max=CostView.of(cost.with_workers(spec.max_count), source),
            ttl_minutes=_ttl_minutes(spec.ttl),
        )


# --- status -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeView:
    name: str
    role: str
    instance_id: str
    instance_type: str
    state: str
    spot: bool
    public_ip: str | None
    private_ip: str | None
    availability_zone: str | None
    launch_time: str | None
    uptime_seconds: int
    usd_per_hour: float | None
    usd_so_far: float | None

    @classmethod
    def of(cls, node: Node, costs: ClusterCost | None, now: datetime) -> NodeView:
        cost = costs.nodes.get(node.instance_id) if costs is not None else None
        hours = hours_up(node, now)
        return cls(
            name=node.name,
            role=node.role,
            instance_id=node.instance_id,
            instance_type=node.instance_type,
            state=node.state,
            spot=node.spot,
            public_ip=node.public_ip,
            private_ip=node.private_ip,
            availability_zone=node.availability_zone,
            launch_time=_iso(node.launch_time),
            uptime_seconds=int(hours * 3600),
            usd_per_hour=cost.usd_per_hour if cost else None,
            usd_so_far=_rounded(cost.usd_so_far) if cost else None,
        )


@dataclass(frozen=True)
class StatusView:
    """``status -o json``: the cluster's resources, phases, nodes and cost."""

    cluster: str
    region: str
    exists: bool
    security_group_id: str | None
    key_name: str | None
    bucket: str | None
    instance_profile: str | None
    expires_at: str | None
    time_left: str
    usd_per_hour: float | None
    usd_so_far: float | None
    #: False: a price is unknown and both figures are lower bounds (see cost_unknown)
    cost_exact: bool
    cost_unknown: list[str]
    phases_done: list[str]
    phases_pending: list[str]
    kubeconfig: str | None
    nodes: list[NodeView]

    @classmethod
    def of(
        cls,
        info: ClusterInfo,
        costs: ClusterCost | None,
        now: datetime,
        *,
        exists: bool,
        phases: tuple[list[str], list[str]],
        kubeconfig: str | None,
    ) -> StatusView:
        done, pending = phases
        return cls(
            cluster=info.name,
            region=info.region,
            exists=exists,
            security_group_id=info.security_group_id,
            key_name=info.key_name,
            bucket=info.bucket,
            instance_profile=info.instance_profile,
            expires_at=_iso(info.expires_at),
            time_left=time_left(info.expires_at, now),
            usd_per_hour=_rounded(costs.usd_per_hour) if costs else None,
            usd_so_far=_rounded(costs.usd_so_far) if costs else None,
            cost_exact=costs.exact if costs else False,
            cost_unknown=list(costs.unknown) if costs else [],
            phases_done=done,
            phases_pending=pending,
            kubeconfig=kubeconfig,
            nodes=[NodeView.of(n, costs, now) for n in info.nodes],
        )


# --- ls -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRow:
    """One cluster of ``ls`` (``ls -o json`` is a list of them)."""

    cluster: str
    region: str
    nodes: int
    running: int
    usd_per_hour: float | None
    usd_so_far: float | None
    cost_exact: bool
    expires_at: str | None
    time_left: str

    @classmethod
    def of(cls, summary: ClusterSummary, costs: ClusterCost, now: datetime) -> ClusterRow:
        return cls(
            cluster=summary.name,
            region=summary.region,
            nodes=len(summary.nodes),
            running=sum(1 for n in summary.nodes if n.state == "running"),
            usd_per_hour=_rounded(costs.usd_per_hour),
            usd_so_far=_rounded(costs.usd_so_far),
            cost_exact=costs.exact,
            expires_at=_iso(summary.expires_at),
            time_left=time_left(summary.expires_at, now),
        )
