"""The workers' Auto Scaling group and launch template, against the moto server.

``up --until infra`` makes the control plane with RunInstances and the workers through
a launch template and an Auto Scaling group (``sparkube-NAME-workers``), then names the
group's instances ``worker-K``; ``plan`` prices the group at its minimum and maximum;
``down`` leaves neither group nor template. Everything is read back with plain boto3.

What moto (5.2) cannot serve faithfully, and how these tests stand with it:

- moto's EC2 gives an instance launched from a template only the template's AMI, type,
  key, security groups, user data, block devices and instance tags; the market (spot),
  the shutdown behaviour, the metadata options, the instance profile and the volume
  tags it leaves out, which AWS applies. ``tests/fixtures/moto_server.py``
  (``faithful_launch_templates``) makes moto apply them, so the instances here show what
  they would on AWS; the template's own fields are checked as sparkube wrote them too.
- moto launches the group's instances synchronously (in CreateAutoScalingGroup /
  UpdateAutoScalingGroup), runs no health checks (a stopped member stays), and does not
  run scheduled actions (the TTL's scale-to-zero is checked as written, not as run).
- moto replaces a group member terminated with TerminateInstances at once (AWS does
  after its next health check).
- moto does not check the instance profile when the group is created, so the retry
  while a new profile is not visible to EC2 is proved with an injected error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from sparkube.aws import userdata, workergroup
from sparkube.aws.session import CallCounter, observe_calls
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import MotoAws

pytestmark = pytest.mark.integration

CIDR = "203.0.113.7/32"
GROUP = "sparkube-sparkube-workers"
Cli = Callable[..., CliResult]


def _up(cli: Cli, moto_aws: MotoAws, *args: str) -> CliResult:
    return cli("up", "--until", "infra", "--allow-cidr", CIDR, *args, env=moto_aws.env)


def _tags(item: dict[str, Any], key: str = "Tags") -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get(key, [])}


def _group(moto_aws: MotoAws) -> dict[str, Any]:
    asg: Any = moto_aws.client("autoscaling")
    (group,) = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return dict(group)


def _live(moto_aws: MotoAws) -> list[dict[str, Any]]:
    ec2: Any = moto_aws.client("ec2")
    found = ec2.describe_instances(
        Filters=[
            {"Name": "tag:sparkube:cluster", "Values": ["sparkube"]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]},
        ]
    )
    return [i for r in found["Reservations"] for i in r["Instances"]]


def _names(moto_aws: MotoAws) -> dict[str, str]:
    """Node name -> instance id, as sparkube's tags say."""
    return {_tags(i).get("sparkube:node", "?"): i["InstanceId"] for i in _live(moto_aws)}


def test_up_makes_the_template_and_the_group_and_names_its_workers(
    cli: Cli, moto_aws: MotoAws
) -> None:
    counter = CallCounter()
    with observe_calls(counter):
        result = _up(cli, moto_aws, "--workers", "2", "--max-workers", "5", "--spot", "--ttl", "4h")
    assert result.exit_code == 0, result.stderr
    # one RunInstances (the control plane); the workers come from the group
    assert counter.calls["ec2.RunInstances"] == 1
    assert counter.calls["ec2.CreateLaunchTemplate"] == 1
    assert counter.calls["auto-scaling.CreateAutoScalingGroup"] == 1
    assert counter.calls["ec2.CreateTags"] == 2  # one name per new worker

    ec2: Any = moto_aws.client("ec2")
    (template,) = ec2.describe_launch_templates(LaunchTemplateNames=[GROUP])["LaunchTemplates"]
    assert _tags(template)["sparkube:cluster"] == "sparkube"
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == moto_aws.amis["amd64"]
    assert data["InstanceType"] == "t3.medium"
    assert data["KeyName"] == "sparkube-sparkube"
    assert data["IamInstanceProfile"] == {"Name": "sparkube-sparkube-us-east-1"}
    meta = data["MetadataOptions"]
    assert (meta["HttpTokens"], int(meta["HttpPutResponseHopLimit"])) == ("required", 2)
    (disk,) = data["BlockDeviceMappings"]
    assert disk["Ebs"]["Encrypted"] in (True, "true")
    assert disk["Ebs"]["VolumeType"] == "gp3" and int(disk["Ebs"]["VolumeSize"]) == 40
    assert data["CreditSpecification"] == {"CpuCredits": "unlimited"}
    assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
    # the market is the group's: Auto Scaling refuses a spot template in a mixed group
    assert "InstanceMarketOptions" not in data
    specs = {s["ResourceType"]: _tags(s) for s in data["TagSpecifications"]}
    # (moto lists the template's own tags among them too)
    assert {"instance", "volume"} <= set(specs) <= {"instance", "volume", "launch-template"}
    assert specs["instance"]["sparkube:cluster"] == "sparkube"
    assert specs["instance"]["sparkube:role"] == "worker"
    assert specs["instance"]["sparkube:expires-at"]
    assert specs["volume"]["sparkube:role"] == "worker"
    script = userdata.decode(base64.b64decode(data["UserData"]))
    assert "export SPARKUBE_NODE_ROLE=worker\n" in script
    assert "systemctl enable --now sparkube-ttl.timer" in script

    group = _group(moto_aws)
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (2, 2, 5)
    # spot workers: one on-demand worker first (the drivers' pool), every one above it spot
    mixed = group["MixedInstancesPolicy"]
    spec = mixed["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert spec["LaunchTemplateId"] == template["LaunchTemplateId"]
    assert spec["Version"] == str(version["VersionNumber"])
    assert mixed["LaunchTemplate"]["Overrides"] == [{"InstanceType": "t3.medium"}]
    share = mixed["InstancesDistribution"]
    assert int(share["OnDemandBaseCapacity"]) == 1
    assert int(share["OnDemandPercentageAboveBaseCapacity"]) == 0
    assert share["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert group["HealthCheckType"] == "EC2" and group["HealthCheckGracePeriod"] > 0
    assert group["VPCZoneIdentifier"]  # one subnet: the control plane's
    propagated = {t["Key"]: t["PropagateAtLaunch"] for t in group["Tags"]}
    assert propagated["sparkube:cluster"] is True and propagated["sparkube:role"] is True
    asg: Any = moto_aws.client("autoscaling")
    (ttl,) = asg.describe_scheduled_actions(AutoScalingGroupName=GROUP)[
        "ScheduledUpdateGroupActions"
    ]
    assert (ttl["MinSize"], ttl["MaxSize"], ttl["DesiredCapacity"]) == (0, 0, 0)

    names = _names(moto_aws)
    assert sorted(names) == ["control-plane", "worker-1", "worker-2"]
    members = {i["InstanceId"] for i in group["Instances"]}
    assert {names["worker-1"], names["worker-2"]} == members
    markets: list[str] = []
    for inst in _live(moto_aws):
        tags = _tags(inst)
        if tags["sparkube:role"] != "worker":
            assert "InstanceLifecycle" not in inst  # the control plane is never spot
            continue
        assert tags["aws:autoscaling:groupName"] == GROUP
        assert tags["Name"] == f"sparkube-{tags['sparkube:node']}"
        markets.append(inst.get("InstanceLifecycle", "on-demand"))
        assert inst["KeyName"] == "sparkube-sparkube"
        assert inst["SubnetId"] == group["VPCZoneIdentifier"]
        user_data = ec2.describe_instance_attribute(
            InstanceId=inst["InstanceId"], Attribute="userData"
        )["UserData"]["Value"]
        assert userdata.decode(base64.b64decode(user_data)) == script  # exactly the template's
        (mapping,) = inst["BlockDeviceMappings"]
        volume = ec2.describe_volumes(VolumeIds=[mapping["Ebs"]["VolumeId"]])["Volumes"][0]
        assert _tags(volume)["sparkube:cluster"] == "sparkube"

    # one on-demand worker (launched with the other, so either name), one spot
    assert sorted(markets) == ["on-demand", "spot"]

    # status names them too, and prices the spot workers as spot
    status = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
    assert [n["name"] for n in status["nodes"]] == ["control-plane", "worker-1", "worker-2"]
    # and usage sets them against their type's on-demand price (moto has no Price List:
    # the bundled table's t3.medium)
    usage = json.loads(cli("usage", "--since", "all", "-o", "json", env=moto_aws.env).stdout)
    spot = usage["spot"]
    assert spot is not None and spot["worker_hours"] > 0, usage
    assert spot["on_demand_usd"] == pytest.approx(spot["worker_hours"] * 0.0416), spot

    # a second up changes nothing (spot, TTL and sizes all as recorded)
    again = CallCounter()
    with observe_calls(again):
        second = _up(cli, moto_aws)
    assert second.exit_code == 0, second.stderr
    assert again.writes() == {}, again.writes()


def test_resume_raises_the_minimum_names_the_new_workers_and_updates_the_maximum(
    cli: Cli, moto_aws: MotoAws
) -> None:
    assert _up(cli, moto_aws, "--workers", "2").exit_code == 0
    group = _group(moto_aws)
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (2, 2, 2)
    before = _names(moto_aws)

    counter = CallCounter()
    with observe_calls(counter):
        grown = _up(cli, moto_aws, "--min-workers", "4", "--max-workers", "6")
    assert grown.exit_code == 0, grown.stderr
    writes = counter.writes()
    assert "ec2.CreateLaunchTemplate" not in writes and "ec2.RunInstances" not in writes
    assert "auto-scaling.CreateAutoScalingGroup" not in writes
    assert writes["auto-scaling.UpdateAutoScalingGroup"] == 1
    group = _group(moto_aws)
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (4, 4, 6)
    after = _names(moto_aws)
    assert sorted(after) == ["control-plane", "worker-1", "worker-2", "worker-3", "worker-4"]
    assert all(after[n] == i for n, i in before.items())  # the old ones kept their names

    # the maximum alone, down and up again: the group follows, nothing is launched
    for maximum in ("4", "8"):
        counter = CallCounter()
        with observe_calls(counter):
            moved = _up(cli, moto_aws, "--max-workers", maximum)
        assert moved.exit_code == 0, moved.stderr
        # the group, and the settings record on the security group (sparkube:max-workers)
        assert counter.writes() == {
            "auto-scaling.UpdateAutoScalingGroup": 1,
            "ec2.CreateTags": 1,
        }, counter.writes()
        group = _group(moto_aws)
        assert (group["MinSize"], group["MaxSize"]) == (4, int(maximum))
        assert sorted(_names(moto_aws)) == sorted(after)

    # fewer is refused, a maximum under the minimum too: exit 2, nothing changed
    for args, words in (
        (("--workers", "3"), "would remove 1"),
        (("--max-workers", "3"), "less than cluster sparkube's minimum of 4"),
    ):
        refused = _up(cli, moto_aws, *args)
        assert refused.exit_code == 2, refused.stderr
        assert words in refused.stderr, refused.stderr
    assert (_group(moto_aws)["MinSize"], _group(moto_aws)["MaxSize"]) == (4, 8)

    # a worker gone from the group (moto replaces it at once): the replacement was not
    # launched by an up, so it joins by itself under its instance id (the launch
    # template's user data) and the next up leaves it unnamed
    ec2: Any = moto_aws.client("ec2")
    ec2.terminate_instances(InstanceIds=[after["worker-2"]])
    assert "?" in _names(moto_aws)  # the replacement has no name
    healed = _up(cli, moto_aws)
    assert healed.exit_code == 0, healed.stderr
    names = _names(moto_aws)
    assert "worker-2" not in names and "?" in names, names
    assert len(names) == len(after)


def test_a_settings_change_on_resume_makes_a_new_template_version(
    cli: Cli, moto_aws: MotoAws
) -> None:
    """The template's new default version goes to the group; running workers stay."""
    assert _up(cli, moto_aws, "--workers", "1").exit_code == 0
    first = _group(moto_aws)["LaunchTemplate"]["Version"]
    ids = set(_names(moto_aws).values())
    # the operator's CIDR is not in the template; the user tags are, and may be added
    (moto_aws.env.cwd / "sparkube.yaml").write_text("tags:\n  team: data\n")
    changed = _up(cli, moto_aws, "--workers", "2")
    assert changed.exit_code == 2, changed.stdout  # tags differ: refused as before
    assert "tags" in changed.stderr
    (moto_aws.env.cwd / "sparkube.yaml").unlink()
    # what the template holds comes from the spec; a new AMI is a change of spec too, so
    # the version is exercised through the module: a different content, a new default
    ec2: Any = moto_aws.client("ec2")
    data = ec2.describe_launch_template_versions(LaunchTemplateName=GROUP, Versions=["$Default"])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    data = {**data, "InstanceType": "t3.large"}
    template_id, version = workergroup.ensure_template(ec2, "sparkube", data, {})
    assert version != first
    again = workergroup.ensure_template(ec2, "sparkube", data, {})
    assert again == (template_id, version)  # the same content: no new version
    resumed = _up(cli, moto_aws)
    assert resumed.exit_code == 0, resumed.stderr
    # up puts its own content back as a new default and points the group at it
    group = _group(moto_aws)
    assert group["LaunchTemplate"]["Version"] not in (first, version)
    assert set(_names(moto_aws).values()) == ids


def test_plan_prices_the_group_at_its_minimum_and_maximum(cli: Cli, moto_aws: MotoAws) -> None:
    env = moto_aws.env
    out = cli(
        "plan", "--workers", "1", "--max-workers", "4", "--allow-cidr", CIDR, "-o", "json", env=env
    )
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    workers = next(i for i in doc["instances"] if i["role"] == "worker")
    assert (workers["count"], workers["max_count"]) == (1, 4)
    low, high = doc["cost"], doc["cost_at_max"]
    per_node = 0.0416 + 40 * 0.08 / 730 + 0.005  # t3.medium, 40 GiB gp3, one IPv4
    assert low["usd_per_hour"] == pytest.approx(2 * per_node, abs=1e-4)
    assert high["usd_per_hour"] == pytest.approx(5 * per_node, abs=1e-4)
    assert high["volumes"]["count"] == 5 and high["addresses"]["count"] == 5
    assert not low["exact"] and not high["exact"]  # unlimited t3 credits: at least
    text = cli("plan", "--workers", "1", "--max-workers", "4", "--allow-cidr", CIDR, env=env)
    assert text.exit_code == 0, text.stderr
    assert "At the maximum of 4 workers: at least $" in text.stdout
    assert "worker group" in text.stdout and "sparkube-sparkube-workers" in text.stdout
    assert "up to at least $" in text.stderr  # the header, as 'up' shows it
    offline = cli(
        "plan", "--offline", "--workers", "1", "--max-workers", "4", "-o", "json", env=env
    )
    assert offline.exit_code == 0, offline.stderr
    assert json.loads(offline.stdout)["cost_at_max"]["usd_per_hour"] == pytest.approx(
        high["usd_per_hour"], abs=1e-4
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ("--workers", "3", "--min-workers", "2"),
            "--workers 3 and --min-workers 2 differ; they are one setting",
        ),
        (
            ("--workers", "3", "--max-workers", "2"),
            "--max-workers 2 is less than the minimum (--workers 3)",
        ),
        (("--min-workers", "3", "--max-workers", "1"), "than the minimum (--min-workers 3)"),
        (("--max-workers", "201"), "more than 200"),
        (("--min-workers", "-1"), "less than 0"),
    ],
)
def test_bad_group_sizes_exit_2_with_nothing_created(
    cli: Cli, moto_aws: MotoAws, args: tuple[str, ...], words: str
) -> None:
    counter = CallCounter()
    with observe_calls(counter):
        result = _up(cli, moto_aws, *args)
        planned = cli("plan", "--allow-cidr", CIDR, *args, env=moto_aws.env)
    assert result.exit_code == 2 and planned.exit_code == 2, result.stderr
    assert words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert counter.writes() == {}


def test_the_file_and_variables_set_the_group_size_too(cli: Cli, moto_aws: MotoAws) -> None:
    (moto_aws.env.cwd / "sparkube.yaml").write_text("min_workers: 1\nmax_workers: 3\n")
    planned = cli("plan", "--allow-cidr", CIDR, "-o", "json", env=moto_aws.env)
    assert planned.exit_code == 0, planned.stderr
    workers = next(i for i in json.loads(planned.stdout)["instances"] if i["role"] == "worker")
    assert (workers["count"], workers["max_count"]) == (1, 3)
    (moto_aws.env.cwd / "sparkube.yaml").write_text("workers: 2\nmin_workers: 1\n")
    clash = cli("plan", "--allow-cidr", CIDR, env=moto_aws.env)
    assert clash.exit_code == 2
    assert "sparkube.yaml line 1: workers 2 and sparkube.yaml line 2: min_workers 1" in (
        clash.stderr
    )


def test_down_deletes_the_group_and_the_template_and_nothing_remains(
    cli: Cli, moto_aws: MotoAws
) -> None:
    assert _up(cli, moto_aws, "--workers", "2", "--max-workers", "3").exit_code == 0
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert "nothing tagged with it remains" in down.stdout
    asg: Any = moto_aws.client("autoscaling")
    ec2: Any = moto_aws.client("ec2")
    assert (
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"] == []
    )
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert _live(moto_aws) == []
    assert cli("down", "--yes", env=moto_aws.env).exit_code == 0


def test_down_finishes_a_down_interrupted_after_the_group_went(cli: Cli, moto_aws: MotoAws) -> None:
    """A group deleted (its instances with it) but the template left: the next down
    sees the template, deletes it, and reports nothing remaining."""
    assert _up(cli, moto_aws, "--workers", "1").exit_code == 0
    asg: Any = moto_aws.client("autoscaling")
    asg.delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True)
    status = cli("status", env=moto_aws.env)
    assert status.exit_code == 0, status.stderr
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert "nothing tagged with it remains" in down.stdout
    assert moto_aws.client("ec2").describe_launch_templates()["LaunchTemplates"] == []  # type: ignore[attr-defined]


def test_the_controllers_scaling_calls_grow_the_group_and_remove_the_exact_idle_worker(
    cli: Cli, moto_aws: MotoAws
) -> None:
    """sparkube/controller/group.py against moto's Auto Scaling, on the group ``up``
    made: a plan's new desired count launches workers; a plan's idle worker is the one
    terminated, the desired count lowered with it so none replaces it; a plan below the
    minimum or above the maximum is held to them. (moto launches and removes members
    synchronously; AWS takes a minute or two.)"""
    from sparkube.controller import group as controller_group
    from sparkube.controller.scaling import ScalePlan

    assert _up(cli, moto_aws, "--workers", "1", "--max-workers", "3").exit_code == 0
    asg: Any = moto_aws.client("autoscaling")
    group = controller_group.read_group(asg, GROUP)
    assert group is not None
    assert (group.minimum, group.maximum, group.desired) == (1, 3, 1)
    assert [i.lifecycle for i in group.instances] == ["InService"]
    assert controller_group.read_group(asg, "sparkube-none-workers") is None

    done = controller_group.carry_out(asg, group, ScalePlan(desired=5))  # held to 3
    assert done == [f"group {GROUP}: desired 1 -> 3"]
    grown = controller_group.read_group(asg, GROUP)
    assert grown is not None and grown.desired == 3 and len(grown.instances) == 3
    first = group.instances[0].instance_id

    leaving = next(i.instance_id for i in grown.instances if i.instance_id != first)
    done = controller_group.carry_out(asg, grown, ScalePlan(terminate=[(leaving, "worker-x")]))
    assert done == [f"group {GROUP}: worker worker-x ({leaving}) terminated"]
    after = controller_group.read_group(asg, GROUP)
    assert after is not None and after.desired == 2
    kept = {i.instance_id for i in after.instances if i.lifecycle == "InService"}
    assert leaving not in kept and first in kept and len(kept) == 2  # no replacement
    ec2: Any = moto_aws.client("ec2")
    state = ec2.describe_instances(InstanceIds=[leaving])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")
    # a plan below the minimum is held to it
    controller_group.carry_out(asg, after, ScalePlan(desired=0))
    held = controller_group.read_group(asg, GROUP)
    assert held is not None and held.desired == 1
