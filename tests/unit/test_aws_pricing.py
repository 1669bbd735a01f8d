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
    # the group's first worker is on-demand (the drivers' pool), the two above it spot
    assert cost.on_demand_worker is not None
    assert cost.on_demand_worker.usd_per_hour == 0.0832
    assert cost.usd_per_hour == pytest.approx(0.0416 + 0.0832 + 2 * 0.015)
    assert cost.market == "1 on-demand worker + 2 spot"
    assert cost.sources == f"{pricing.SPOT_HISTORY} + {pricing.BUNDLED}"
    top = cost.with_workers(5)
    assert top.usd_per_hour == pytest.approx(0.0416 + 0.0832 + 4 * 0.015)
    assert cost.with_workers(1).market == "1 on-demand worker"


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


# --- volumes, addresses, the full hourly price ----------------------------------------


class FakeVolumePricing:
    """The Price List's answer for EBS storage: one product, priced per GB-month."""

    def __init__(self, usd: str | None = None, fail: bool = False, unit: str = "GB-Mo") -> None:
        self.usd, self.fail, self.unit, self.filters = usd, fail, unit, {}

    def get_products(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail:
            raise OSError("no route to pricing")
        assert kwargs["ServiceCode"] == "AmazonEC2"
        self.filters = {f["Field"]: f["Value"] for f in kwargs["Filters"]}
        if self.usd is None:
            return {"PriceList": []}
        dimension = {"unit": self.unit, "pricePerUnit": {"USD": self.usd}}
        product = {"terms": {"OnDemand": {"X": {"priceDimensions": {"Y": dimension}}}}}
        return {"PriceList": [json.dumps(product)]}


def test_bundled_volume_prices_cover_every_region_of_the_instance_table() -> None:
    volumes = pricing.bundled_volume_table()
    assert set(volumes) == set(pricing.bundled_table())
    assert all({"gp3", "gp2"} <= set(v) for v in volumes.values())
    assert volumes["us-east-1"] == {"gp3": 0.08, "gp2": 0.10}  # aws.amazon.com/ebs/pricing
    assert volumes["eu-central-1"]["gp3"] == 0.0952
    assert all(v["gp3"] < v["gp2"] for v in volumes.values())  # gp3 is 20% cheaper


def test_volume_price_from_the_price_list_by_region_and_type() -> None:
    fake = FakeVolumePricing("0.0880000000")
    price = pricing.ebs_price(FakeClients(fake), "eu-west-1", "gp3")  # type: ignore[arg-type]
    assert price == pricing.VolumePrice("gp3", 0.088, pricing.PRICE_LIST)
    assert fake.filters == {
        "regionCode": "eu-west-1", "productFamily": "Storage", "volumeApiName": "gp3"
    }  # fmt: skip
    assert price.hourly(730) == pytest.approx(0.088)  # a month is 730 h


def test_volume_price_falls_back_to_the_table_and_says_so() -> None:
    for fake in (
        FakeVolumePricing(fail=True),
        FakeVolumePricing(None),
        FakeVolumePricing("1", unit="IOPS-Mo"),
    ):
        price = pricing.ebs_price(FakeClients(fake), "us-east-1", "gp2")  # type: ignore[arg-type]
        assert price == pricing.VolumePrice("gp2", 0.10, pricing.BUNDLED)
    assert pricing.ebs_price(None, "us-east-1", "gp3").usd_per_gb_month == 0.08  # offline


def test_unknown_volume_price_is_none_with_the_reason_never_0() -> None:
    price = pricing.ebs_price(FakeClients(FakeVolumePricing(fail=True)), "mars-1", "gp3")  # type: ignore[arg-type]
    assert price.usd_per_gb_month is None and price.hourly(40) is None
    assert price.reason == "the bundled price table has no gp3 volume price for mars-1"
    assert pricing.offline_ebs_price("us-east-1", "io2").usd_per_gb_month is None


def test_the_public_ipv4_price_and_its_source() -> None:
    assert pricing.IPV4_USD_PER_HOUR == 0.005
    assert "2024-02-01" in pricing.IPV4_SOURCE


def test_full_hourly_price_is_instances_volumes_and_addresses() -> None:
    cost = pricing.offline_estimate(
        "us-east-1", control_plane_type="t3.medium", worker_type="m7i.large", workers=2,
        spot=False, root_volume_gb=40, public_ipv4=True,
    )  # fmt: skip
    # by hand: 0.0416 + 2 × 0.1008; 3 × 40 GiB × $0.08 / 730 h; 3 × $0.005
    assert cost.instances_usd_per_hour == pytest.approx(0.2432)
    assert cost.volumes_usd_per_hour == pytest.approx(9.6 / 730)
    assert cost.addresses_usd_per_hour == pytest.approx(0.015)
    assert cost.usd_per_hour == pytest.approx(0.2432 + 9.6 / 730 + 0.015)
    assert cost.at_least_usd_per_hour == cost.usd_per_hour
    assert cost.exact and cost.unknown == []
    # standard credits (the default): the hourly price is the bill
    assert cost.unlimited_nodes == 0
    bare = pricing.offline_estimate(
        "us-east-1", control_plane_type="t3.medium", worker_type="m7i.large", workers=2, spot=False
    )
    assert bare.usd_per_hour == pytest.approx(0.2432)  # without volumes and addresses


def test_an_unknown_part_makes_the_total_at_least_with_the_reason() -> None:
    cost = pricing.offline_estimate(
        "us-east-1", control_plane_type="t3.medium", worker_type="x9.huge", workers=2,
        spot=False, root_volume_gb=40, public_ipv4=True,
    )  # fmt: skip
    assert cost.usd_per_hour is None and not cost.exact
    assert cost.at_least_usd_per_hour == pytest.approx(0.0416 + 9.6 / 730 + 0.015)
    assert cost.unknown == [
        "no price for x9.huge (neither the AWS Price List nor the bundled price table)"
    ]
    nowhere = pricing.offline_estimate(
        "mars-1", control_plane_type="t3.medium", worker_type="t3.medium", workers=0,
        spot=False, root_volume_gb=40,
    )  # fmt: skip
    assert nowhere.volumes_usd_per_hour is None
    assert "no gp3 volume price for mars-1" in nowhere.unknown[-1]


def test_unlimited_credits_are_named_for_burstable_nodes_only() -> None:
    def unlimited(cp: str, worker: str) -> pricing.CostEstimate:
        return pricing.offline_estimate(
            "us-east-1", control_plane_type=cp, worker_type=worker, workers=3, spot=False,
            cpu_credits="unlimited",
        )  # fmt: skip

    assert unlimited("t3.medium", "t4g.large").unlimited_nodes == 4
    assert unlimited("t3.medium", "m7i.large").unlimited_nodes == 1
    none = unlimited("m7i.large", "c6i.large")
    assert none.unlimited_nodes == 0 and none.exact  # other families have no credits
    cost = unlimited("t3.medium", "t3.medium")
    assert cost.usd_per_hour == pytest.approx(4 * 0.0416) and not cost.exact
    (note,) = cost.unknown
    assert "surplus CPU credits of the 4 nodes in unlimited mode" in note and "$0.05" in note


def test_estimate_prices_volumes_from_the_price_list_when_it_answers() -> None:
    class Both(FakeVolumePricing):
        def get_products(self, **kwargs: Any) -> dict[str, Any]:
            fields = {f["Field"] for f in kwargs["Filters"]}
            if "instanceType" in fields:
                return FakePricing("0.0416").get_products(**kwargs)
            return super().get_products(**kwargs)

    clients = FakeClients(Both("0.0800000000"))  # type: ignore[arg-type]
    cost = pricing.estimate(
        clients, "us-east-1", control_plane_type="t3.medium", worker_type="t3.medium",
        workers=1, spot=False, root_volume_gb=100, public_ipv4=True,
    )  # fmt: skip
    assert cost.volume == pricing.VolumePrice("gp3", 0.08, pricing.PRICE_LIST)
    assert cost.usd_per_hour == pytest.approx(2 * 0.0416 + 2 * 100 * 0.08 / 730 + 2 * 0.005)
    assert cost.sources == pricing.PRICE_LIST
