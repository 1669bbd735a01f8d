"""Prices: the AWS Price List API when reachable, else a bundled table.

The Price List API has endpoints only in a few regions (us-east-1 is used); spot prices
come from the region's spot price history. When either cannot be read (no permission,
no network, an emulator), the bundled ``prices.json`` answers for the t3, t3a, m5, m6i,
m7i, c6i, r6i, t4g, m6g and m7g families and for gp3 and gp2 volumes in the main
regions. Every price says which source it used; a price that cannot be known is None
with the reason, never 0.

What else an instance bills besides its hourly price: its root volume (per GB-month,
:func:`ebs_price`), its public IPv4 address (:data:`IPV4_USD_PER_HOUR`), and, for a
burstable type in ``unlimited`` CPU credit mode, surplus credits
(:data:`SURPLUS_CREDIT_USD_PER_VCPU_HOUR`), which no hourly price shows and which is
why sparkube launches burstable types in ``standard`` mode unless told otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sparkube.aws.instances import is_burstable
from sparkube.aws.workergroup import ON_DEMAND_BASE as ON_DEMAND_WORKERS

log = logging.getLogger(__name__)

PRICE_LIST = "AWS Price List"
SPOT_HISTORY = "EC2 spot price history"
BUNDLED = "bundled price table"
PRICING_REGION = "us-east-1"
#: EBS bills per GB-month; AWS counts a month as 730 hours.
HOURS_PER_MONTH = 730.0
#: Every public IPv4 address, in use or idle, since 2024-02-01 (all commercial regions).
IPV4_USD_PER_HOUR = 0.005
IPV4_SOURCE = "AWS public IPv4 charge since 2024-02-01 (aws.amazon.com/vpc/pricing)"
#: What a burstable instance in unlimited mode pays per vCPU-hour of surplus credits
#: (Linux; T2/T3/T3a/T4g), on top of its hourly price.
SURPLUS_CREDIT_USD_PER_VCPU_HOUR = 0.05
SURPLUS_CREDIT_SOURCE = "EC2 on-demand pricing, T2/T3/T4g Unlimited Mode Pricing (Linux)"


@dataclass(frozen=True)
class Price:
    instance_type: str
    usd_per_hour: float | None
    source: str
    market: str = "on-demand"


@dataclass(frozen=True)
class VolumePrice:
    """An EBS volume type's storage price in one region, USD per GB-month (None:
    unknown, and ``reason`` says why)."""

    volume_type: str
    usd_per_gb_month: float | None
    source: str
    reason: str = ""

    def hourly(self, gb: int) -> float | None:
        """What one volume of ``gb`` GiB costs per hour."""
        if self.usd_per_gb_month is None:
            return None
        return gb * self.usd_per_gb_month / HOURS_PER_MONTH


@cache
def _bundled() -> dict[str, Any]:
    text = resources.files("sparkube.aws").joinpath("prices.json").read_text("utf-8")
    return dict(json.loads(text))


@cache
def bundled_table() -> dict[str, dict[str, float]]:
    data = _bundled()
    return {r: {k: float(v) for k, v in t.items()} for r, t in data["regions"].items()}


@cache
def bundled_volume_table() -> dict[str, dict[str, float]]:
    """Region -> volume type -> USD per GB-month."""
    data = _bundled()["volumes"]["regions"]
    return {r: {k: float(v) for k, v in t.items()} for r, t in data.items()}


def bundled_price(region: str, instance_type: str) -> float | None:
    return bundled_table().get(region, {}).get(instance_type)


def _on_demand_usd(pricing: Any, fields: dict[str, str], unit: str | None = None) -> float | None:
    """The first positive on-demand USD price of the AmazonEC2 products matching
    ``fields`` (in ``unit`` when given), from the Price List."""
    filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]
    response = pricing.get_products(ServiceCode="AmazonEC2", Filters=filters, MaxResults=10)
    for raw in response.get("PriceList", []):
        product = json.loads(raw) if isinstance(raw, str) else raw
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                if unit is not None and dimension.get("unit", unit) != unit:
                    continue
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None and float(usd) > 0:
                    return float(usd)
    return None


def _price_list(pricing: Any, region: str, instance_type: str) -> float | None:
    fields = {
        "regionCode": region,
        "instanceType": instance_type,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    return _on_demand_usd(pricing, fields)


def _spot_price(ec2: Any, instance_type: str) -> float | None:
    response = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"], MaxResults=20
    )
    prices = [float(p["SpotPrice"]) for p in response.get("SpotPriceHistory", [])]
    # The dearest current zone: an estimate should not be optimistic.
    return max(prices) if prices else None


def on_demand_prices(clients: Any, region: str, types: Iterable[str]) -> dict[str, Price]:
    """On-demand price per type; one Price List query per distinct type."""
    out: dict[str, Price] = {}
    pricing: Any = None
    usable = True
    for itype in sorted(set(types)):
        usd: float | None = None
        if usable:
            try:
                pricing = pricing or clients.client("pricing", region=PRICING_REGION, attempts=1)
                usd = _price_list(pricing, region, itype)
            except Exception as exc:  # any failure: fall back to the table, and say so
                log.info("Price List API not usable (%s); using the bundled table", exc)
                usable = False
        if usd is not None:
            out[itype] = Price(itype, usd, PRICE_LIST)
        else:
            out[itype] = Price(itype, bundled_price(region, itype), BUNDLED)
    return out


def _volume_price_list(pricing: Any, region: str, volume_type: str) -> float | None:
    fields = {"regionCode": region, "productFamily": "Storage", "volumeApiName": volume_type}
    return _on_demand_usd(pricing, fields, unit="GB-Mo")


def offline_ebs_price(region: str, volume_type: str) -> VolumePrice:
    """A volume type's price from the bundled table alone (no AWS call)."""
    usd = bundled_volume_table().get(region, {}).get(volume_type)
    reason = "" if usd is not None else (
        f"the {BUNDLED} has no {volume_type} volume price for {region}"
    )  # fmt: skip
    return VolumePrice(volume_type, usd, BUNDLED, reason)


def ebs_price(clients: Any | None, region: str, volume_type: str) -> VolumePrice:
    """A volume type's storage price per GB-month: the AWS Price List when ``clients``
    can reach it, else the bundled table (``clients`` None: the table only)."""
    if clients is not None:
        try:
            pricing = clients.client("pricing", region=PRICING_REGION, attempts=1)
            usd = _volume_price_list(pricing, region, volume_type)
        except Exception as exc:  # any failure: fall back to the table, and say so
            log.info("Price List API not usable for volumes (%s); using the bundled table", exc)
            usd = None
        if usd is not None:
            return VolumePrice(volume_type, usd, PRICE_LIST)
    return offline_ebs_price(region, volume_type)


def spot_price(clients: Any, region: str, instance_type: str, fallback: Price) -> Price:
    try:
        usd = _spot_price(clients.ec2, instance_type)
    except Exception as exc:
        log.info("spot price history not readable (%s)", exc)
        usd = None
    # Below a tenth of a cent an hour is not a real price (emulators answer 0.00001).
    if usd is not None and usd > 0.001:
        return Price(instance_type, usd, SPOT_HISTORY, "spot")
    # Unknown spot price: the on-demand price is its upper bound.
    return Price(
        instance_type, fallback.usd_per_hour, fallback.source, "spot (priced at on-demand)"
    )


@dataclass(frozen=True)
class CostEstimate:
    """What a cluster of one control plane and ``workers`` workers costs per hour:
    instances + root volumes + public IPv4 addresses. A part whose price is unknown is
    left out of :attr:`at_least_usd_per_hour` and named in :attr:`unknown`."""

    control_plane: Price
    worker: Price
    workers: int
    #: Each node's root volume, GiB, and its type's price (None: volumes not priced).
    volume_gb: int = 0
    volume: VolumePrice | None = None
    #: Public IPv4 addresses (one per node when the subnet gives nodes one).
    addresses: int = 0
    #: The CPU credit mode burstable nodes launch in.
    cpu_credits: str = "standard"
    #: Spot workers: the on-demand price of their type, which the group's first
    #: ``on_demand_workers`` run at (the drivers' pool); None: one market.
    on_demand_worker: Price | None = None
    on_demand_workers: int = 0

    @property
    def nodes(self) -> int:
        return 1 + self.workers

    def with_workers(self, workers: int) -> CostEstimate:
        """The same cluster with ``workers`` workers (e.g. the worker group's maximum)."""
        import dataclasses

        return dataclasses.replace(
            self, workers=workers, addresses=(1 + workers) if self.addresses else 0
        )

    def worker_price(self, index: int) -> Price:
        """The price of the ``index``-th worker (from 0): Auto Scaling launches the
        on-demand ones first."""
        if self.on_demand_worker is not None and index < self.on_demand_workers:
            return self.on_demand_worker
        return self.worker

    @property
    def unlimited_nodes(self) -> int:
        """Nodes of a burstable type launched in ``unlimited`` CPU credit mode."""
        return _unlimited_nodes(
            self.cpu_credits,
            self.control_plane.instance_type,
            self.worker.instance_type,
            self.workers,
        )

    def _rate(self) -> Any:
        """The hourly rate of the planned nodes from the one cost model
        (:mod:`sparkube.cost.model`): a ledger of the nodes as if they ran from now."""
        from datetime import UTC, datetime

        from sparkube.cost import ledger as L
        from sparkube.cost import model

        now = datetime.now(UTC)
        nodes = [(L.CONTROL_PLANE, self.control_plane)] + [
            (L.WORKER, self.worker_price(k)) for k in range(self.workers)
        ]
        volumes = self.volume.volume_type if self.volume is not None else "gp3"
        instances = tuple(
            L.Instance(
                f"planned-{n}", f"planned-{n}", role, price.instance_type,
                L.SPOT if price.market == "spot" else L.ON_DEMAND, "", 0.0, 0,
                (L.Interval(now, None),),
                volumes=(L.Volume(f"vol-{n}", volumes, self.volume_gb, (L.Interval(now, None),)),)
                if self.volume_gb else (),
                public_ipv4=n < self.addresses,
            )
            for n, (role, price) in enumerate(nodes)
        )  # fmt: skip
        priced = [self.control_plane, self.worker] + (
            [self.on_demand_worker] if self.on_demand_worker is not None else []
        )
        facts = [
            L.PriceFact(L.INSTANCE, p.usd_per_hour, p.source, instance_type=p.instance_type,
                        market=L.SPOT if p.market == "spot" else L.ON_DEMAND)
            for p in priced
        ]  # fmt: skip
        if self.volume is not None:
            facts.append(L.PriceFact(L.VOLUME, self.volume.usd_per_gb_month, self.volume.source,
                                     volume_type=self.volume.volume_type))  # fmt: skip
        facts.append(L.PriceFact(L.IPV4, IPV4_USD_PER_HOUR, IPV4_SOURCE))
        return model.rate(L.Ledger("plan", "", now, instances, tuple(facts)))

    @property
    def instances_usd_per_hour(self) -> float | None:
        cp, w = self.control_plane.usd_per_hour, self.worker.usd_per_hour
        if cp is None or (self.workers and w is None):
            return None
        return float(self._rate().instances)

    @property
    def volumes_usd_per_hour(self) -> float | None:
        if not self.volume_gb:
            return 0.0
        if self.volume is None or self.volume.usd_per_gb_month is None:
            return None
        return float(self._rate().volumes)

    @property
    def addresses_usd_per_hour(self) -> float:
        return float(self._rate().addresses)

    @property
    def usd_per_hour(self) -> float | None:
        """The full hourly price; None when a part of it is unknown."""
        parts = (self.instances_usd_per_hour, self.volumes_usd_per_hour)
        if any(p is None for p in parts):
            return None
        return float(self._rate().total)

    @property
    def at_least_usd_per_hour(self) -> float:
        """The parts whose price is known: the full price when :attr:`exact`."""
        return float(self._rate().total)

    @property
    def unknown(self) -> list[str]:
        """Why the full price may be more than :attr:`at_least_usd_per_hour`."""
        out = []
        prices = [self.control_plane] + ([self.worker] if self.workers else [])
        for itype in dict.fromkeys(p.instance_type for p in prices if p.usd_per_hour is None):
            out.append(f"no price for {itype} (neither the AWS Price List nor the {BUNDLED})")
        if self.volumes_usd_per_hour is None:
            out.append(self.volume.reason if self.volume and self.volume.reason else
                       "the root volumes' price is unknown")  # fmt: skip
        if self.unlimited_nodes:
            n = self.unlimited_nodes
            out.append(
                f"surplus CPU credits of the {n} node{'s' if n != 1 else ''} in unlimited mode "
                f"while above their baseline (${SURPLUS_CREDIT_USD_PER_VCPU_HOUR:g} per "
                "vCPU-hour above it; status and usage count what was charged; "
                "--cpu-credits standard caps the bill at the hourly price)"
            )
        return out

    @property
    def exact(self) -> bool:
        return not self.unknown

    @property
    def sources(self) -> str:
        names = {self.control_plane.source} | ({self.worker.source} if self.workers else set())
        if self.volume_gb and self.volume is not None:
            names.add(self.volume.source)
        return " + ".join(sorted(names))

    @property
    def market(self) -> str:
        if not self.workers:
            return self.control_plane.market
        if self.on_demand_worker is not None and self.on_demand_workers:
            on_demand = min(self.on_demand_workers, self.workers)
            spot = self.workers - on_demand
            return (
                f"{on_demand} on-demand worker"
                + ("s" if on_demand != 1 else "")
                + (f" + {spot} {self.worker.market}" if spot else "")
            )
        return self.worker.market


def _unlimited_nodes(
    cpu_credits: str, control_plane_type: str, worker_type: str, workers: int
) -> int:
    if cpu_credits != "unlimited":
        return 0
    return int(is_burstable(control_plane_type)) + (workers if is_burstable(worker_type) else 0)


def offline_estimate(
    region: str,
    *,
    control_plane_type: str,
    worker_type: str,
    workers: int,
    spot: bool,
    root_volume_gb: int = 0,
    volume_type: str = "gp3",
    public_ipv4: bool = False,
    cpu_credits: str = "standard",
    max_workers: int | None = None,
) -> CostEstimate:
    """The estimate from the bundled table alone: no AWS call, no credentials needed.
    Spot workers are priced at on-demand (spot prices come only from AWS); a type or
    region the table lacks has no price (None)."""
    any_workers = workers or max_workers
    worker_market = "spot (priced at on-demand)" if spot and any_workers else "on-demand"
    on_demand = Price(worker_type, bundled_price(region, worker_type), BUNDLED)
    return CostEstimate(
        Price(control_plane_type, bundled_price(region, control_plane_type), BUNDLED),
        Price(worker_type, on_demand.usd_per_hour, BUNDLED, worker_market),
        workers,
        volume_gb=root_volume_gb,
        volume=offline_ebs_price(region, volume_type) if root_volume_gb else None,
        addresses=1 + workers if public_ipv4 else 0,
        cpu_credits=cpu_credits,
        on_demand_worker=on_demand if spot else None,
        on_demand_workers=ON_DEMAND_WORKERS if spot else 0,
    )


def estimate(
    clients: Any,
    region: str,
    *,
    control_plane_type: str,
    worker_type: str,
    workers: int,
    spot: bool,
    root_volume_gb: int = 0,
    volume_type: str = "gp3",
    public_ipv4: bool = False,
    cpu_credits: str = "standard",
    max_workers: int | None = None,
) -> CostEstimate:
    """The estimate from AWS's prices (the bundled table where AWS does not answer),
    at ``workers`` workers (:meth:`CostEstimate.with_workers` gives it at ``max_workers``).
    Without ``root_volume_gb`` and ``public_ipv4``, the instances alone."""
    prices = on_demand_prices(clients, region, [control_plane_type, worker_type])
    worker = prices[worker_type]
    if spot and (workers or max_workers):
        worker = spot_price(clients, region, worker_type, worker)
    return CostEstimate(
        prices[control_plane_type],
        worker,
        workers,
        volume_gb=root_volume_gb,
        volume=ebs_price(clients, region, volume_type) if root_volume_gb else None,
        addresses=1 + workers if public_ipv4 else 0,
        cpu_credits=cpu_credits,
        on_demand_worker=prices[worker_type] if spot else None,
        on_demand_workers=ON_DEMAND_WORKERS if spot else 0,
    )
