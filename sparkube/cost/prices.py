"""The prices of the ledger, each with its source: on-demand from the AWS Price List
(the bundled table as a labelled fallback), spot from the zone's spot price history over
the window (each price with the span it was in force) and, for the same type, its
on-demand price (what spot saved is measured against), volumes per GB-month, public IPv4
per hour. A price that cannot be known is a fact too: ``usd`` None and the reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sparkube.aws import pricing
from sparkube.cost.ledger import (
    CREDITS,
    INSTANCE,
    IPV4,
    ON_DEMAND,
    SPOT,
    VOLUME,
    Instance,
    PriceFact,
)

#: Below a tenth of a cent an hour is not a real price (emulators answer 0.00001).
MIN_REAL_SPOT = 0.001


def on_demand(clients: Any, region: str, types: Iterable[str]) -> list[PriceFact]:
    out = []
    for itype, price in sorted(pricing.on_demand_prices(clients, region, types).items()):
        reason = (
            ""
            if price.usd_per_hour is not None
            else f"no on-demand price for {itype} in {region} (neither the AWS Price List "
            "nor the bundled table has it)"
        )
        out.append(PriceFact(INSTANCE, price.usd_per_hour, price.source, instance_type=itype,
                             market=ON_DEMAND, reason=reason))  # fmt: skip
    return out


def spot_history(
    ec2: Any, instance_type: str, zone: str, start: datetime, end: datetime
) -> list[PriceFact]:
    """The zone's spot prices in force between start and end, as spans. EC2 also returns
    the last change before ``start``: the price in force at ``start``."""
    unknown = PriceFact(INSTANCE, None, pricing.SPOT_HISTORY, instance_type=instance_type,
                        market=SPOT, zone=zone)  # fmt: skip
    try:
        points: list[tuple[datetime, float]] = []
        pages = ec2.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=[instance_type],
            AvailabilityZone=zone,
            ProductDescriptions=["Linux/UNIX"],
            StartTime=start,
            EndTime=end,
        )
        for page in pages:
            for item in page.get("SpotPriceHistory", []):
                if item.get("AvailabilityZone", zone) != zone:
                    continue
                stamp = item.get("Timestamp")
                if isinstance(stamp, datetime):
                    points.append((stamp, float(item["SpotPrice"])))
    except Exception as exc:
        return [_with_reason(unknown, f"the spot price history of {instance_type} in {zone} "
                                      f"could not be read ({_first_line(exc)})")]  # fmt: skip
    real = sorted(p for p in points if p[1] >= MIN_REAL_SPOT)
    if not real:
        return [_with_reason(unknown, f"EC2 gave no spot price for {instance_type} in {zone} "
                                      f"between {start:%Y-%m-%d %H:%M} and "
                                      f"{end:%Y-%m-%d %H:%M} UTC")]  # fmt: skip
    facts = []
    for n, (at, usd) in enumerate(real):
        until = real[n + 1][0] if n + 1 < len(real) else None
        facts.append(PriceFact(INSTANCE, usd, pricing.SPOT_HISTORY, instance_type=instance_type,
                               market=SPOT, zone=zone, start=at, end=until))  # fmt: skip
    return facts


def volumes(clients: Any, region: str, types: Iterable[str]) -> list[PriceFact]:
    out = []
    for vtype in sorted(set(types)):
        price = pricing.ebs_price(clients, region, vtype)
        out.append(PriceFact(VOLUME, price.usd_per_gb_month, price.source, volume_type=vtype,
                             reason=price.reason))  # fmt: skip
    return out


def ipv4() -> PriceFact:
    return PriceFact(IPV4, pricing.IPV4_USD_PER_HOUR, pricing.IPV4_SOURCE)


def for_instances(
    clients: Any, region: str, instances: Sequence[Instance], start: datetime, end: datetime
) -> list[PriceFact]:
    """Every price the instances need over [start, end]: a spot instance's type also
    gets its on-demand price, what the same instance would have cost on-demand (what
    spot saved is measured against)."""
    facts = on_demand(clients, region, {i.instance_type for i in instances})
    for itype, zone in sorted({(i.instance_type, i.zone) for i in instances if i.market == SPOT}):
        first = min((r.start for i in instances if (i.instance_type, i.zone) == (itype, zone)
                     for r in i.running), default=start)  # fmt: skip
        facts += spot_history(clients.ec2, itype, zone, max(start, first), end)
    facts += volumes(clients, region, {v.volume_type for i in instances for v in i.volumes})
    if any(i.public_ipv4 for i in instances):
        facts.append(ipv4())
    if any(i.cpu_credits == "unlimited" for i in instances):
        facts.append(PriceFact(CREDITS, pricing.SURPLUS_CREDIT_USD_PER_VCPU_HOUR,
                               pricing.SURPLUS_CREDIT_SOURCE))  # fmt: skip
    return facts


def _with_reason(fact: PriceFact, reason: str) -> PriceFact:
    return PriceFact(fact.kind, None, fact.source, instance_type=fact.instance_type,
                     market=fact.market, zone=fact.zone, reason=reason)  # fmt: skip


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
