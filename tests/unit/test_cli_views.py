"""``--output json`` of plan, status and ls comes from typed views serialised by one
function: the keys, their order and the values are the CLI's JSON contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sparkube.aws.discovery import ClusterSummary
from sparkube.aws.pricing import BUNDLED, IPV4_SOURCE, offline_estimate
from sparkube.aws.provider import Plan, PlannedInstances, PlannedResource
from sparkube.cli.views import ClusterRow, OfflinePlanView, PlanView, StatusView, to_json
from sparkube.cost.collect import ClusterCost
from sparkube.cost.ledger import Instance, Interval, Ledger, PriceFact
from sparkube.model import ClusterInfo, Node
from sparkube.spec import ClusterSpec

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GIB = 2**30


def _costs(*running: tuple[str, str, str, float], at: datetime = NOW) -> ClusterCost:
    """The cost figures of instances (id, role, type, hours running up to ``at``), priced
    by the one model: t3.medium on-demand at $0.0416/h, m7i.large unknown."""
    instances = tuple(
        Instance(iid, iid, role, itype, "on-demand", "us-east-1a", 2, 4 * GIB,
                 (Interval(at - timedelta(hours=hours), None),) if hours else ())
        for iid, role, itype, hours in running
    )  # fmt: skip
    prices = (
        PriceFact("instance", 0.0416, "test", instance_type="t3.medium"),
        PriceFact("instance", None, "test", instance_type="m7i.large", reason="not in the table"),
    )
    return ClusterCost.of(Ledger("demo", "us-east-1", at, instances, prices))


def _nodes() -> tuple[Node, ...]:
    return (
        Node(
            "control-plane", "control-plane", "i-1", "t3.medium", "running", "203.0.113.1",
            "10.0.0.1", launch_time=NOW - timedelta(hours=2), availability_zone="us-east-1a",
        ),
        Node("worker-1", "worker", "i-2", "t3.medium", "stopped", spot=True),
    )  # fmt: skip


def test_status_json_keys_values_and_costs() -> None:
    info = ClusterInfo(
        "demo", "us-east-1", _nodes(), security_group_id="sg-1", key_name="sparkube-demo",
        bucket="b", instance_profile="p", expires_at=NOW + timedelta(minutes=65),
    )  # fmt: skip
    costs = _costs(("i-1", "control-plane", "t3.medium", 2), ("i-2", "worker", "t3.medium", 0))
    view = StatusView.of(
        info, costs, NOW, exists=True, phases=(["infra"], ["nodes"]), kubeconfig=None
    )
    doc = json.loads(to_json(view))
    assert list(doc) == [
        "cluster", "region", "exists", "security_group_id", "key_name", "bucket",
        "instance_profile", "expires_at", "time_left", "usd_per_hour", "usd_so_far",
        "cost_exact", "cost_unknown", "phases_done", "phases_pending", "kubeconfig", "nodes",
    ]  # fmt: skip
    assert doc["expires_at"] == "2026-12-01T13:05:00+00:00" and doc["time_left"] == "1h05m"
    assert doc["usd_per_hour"] == 0.0416 and doc["usd_so_far"] == 0.0832
    assert doc["cost_exact"] is True and doc["cost_unknown"] == []
    running, stopped = doc["nodes"]
    assert running == {
        "name": "control-plane",
        "role": "control-plane",
        "instance_id": "i-1",
        "instance_type": "t3.medium",
        "state": "running",
        "spot": False,
        "public_ip": "203.0.113.1",
        "private_ip": "10.0.0.1",
        "availability_zone": "us-east-1a",
        "launch_time": "2026-12-01T10:00:00+00:00",
        "uptime_seconds": 7200,
        "usd_per_hour": 0.0416,
        "usd_so_far": 0.0832,
    }
    assert (stopped["uptime_seconds"], stopped["usd_per_hour"], stopped["usd_so_far"]) == (0, 0, 0)
    assert stopped["launch_time"] is None and stopped["spot"] is True


def test_ls_rows_are_a_json_list_and_an_unknown_price_makes_a_lower_bound() -> None:
    nodes = (*_nodes(), Node("worker-2", "worker", "i-3", "m7i.large", "running"))
    demo = _costs(("i-1", "control-plane", "t3.medium", 2), ("i-3", "worker", "m7i.large", 1))
    rows = [
        ClusterRow.of(ClusterSummary("demo", "us-east-1", nodes, None), demo, NOW),
        ClusterRow.of(ClusterSummary("empty", "eu-west-1", (), NOW - timedelta(1)), _costs(), NOW),
    ]
    assert json.loads(to_json(rows)) == [
        {
            "cluster": "demo", "region": "us-east-1", "nodes": 3, "running": 2,
            "usd_per_hour": 0.0416, "usd_so_far": 0.0832, "cost_exact": False,
            "expires_at": None, "time_left": "-",
        },
        {
            "cluster": "empty", "region": "eu-west-1", "nodes": 0, "running": 0,
            "usd_per_hour": 0, "usd_so_far": 0, "cost_exact": True,
            "expires_at": "2026-11-30T12:00:00+00:00", "time_left": "expired",
        },
    ]  # fmt: skip


def _instances(role: str, count: int, existing: int) -> PlannedInstances:
    return PlannedInstances(
        role,
        count,
        existing,
        "t3.medium",
        2,
        4096,
        "amd64",
        "ami-1",
        40,
        False,
        0.0416,
        "standard",
    )  # type: ignore[arg-type]


def test_plan_json() -> None:
    spec = ClusterSpec(name="demo", workers=2, max_workers=5)
    cost = offline_estimate(
        "us-east-1", control_plane_type="t3.medium", worker_type="t3.medium", workers=2,
        spot=False, root_volume_gb=40, public_ipv4=True,
    )  # fmt: skip
    plan = Plan(
        cluster="demo", region="us-east-1", account="123", vpc_id="vpc-1", subnet_id=None,
        allow_cidrs=("203.0.113.7/32",),
        resources=(PlannedResource("key pair", "sparkube-demo", False, "ed25519"),),
        instances=(_instances("control-plane", 1, 1), _instances("worker", 2, 0)),
        cost=cost, ttl_minutes=90, existing=ClusterInfo("demo", "us-east-1"), spec=spec,
    )  # fmt: skip
    doc = json.loads(to_json(PlanView.of(plan)))
    assert list(doc) == [
        "cluster", "region", "vpc_id", "allow_cidrs", "resources", "instances", "cost",
        "cost_at_max", "ttl_minutes",
    ]  # fmt: skip
    assert doc["allow_cidrs"] == ["203.0.113.7/32"] and doc["ttl_minutes"] == 90
    assert doc["resources"] == [
        {"kind": "key pair", "name": "sparkube-demo", "exists": False, "detail": "ed25519"}
    ]
    assert list(doc["instances"][1]) == [
        "role", "count", "existing", "instance_type", "vcpus", "memory_mib", "architecture",
        "ami", "root_volume_gb", "spot", "usd_per_hour_each", "cpu_credits", "max_count",
        "on_demand_count", "on_demand_usd_per_hour_each",
    ]  # fmt: skip
    assert doc["instances"][1]["cpu_credits"] == "standard"
    # instances + 3 root volumes of 40 GiB gp3 at $0.08/GB-month + 3 public IPv4
    volumes = 3 * 40 * 0.08 / 730
    assert doc["cost"] == {
        "usd_per_hour": round(3 * 0.0416 + volumes + 3 * 0.005, 6),
        "market": "on-demand",
        "source": BUNDLED,
        "exact": True,
        "unknown": [],
        "instances_usd_per_hour": round(3 * 0.0416, 6),
        "volumes_usd_per_hour": round(volumes, 6),
        "addresses_usd_per_hour": 0.015,
        "volumes": {
            "count": 3, "gb_each": 40, "volume_type": "gp3", "usd_per_gb_month": 0.08,
            "source": BUNDLED,
        },
        "addresses": {"count": 3, "usd_per_hour_each": 0.005, "source": IPV4_SOURCE},
    }  # fmt: skip
    # the same at the worker group's maximum: 6 nodes
    top = doc["cost_at_max"]
    assert top["usd_per_hour"] == round(6 * 0.0416 + 2 * volumes + 6 * 0.005, 6)
    assert (top["volumes"]["count"], top["addresses"]["count"]) == (6, 6)


def test_offline_plan_json() -> None:
    spec = ClusterSpec(
        name="demo", workers=1, spot=True, ttl=timedelta(hours=2), cpu_credits="unlimited"
    )
    cost = offline_estimate(
        "eu-west-1", control_plane_type="t3.medium", worker_type="m7i.large", workers=1, spot=True,
        cpu_credits="unlimited",
    )  # fmt: skip
    view = OfflinePlanView.of(spec, "eu-west-1", cost, reason="--offline was given", source="s")
    doc = json.loads(to_json(view))
    assert doc.pop("cost_at_max") == doc["cost"]  # the maximum is the minimum here
    assert doc == {
        "offline": True,
        "reason": "--offline was given",
        "cluster": "demo",
        "region": "eu-west-1",
        "instances": [
            {
                "role": "control-plane", "count": 1, "instance_type": "t3.medium",
                "spot": False, "usd_per_hour_each": cost.control_plane.usd_per_hour,
                "cpu_credits": "unlimited", "max_count": 1,
            },
            {
                "role": "worker", "count": 1, "instance_type": "m7i.large", "spot": True,
                "usd_per_hour_each": cost.worker.usd_per_hour, "cpu_credits": None,
                "max_count": 1,
            },
        ],
        "cost": {
            "usd_per_hour": round(cost.at_least_usd_per_hour, 6),
            # one worker: the group's on-demand one (drivers run there), none on spot
            "market": "1 on-demand worker", "source": "s",
            # the one burstable node in unlimited mode: the price is a lower bound
            "exact": False, "unknown": cost.unknown,
            "instances_usd_per_hour": round(cost.at_least_usd_per_hour, 6),
            "volumes_usd_per_hour": 0.0, "addresses_usd_per_hour": 0.0,
            "volumes": {"count": 0, "gb_each": 0, "volume_type": None,
                        "usd_per_gb_month": None, "source": None},
            "addresses": {"count": 0, "usd_per_hour_each": 0.005, "source": IPV4_SOURCE},
        },
        "ttl_minutes": 120,
    }  # fmt: skip
