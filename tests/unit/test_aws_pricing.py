"""Prices: the Price List API when it answers, else the bundled table; sources named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparkube.aws import pricing

FAMILIES = ("t3", "t3a", "m5", "m6i", "m7i", "c6i", "r6i", "t4g", "m6g", "m7g")
MAIN_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-northeast-1",
    "ap-southeast-1",
)


def test_bundled_table_covers_the_families_in_the_main_regions() -> None:
    table = pricing.bundled_table()
    for region in MAIN_REGIONS:
        families = {t.split(".")[0] for t in table[region]}
        assert set(FAMILIES) <= families, region
    assert table["us-east-1"]["t3.medium"] == 0.0416
    assert table["us-east-1"]["m7g.large"] == 0.0816
    assert all(p > 0 for prices in table.values() for p in prices.values())


class FakePricing:
    def __init__(self, usd: str | None = None, fail: bool = False) -> None:
        self.usd, self.fail, self.calls = usd, fail, 0

    def get_products(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.fail:
            raise OSError("no route to pricing")
        fields = {f["Field"]: f["Value"] for f in kwargs["Filters"]}
        assert fields["operatingSystem"] == "Linux" and fields["tenancy"] == "Shared"
        product = {
            "terms": {
                "OnDemand": {"X": {"priceDimensions": {"Y": {"pricePerUnit": {"USD": self.usd}}}}}
            }
        }
        return {"PriceList": [json.dumps(product)]}


class FakeClients:
    def __init__(self, pricing_client: FakePricing, spot: list[str] | None = None) -> None:
        self.pricing = pricing_client
        self.spot = spot or []

    def client(self, service: str, **_: Any) -> FakePricing:
        assert service == "pricing"
        return self.pricing

    @property
    def ec2(self) -> Any:
        spot = self.spot

        class Ec2:
            def describe_spot_price_history(self, **_: Any) -> dict[str, Any]:
                return {"SpotPriceHistory": [{"SpotPrice": p} for p in spot]}

        return Ec2()


def test_price_list_api_is_used_when_it_answers() -> None:
    clients = FakeClients(FakePricing("0.0500000000"))
    prices = pricing.on_demand_prices(clients, "us-east-1", ["t3.medium", "t3.medium"])
    assert prices["t3.medium"] == pricing.Price("t3.medium", 0.05, pricing.PRICE_LIST)
    assert clients.pricing.calls == 1


def test_falls_back_to_the_table_once_and_says_so() -> None:
    clients = FakeClients(FakePricing(fail=True))
    prices = pricing.on_demand_prices(clients, "eu-west-1", ["m6i.large", "t3.medium"])
    assert {p.source for p in prices.values()} == {pricing.BUNDLED}
    assert prices["m6i.large"].usd_per_hour == pricing.bundled_price("eu-west-1", "m6i.large")
    assert clients.pricing.calls == 1  # not retried for the second type


def test_unknown_type_has_no_price() -> None:
    clients = FakeClients(FakePricing(fail=True))
    prices = pricing.on_demand_prices(clients, "us-east-1", ["x2iedn.metal"])
    assert prices["x2iedn.metal"].usd_per_hour is None
    estimate = pricing.CostEstimate(prices["x2iedn.metal"], prices["x2iedn.metal"], 2)
    assert estimate.usd_per_hour is None


def test_estimate_with_spot_workers() -> None:
    clients = FakeClients(FakePricing(fail=True), spot=["0.0120", "0.0150"])
    cost = pricing.estimate(
        clients,
        "us-east-1",
        control_plane_type="t3.medium",
        worker_type="t3.large",
        workers=3,
        spot=True,
    )
    assert cost.worker.market == "spot" and cost.worker.usd_per_hour == 0.015
    assert cost.usd_per_hour == pytest.approx(0.0416 + 3 * 0.015)
    assert cost.sources == f"{pricing.SPOT_HISTORY} + {pricing.BUNDLED}"


def test_spot_without_history_is_priced_at_on_demand() -> None:
    clients = FakeClients(FakePricing(fail=True), spot=["0.00001"])
    cost = pricing.estimate(
        clients,
        "us-east-1",
        control_plane_type="t3.medium",
        worker_type="t3.medium",
        workers=2,
        spot=True,
    )
    assert cost.usd_per_hour == pytest.approx(3 * 0.0416)
    assert "on-demand" in cost.market
