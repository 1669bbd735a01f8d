"""Names, rules, launch parameters, node naming and spec checks (no AWS)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from sparkube.aws import iam, instances, network, storage, workergroup
from sparkube.errors import CloudError, ConfigError
from sparkube.model import ClusterInfo, Node

LONGEST = "a" * 32
REGIONS = ("us-east-1", "ap-southeast-2", "eu-central-1", "us-gov-west-1")


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("name", ["sparkube", LONGEST, "a", "data-team-2"])
def test_bucket_names_follow_s3_rules(name: str, region: str) -> None:
    bucket = storage.bucket_name(name, region, "123456789012")
    assert 3 <= len(bucket) <= 63
    assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", bucket)
    assert ".." not in bucket and not bucket.endswith(("-s3alias", "--ol-s3", "--x-s3"))
    assert bucket != storage.bucket_name(name, region, "210987654321")
    assert bucket == storage.bucket_name(name, region, "123456789012")


def test_iam_names_fit() -> None:
    assert len(iam.role_name(LONGEST, "ap-southeast-2")) <= 64


def test_bucket_policy_reaches_only_the_bucket() -> None:
    policy = iam.bucket_policy("b")
    resources = {s["Resource"] for s in policy["Statement"]}
    assert resources == {"arn:aws:s3:::b", "arn:aws:s3:::b/*"}


def test_operator_cidrs() -> None:
    env = {"SPARKUBE_DETECT_IP": ""}
    assert network.operator_cidrs(["10.0.0.0/8"], None, env) == ("10.0.0.0/8",)
    assert network.operator_cidrs([], lambda: "198.51.100.4\n", env) == ("198.51.100.4/32",)
    assert network.operator_cidrs([], lambda: "2001:db8::1", env) == ("2001:db8::1/128",)
    with pytest.raises(ConfigError, match="pass --allow-cidr"):
        network.operator_cidrs([], None, env)
    with pytest.raises(ConfigError, match="pass --allow-cidr"):
        network.operator_cidrs([], lambda: "198.51.100.4", {"SPARKUBE_DETECT_IP": "off"})

    def broken() -> str:
        raise OSError("network unreachable")

    with pytest.raises(ConfigError, match="pass --allow-cidr"):
        network.operator_cidrs([], broken, env)
    with pytest.raises(ConfigError, match="whole internet"):
        network.operator_cidrs(["0.0.0.0/0"], None, env)


def test_rules_only_self_and_operator_ports() -> None:
    rules = network.wanted_rules("sg-1", ["203.0.113.7/32", "2001:db8::/64"])
    perms = [r.to_permission() for r in rules]
    assert perms[0] == {
        "IpProtocol": "-1",
        "UserIdGroupPairs": [{"GroupId": "sg-1", "Description": "sparkube: node to node"}],
    }
    ports = sorted(
        (
            p["FromPort"],
            next(iter(p.get("IpRanges") or p["Ipv6Ranges"])).get("CidrIp")
            or p["Ipv6Ranges"][0]["CidrIpv6"],
        )
        for p in perms[1:]
    )
    assert ports == [
        (22, "2001:db8::/64"),
        (22, "203.0.113.7/32"),
        (6443, "2001:db8::/64"),
        (6443, "203.0.113.7/32"),
    ]


def test_existing_rules_are_not_added_again() -> None:
    group = {
        "IpPermissions": [
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-1"}]},
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "203.0.113.7/32"}],
            },
        ]
    }
    have = network.existing_rules(group)
    missing = [r for r in network.wanted_rules("sg-1", ["203.0.113.7/32"]) if r.key() not in have]
    assert [(r.protocol, r.from_port) for r in missing] == [("tcp", 6443)]


def _request(**overrides: object) -> instances.LaunchRequest:
    values: dict[str, object] = dict(
        cluster="c",
        role="worker",
        count=5,
        first_worker=3,
        instance_type="t3.medium",
        ami=instances.AmiInfo("ami-1", "/dev/sda1", "x86_64"),
        key_name="sparkube-c",
        group_id="sg-1",
        instance_profile="p",
        subnet_id=None,
        user_data=b"#!/bin/bash\n",
        root_volume_gb=40,
        spot=False,
        terminate_on_shutdown=False,
        tags={"sparkube:cluster": "c"},
    )
    values.update(overrides)
    return instances.LaunchRequest(**values)  # type: ignore[arg-type]


def test_launch_parameters() -> None:
    params = instances.launch_parameters(_request())
    assert params["MinCount"] == params["MaxCount"] == 5
    assert params["MetadataOptions"] == {
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 2,
        "HttpEndpoint": "enabled",
        "InstanceMetadataTags": "enabled",
    }
    (bdm,) = params["BlockDeviceMappings"]
    assert bdm == {
        "DeviceName": "/dev/sda1",
        "Ebs": {
            "VolumeType": "gp3",
            "VolumeSize": 40,
            "Encrypted": True,
            "DeleteOnTermination": True,
        },
    }
    assert len(params["ClientToken"]) <= 64
    tags = {t["Key"]: t["Value"] for t in params["TagSpecifications"][0]["Tags"]}
    assert tags["sparkube:first-worker"] == "3" and tags["sparkube:role"] == "worker"
    assert "InstanceMarketOptions" not in params
    assert "InstanceInitiatedShutdownBehavior" not in params
    spot = instances.launch_parameters(_request(spot=True, terminate_on_shutdown=True))
    assert spot["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "MaxPrice" not in spot["InstanceMarketOptions"]["SpotOptions"]
    assert spot["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert "spot-instances-request" in {s["ResourceType"] for s in spot["TagSpecifications"]}


def test_burstable_types_launch_in_the_credit_mode_asked_others_get_none() -> None:
    for itype in ("t3.medium", "t3a.large", "t4g.small", "t2.medium"):
        params = instances.launch_parameters(_request(instance_type=itype, cpu_credits="standard"))
        assert params["CreditSpecification"] == {"CpuCredits": "standard"}, itype
    unlimited = instances.launch_parameters(_request(cpu_credits="unlimited"))
    assert unlimited["CreditSpecification"] == {"CpuCredits": "unlimited"}
    for itype in ("m7i.large", "c6i.xlarge", "m7g.large", "r6i.large"):
        params = instances.launch_parameters(_request(instance_type=itype, cpu_credits="standard"))
        assert "CreditSpecification" not in params, itype
    assert "CreditSpecification" not in instances.launch_parameters(_request())


def test_client_tokens_differ_per_batch_and_cluster_incarnation() -> None:
    a = instances.client_token("c", "sg-1", "worker", 1, 3)
    assert a == instances.client_token("c", "sg-1", "worker", 1, 3)
    assert a != instances.client_token("c", "sg-2", "worker", 1, 3)
    assert a != instances.client_token("c", "sg-1", "worker", 4, 3)


def test_node_names_from_tags_and_launch_index() -> None:
    assert instances.node_name({"sparkube:role": "control-plane"}, 0) == (
        "control-plane",
        "control-plane",
    )
    tags = {"sparkube:role": "worker", "sparkube:first-worker": "4"}
    assert instances.node_name(tags, 2) == ("worker-6", "worker")
    assert instances.node_name({**tags, "sparkube:node": "worker-9"}, 2)[0] == "worker-9"


def test_kubeadm_minimum() -> None:
    instances.check_kubeadm_minimum(instances.TypeInfo("t3.small", 2, 2048, ("x86_64",)), "--x")
    with pytest.raises(ConfigError, match="2 vCPUs and 2 GiB"):
        instances.check_kubeadm_minimum(instances.TypeInfo("t3.micro", 2, 1024, ()), "--x")
    assert instances.TypeInfo("t4g.medium", 2, 4096, ("arm64",)).arch == "arm64"
    assert instances.TypeInfo("t3.medium", 2, 4096, ("i386", "x86_64")).arch == "amd64"


def _cluster(*nodes: Node) -> ClusterInfo:
    return ClusterInfo("c", "us-east-1", nodes=nodes, vpc_id="vpc-1")


def _node(name: str) -> Node:
    return Node(name, "control-plane" if name == "control-plane" else "worker")


def test_group_workers_get_the_smallest_free_names_oldest_first() -> None:
    from datetime import UTC, datetime

    named: list[tuple[str, dict[str, str]]] = []

    class Ec2:
        def create_tags(self, *, Resources: list[str], Tags: list[dict[str, str]]) -> None:
            named.append((Resources[0], {t["Key"]: t["Value"] for t in Tags}))

    def unnamed(iid: str, minute: int) -> Node:
        tags = {"sparkube:role": "worker", "aws:autoscaling:groupName": "g"}
        launched = datetime(2026, 12, 7, 1, minute, tzinfo=UTC)
        return Node(iid, "worker", instance_id=iid, state="running", launch_time=launched,
                    tags=tags)  # fmt: skip

    nodes = [
        _node("control-plane"),
        _node("worker-1"),
        _node("worker-3"),
        unnamed("i-late", 9),
        unnamed("i-early", 1),
        unnamed("i-grown", 5),  # launched while no up ran (the controller grew the group)
    ]
    mine = {"i-late", "i-early"}
    assert workergroup.name_new_workers(Ec2(), "c", nodes, launched=mine) == [
        "worker-2",
        "worker-4",
    ]
    assert named == [
        ("i-early", {"sparkube:node": "worker-2", "Name": "c-worker-2"}),
        ("i-late", {"sparkube:node": "worker-4", "Name": "c-worker-4"}),
    ]
    # until named, such a worker is known by its instance id (not as a worker-K)
    item = {"InstanceId": "i-late", "Tags": [{"Key": k, "Value": v} for k, v in
                                             nodes[3].tags.items()]}  # fmt: skip
    assert instances.to_node(item).name == "i-late"
    assert workergroup.name_new_workers(Ec2(), "c", nodes[:3], launched=mine) == []
    # one this up did not launch keeps its instance id: it joined by itself under it
    assert workergroup.name_new_workers(Ec2(), "c", nodes[5:], launched=mine) == []


def test_the_launch_template_holds_what_run_instances_would_get() -> None:
    import base64

    req = _request(spot=True, terminate_on_shutdown=True, cpu_credits="unlimited")
    data = instances.template_data(req)
    params = instances.launch_parameters(req)
    same = ("MinCount", "MaxCount", "ClientToken", "TagSpecifications", "UserData", "SubnetId")
    # but the market: the group's mixed policy says which workers are spot
    assert "InstanceMarketOptions" not in data
    same += ("InstanceMarketOptions",)
    assert {k: v for k, v in data.items() if k not in same} == {
        k: v for k, v in params.items() if k not in same
    }
    assert base64.b64decode(data["UserData"]) == params["UserData"]
    specs = {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]}
             for s in data["TagSpecifications"]}  # fmt: skip
    assert set(specs) == {"instance", "volume"}
    assert specs["instance"]["sparkube:role"] == "worker"
    assert "sparkube:first-worker" not in specs["instance"]  # the group names each one
    assert workergroup.template_hash(data) == workergroup.template_hash(dict(data))
    assert workergroup.template_hash(data) != workergroup.template_hash({**data, "KeyName": "x"})


def test_a_batch_launched_before_and_terminated_since_is_launched_again() -> None:
    from botocore.exceptions import ClientError

    tokens: list[str] = []

    class Ec2:
        def run_instances(self, **params: object) -> dict[str, object]:
            tokens.append(str(params["ClientToken"]))
            if len(tokens) <= 2:
                error = {"Error": {"Code": "IdempotentInstanceTerminated", "Message": "gone"}}
                raise ClientError(error, "RunInstances")  # type: ignore[arg-type]
            return {"Instances": [{"InstanceId": "i-new"}]}

    assert instances.launch(Ec2(), _request(), sleep=lambda _: None) == ["i-new"]
    first = instances.launch_parameters(_request())["ClientToken"]
    assert tokens == [first, f"{first}-1", f"{first}-2"]
    assert all(len(t) <= 64 for t in tokens)


def _group_answer(in_service: int, *, above: int = 0) -> dict[str, Any]:
    return {"AutoScalingGroups": [{
        "AutoScalingGroupName": "sparkube-c-workers", "MinSize": 2, "MaxSize": 3,
        "DesiredCapacity": 2, "DefaultCooldown": 300, "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2", "CreatedTime": datetime(2026, 12, 7, tzinfo=UTC),
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "Version": "1"},
                "Overrides": [{"InstanceType": "t3.large"}],
            },
            "InstancesDistribution": {"OnDemandBaseCapacity": 1,
                                      "OnDemandPercentageAboveBaseCapacity": above},
        },
        "Instances": [
            {"InstanceId": f"i-{n}", "AvailabilityZone": "us-east-1a",
             "LifecycleState": "InService", "HealthStatus": "Healthy",
             "ProtectedFromScaleIn": False}
            for n in range(in_service)
        ],
    }]}  # fmt: skip


NO_SPOT = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot "
    "capacity available that matches your request. Launching EC2 instance failed."
)


def _activities(message: str) -> dict[str, Any]:
    return {"Activities": [{
        "ActivityId": "a-1", "AutoScalingGroupName": "sparkube-c-workers",
        "Cause": "capacity", "StartTime": datetime(2026, 12, 7, tzinfo=UTC),
        "StatusCode": "Failed", "StatusMessage": message,
    }]}  # fmt: skip


def test_a_spot_group_without_spot_capacity_falls_back_to_on_demand_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """up waits a minute; the group's latest launch failed for want of spot capacity:
    it lets the group launch on-demand above its base (said through on_fallback), then
    waits on until the workers are in service. (botocore's Stubber: AWS's answers.)"""
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setattr(workergroup, "WAIT_DELAY_S", 0)
    monkeypatch.setattr(workergroup, "ROUND_ATTEMPTS", 2)
    client = boto3.client("autoscaling", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
    said: list[str] = []
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("describe_auto_scaling_groups", _group_answer(1))
        stub.add_response("describe_scaling_activities", _activities(NO_SPOT))
        stub.add_response("describe_auto_scaling_groups", _group_answer(1))
        policy = _group_answer(1)["AutoScalingGroups"][0]["MixedInstancesPolicy"]
        stub.add_response("update_auto_scaling_group", {}, {
            "AutoScalingGroupName": "sparkube-c-workers",
            "MixedInstancesPolicy": {
                "LaunchTemplate": policy["LaunchTemplate"],
                "InstancesDistribution": {"OnDemandBaseCapacity": 1,
                                          "OnDemandPercentageAboveBaseCapacity": 100},
            },
        })  # fmt: skip
        stub.add_response("describe_auto_scaling_groups", _group_answer(2, above=100))
        stub.add_response("describe_auto_scaling_groups", _group_answer(2, above=100))
        group = workergroup.wait_in_service(client, "c", on_fallback=said.append)
        stub.assert_no_pending_responses()
    assert said == [NO_SPOT]
    assert (group.on_demand_base, group.on_demand_above) == (1, 100)
    # the next up asks for spot again: the group's share differs from what it should be
    assert group.on_demand_above != 0


def test_a_group_short_of_something_else_does_not_fall_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setattr(workergroup, "WAIT_DELAY_S", 0)
    monkeypatch.setattr(workergroup, "ROUND_ATTEMPTS", 1)
    monkeypatch.setattr(workergroup, "WAIT_ATTEMPTS", 2)
    client = boto3.client("autoscaling", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
    quota = "You have requested more vCPU capacity than your current vCPU limit of 8 allows"
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("describe_auto_scaling_groups", _group_answer(1))
            stub.add_response("describe_scaling_activities", _activities(quota))
        with pytest.raises(CloudError, match="did not reach its size") as caught:
            workergroup.wait_in_service(client, "c", on_fallback=lambda _: None)
        stub.assert_no_pending_responses()
    assert "vCPU limit" in str(caught.value)
