"""Hourly prices: the AWS Price List API when reachable, else a bundled table.

The Price List API has endpoints only in a few regions (us-east-1 is used); spot prices
come from the region's spot price history. When either cannot be read (no permission,
no network, an emulator), the bundled ``prices.json`` answers for the t3, t3a, m5, m6i,
m7i, c6i, r6i, t4g, m6g and m7g families in the main regions. Every estimate says which
source it used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)

PRICE_LIST = "AWS Price List"
SPOT_HISTORY = "EC2 spot price history"
BUNDLED = "bundled price table"
PRICING_REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    instance_type: str
    usd_per_hour: float | None
    source: str
    market: str = "on-demand"


@cache
def bundled_table() -> dict[str, dict[str, float]]:
    text = resources.files("sparkube.aws").joinpath("prices.json").read_text("utf-8")
    data = json.loads(text)
    return {r: {k: float(v) for k, v in t.items()} for r, t in data["regions"].items()}


def bundled_price(region: str, instance_type: str) -> float | None:
    return bundled_table().get(region, {}).get(instance_type)


def _price_list(pricing: Any, region: str, instance_type: str) -> float | None:
    filters = [
        {"Type": "TERM_MATCH", "Field": field, "Value": value}
        for field, value in (
            ("regionCode", region),
            ("instanceType", instance_type),
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("preInstalledSw", "NA"),
            ("capacitystatus", "Used"),
        )
    ]
    response = pricing.get_products(ServiceCode="AmazonEC2", Filters=filters, MaxResults=10)
    for raw in response.get("PriceList", []):
        product = json.loads(raw) if isinstance(raw, str) else raw
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if usd is not None and float(usd) > 0:
                    return float(usd)
    return None


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
    control_plane: Price
    worker: Price
    workers: int

    @property
    def usd_per_hour(self) -> float | None:
        cp, w = self.control_plane.usd_per_hour, self.worker.usd_per_hour
        if cp is None or (self.workers and w is None):
            return None
        return cp + self.workers * (w or 0.0)

    @property
    def sources(self) -> str:
        names = {self.control_plane.source} | ({self.worker.source} if self.workers else set())
        return " + ".join(sorted(names))

    @property
    def market(self) -> str:
        return self.worker.market if self.workers else self.control_plane.market


def offline_estimate(
    region: str, *, control_plane_type: str, worker_type: str, workers: int, spot: bool
) -> CostEstimate:
    """The estimate from the bundled table alone: no AWS call, no credentials needed.
    Spot workers are priced at on-demand (spot prices come only from AWS); a type or
    region the table lacks has no price (None)."""
    worker_market = "spot (priced at on-demand)" if spot and workers else "on-demand"
    return CostEstimate(
        Price(control_plane_type, bundled_price(region, control_plane_type), BUNDLED),
        Price(worker_type, bundled_price(region, worker_type), BUNDLED, worker_market),
        workers,
    )


def estimate(
    clients: Any,
    region: str,
    *,
    control_plane_type: str,
    worker_type: str,
    workers: int,
    spot: bool,
) -> CostEstimate:
    prices = on_demand_prices(clients, region, [control_plane_type, worker_type])
    worker = prices[worker_type]
    if spot and workers:
        worker = spot_price(clients, region, worker_type, worker)
    return CostEstimate(prices[control_plane_type], worker, workers)
