"""`up --until infra`, `down`, `ls`, `status` against a moto server over HTTP.

Every property the issue lists is checked by reading AWS back with plain boto3. No test
connects to an address moto returns; `--allow-cidr` is always explicit.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from sparkube.aws import userdata
from sparkube.aws.session import CallCounter, observe_calls
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import MotoAws

pytestmark = pytest.mark.integration

CIDR = "203.0.113.7/32"
Cli = Callable[..., CliResult]


def _instances(ec2: Any, cluster: str = "sparkube") -> list[dict[str, Any]]:
    pages = ec2.describe_instances(
        Filters=[
            {"Name": "tag:sparkube:cluster", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def _tags(item: dict[str, Any], key: str = "Tags") -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get(key, [])}


def _up(cli: Cli, moto_aws: MotoAws, *args: str) -> CliResult:
    return cli("up", "--until", "infra", "--allow-cidr", CIDR, *args, env=moto_aws.env)


def test_up_creates_every_resource_as_specified_then_down_removes_all(
    cli: Cli, moto_aws: MotoAws
) -> None:
    (moto_aws.env.cwd / "sparkube.yaml").write_text("tags:\n  team: data\n")
    counter = CallCounter()
    with observe_calls(counter):
        result = _up(
            cli,
            moto_aws,
            "--workers",
            "3",
            "--ttl",
            "4h",
            "--root-volume-gb",
            "30",
            "--allow-cidr",
            "2001:db8::/64",
        )
    assert result.exit_code == 0, result.stderr
    assert "✓ infra" in result.stderr
    # One RunInstances (the control plane); the workers come from their Auto Scaling
    # group (tests/integration/test_worker_group.py), each named with one CreateTags.
    assert counter.calls["ec2.RunInstances"] == 1
    assert counter.calls["auto-scaling.CreateAutoScalingGroup"] == 1
    assert counter.writes().get("ec2.CreateTags", 0) == 3

    ec2, iam, s3 = (moto_aws.client(s) for s in ("ec2", "iam", "s3"))
    home = moto_aws.env.cluster_dir("sparkube")

    # Key pair: ed25519, imported from a local key that is 0600 in SPARKUBE_HOME.
    pairs = ec2.describe_key_pairs(
        Filters=[{"Name": "tag:sparkube:cluster", "Values": ["sparkube"]}]
    )
    (pair,) = pairs["KeyPairs"]
    assert pair["KeyName"] == "sparkube-sparkube"
    assert pair["KeyType"] == "ed25519"
    assert _tags(pair)["team"] == "data"
    key = home / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert b"OPENSSH PRIVATE KEY" in key.read_bytes()

    # Security group: itself for everything; 22 and 6443 from the operator CIDRs only.
    (group,) = ec2.describe_security_groups(
        Filters=[{"Name": "tag:sparkube:cluster", "Values": ["sparkube"]}]
    )["SecurityGroups"]
    gid = group["GroupId"]
    seen = set()
    for perm in group["IpPermissions"]:
        for r in perm.get("IpRanges", []):
            assert r["CidrIp"] != "0.0.0.0/0"
            seen.add((perm["IpProtocol"], perm.get("FromPort"), r["CidrIp"]))
        for r in perm.get("Ipv6Ranges", []):
            assert r["CidrIpv6"] != "::/0"
            seen.add((perm["IpProtocol"], perm.get("FromPort"), r["CidrIpv6"]))
        for pair_ in perm.get("UserIdGroupPairs", []):
            seen.add((perm["IpProtocol"], None, pair_["GroupId"]))
    assert seen == {
        ("-1", None, gid),
        ("tcp", 22, CIDR),
        ("tcp", 6443, CIDR),
        ("tcp", 22, "2001:db8::/64"),
        ("tcp", 6443, "2001:db8::/64"),
    }

    # IAM: EC2 may assume the role; its policies reach only the cluster bucket, its join
    # parameter, and (from the control plane only) its workers' group.
    role_name = "sparkube-sparkube-us-east-1"
    role = iam.get_role(RoleName=role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert _tags(role)["sparkube:cluster"] == "sparkube"
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    policy_names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert sorted(policy_names) == ["sparkube-bucket", "sparkube-controller", "sparkube-join"]
    scale = iam.get_role_policy(RoleName=role_name, PolicyName="sparkube-controller")[
        "PolicyDocument"
    ]
    scale = json.loads(scale) if isinstance(scale, str) else scale
    cp_id = next(
        i["InstanceId"]
        for i in _instances(moto_aws.client("ec2"))
        if _tags(i).get("sparkube:role") == "control-plane"
    )
    for statement in scale["Statement"]:  # only from the control plane's own credentials
        assert statement["Condition"] == {
            "StringEquals": {
                "ec2:SourceInstanceARN": f"arn:aws:ec2:us-east-1:123456789012:instance/{cp_id}"
            }
        }
    assert scale["Statement"][1]["Resource"].endswith(
        ":autoScalingGroupName/sparkube-sparkube-workers"
    )
    join = iam.get_role_policy(RoleName=role_name, PolicyName="sparkube-join")["PolicyDocument"]
    join = json.loads(join) if isinstance(join, str) else join
    (read,) = join["Statement"]
    assert read["Action"] == "ssm:GetParameter"
    assert read["Resource"] == "arn:aws:ssm:us-east-1:123456789012:parameter/sparkube/sparkube/join"
    document = iam.get_role_policy(RoleName=role_name, PolicyName="sparkube-bucket")[
        "PolicyDocument"
    ]
    document = json.loads(document) if isinstance(document, str) else document
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    (bucket,) = [b for b in buckets if b.startswith("sparkube-sparkube-")]
    resources = {r for st in document["Statement"] for r in [st["Resource"]]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    assert all(a.startswith("s3:") for st in document["Statement"] for a in st["Action"])
    profile = iam.get_instance_profile(InstanceProfileName=role_name)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role_name]

    # Bucket: unique name from cluster, region and account; private; encrypted; tagged.
    assert "us-east-1" in bucket and len(bucket) <= 63
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert _tags(s3.get_bucket_tagging(Bucket=bucket), "TagSet")["sparkube:cluster"] == "sparkube"
    # Spark's decommission fallback (decommission/JOB-ID/...) expires after a day
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["Filter"] == {"Prefix": "decommission/"}
    assert lifecycle["Expiration"] == {"Days": 1}

    # Instances.
    nodes = _instances(ec2)
    assert len(nodes) == 4
    # (moto associates the profile with the first instance of a RunInstances only, and
    # with each worker the group launches from the template by faithful_launch_templates)
    profiles = {
        a["InstanceId"]: a["IamInstanceProfile"]["Arn"]
        for a in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    }
    assert len(profiles) == 4
    assert all(arn.endswith(role_name) for arn in profiles.values())
    roles = sorted(_tags(i)["sparkube:role"] for i in nodes)
    assert roles == ["control-plane", "worker", "worker", "worker"]
    for inst in nodes:
        tags = _tags(inst)
        assert tags["team"] == "data"
        assert tags["Name"] == f"sparkube-{tags['sparkube:node']}"
        assert tags["sparkube:expires-at"]
        assert inst["ImageId"] == moto_aws.amis["amd64"]
        assert inst["KeyName"] == "sparkube-sparkube"
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [gid]
        meta = inst["MetadataOptions"]
        assert (meta["HttpTokens"], meta["HttpPutResponseHopLimit"], meta["HttpEndpoint"]) == (
            "required",
            2,
            "enabled",
        )
        (mapping,) = inst["BlockDeviceMappings"]
        assert mapping["DeviceName"] == "/dev/sda1"
        volume = ec2.describe_volumes(VolumeIds=[mapping["Ebs"]["VolumeId"]])["Volumes"][0]
        assert (volume["VolumeType"], volume["Size"], volume["Encrypted"]) == ("gp3", 30, True)
        attr = ec2.describe_instance_attribute(
            InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
        )
        assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
        data = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
        script = userdata.decode(base64.b64decode(data["UserData"]["Value"]))
        assert script.startswith("#!/bin/bash")
        # the TTL survives reboots: the expiry on the node and a timer that reads it
        expiry = datetime.fromisoformat(tags["sparkube:expires-at"])
        assert f"echo {int(expiry.timestamp())} > " in script
        assert "systemctl enable --now sparkube-ttl.timer" in script
        assert "prepare.sh" in script
        # the node's role reaches its preparation (workers pre-pull the Spark image)
        assert f"export SPARKUBE_NODE_ROLE={tags['sparkube:role']}\n" in script

    # status / ls see it, with time left and cost.
    status = cli("status", "--output", "json", env=moto_aws.env)
    assert status.exit_code == 0, status.stderr
    doc = json.loads(status.stdout)
    assert [n["name"] for n in doc["nodes"]] == [
        "control-plane",
        "worker-1",
        "worker-2",
        "worker-3",
    ]
    # instances, root volumes (30 GiB gp3 at $0.08 per GB-month) and public IPv4 addresses
    assert doc["usd_per_hour"] == pytest.approx(
        4 * 0.0416 + 4 * 30 * 0.08 / 730 + 4 * 0.005, abs=1e-4
    )
    assert doc["time_left"].startswith("3h5")
    assert doc["phases_done"] == ["infra"]
    assert doc["phases_pending"][0] == "nodes"
    listing = cli("ls", "--output", "json", env=moto_aws.env)
    assert json.loads(listing.stdout)[0]["cluster"] == "sparkube"
    text = cli("status", env=moto_aws.env)
    assert "worker-3" in text.stdout and "time left 3h5" in text.stdout
    assert "Phases: ✓ infra  · nodes" in text.stdout
    assert "instance profile  sparkube-sparkube-us-east-1" in text.stdout
    assert "Stopped after infra" in result.stdout

    # down removes everything, local files included; a second down says so.
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert "nothing tagged with it remains" in down.stdout
    assert _instances(ec2) == []
    assert (
        ec2.describe_security_groups(
            Filters=[{"Name": "tag:sparkube:cluster", "Values": ["sparkube"]}]
        )["SecurityGroups"]
        == []
    )
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [b for b in (b["Name"] for b in s3.list_buckets()["Buckets"]) if "sparkube" in b] == []
    assert iam.list_roles(PathPrefix="/sparkube/")["Roles"] == []
    assert iam.list_instance_profiles(PathPrefix="/sparkube/")["InstanceProfiles"] == []
    assert not home.exists()
    again = cli("down", "--yes", env=moto_aws.env)
    assert again.exit_code == 0
    assert "Nothing to delete" in again.stdout


def test_second_up_makes_no_write_call(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "2").exit_code == 0
    counter = CallCounter()
    with observe_calls(counter):
        again = _up(cli, moto_aws, "--workers", "2")
    assert again.exit_code == 0, again.stderr
    assert counter.total > 0
    assert counter.writes() == {}


def test_more_workers_adds_the_next_numbers_fewer_is_an_error(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "2").exit_code == 0
    counter = CallCounter()
    with observe_calls(counter):
        grown = _up(cli, moto_aws, "--workers", "4")
    assert grown.exit_code == 0, grown.stderr
    # the group grows (no RunInstances of sparkube's own) and the two new ones are named
    assert "ec2.RunInstances" not in counter.calls
    assert counter.calls["auto-scaling.UpdateAutoScalingGroup"] == 1
    assert counter.writes()["ec2.CreateTags"] == 3  # the settings record and two names
    status = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
    assert [n["name"] for n in status["nodes"]] == [
        "control-plane",
        "worker-1",
        "worker-2",
        "worker-3",
        "worker-4",
    ]
    shrink = _up(cli, moto_aws, "--workers", "1")
    assert shrink.exit_code == 2
    assert "remove-node" in shrink.stderr
    assert len(_instances(moto_aws.client("ec2"))) == 5


def test_up_with_a_different_spec_says_what_differs(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "1").exit_code == 0
    counter = CallCounter()
    with observe_calls(counter):
        other = _up(
            cli,
            moto_aws,
            "--workers",
            "1",
            "--instance-type",
            "m6i.large",
            "--root-volume-gb",
            "50",
        )
    assert other.exit_code == 2
    assert "worker type t3.medium (asked m6i.large)" in other.stderr
    assert "root volume 40 GiB (asked 50 GiB)" in other.stderr
    assert counter.writes() == {}


def test_spot_and_arm64(cli: Cli, moto_aws: MotoAws) -> None:
    result = _up(
        cli,
        moto_aws,
        "--workers",
        "2",
        "--spot",
        "--instance-type",
        "t4g.medium",
        "--control-plane-type",
        "t4g.medium",
    )
    assert result.exit_code == 0, result.stderr
    nodes = _instances(moto_aws.client("ec2"))
    assert {i["ImageId"] for i in nodes} == {moto_aws.amis["arm64"]}
    workers = [i for i in nodes if _tags(i)["sparkube:role"] == "worker"]
    # one on-demand worker (drivers run there), the other spot
    assert sorted(i.get("InstanceLifecycle", "on-demand") for i in workers) == ["on-demand", "spot"]
    # No TTL: on-demand nodes keep the default; one-time spot nodes terminate.
    (control_plane,) = [i for i in nodes if _tags(i)["sparkube:role"] == "control-plane"]
    for inst, expected in ((control_plane, "stop"), (workers[0], "terminate")):
        attr = moto_aws.client("ec2").describe_instance_attribute(
            InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior"
        )
        assert attr["InstanceInitiatedShutdownBehavior"]["Value"] == expected


def test_plan_lists_everything_and_writes_nothing(cli: Cli, moto_aws: MotoAws) -> None:
    counter = CallCounter()
    with observe_calls(counter):
        result = cli("plan", "--workers", "3", "--allow-cidr", CIDR, "-o", "json", env=moto_aws.env)
    assert result.exit_code == 0, result.stderr
    assert counter.writes() == {}
    plan = json.loads(result.stdout)
    kinds = [r["kind"] for r in plan["resources"]]
    assert kinds.count("ingress rule") == 3
    assert {"key pair", "security group", "IAM role", "instance profile", "S3 bucket"} <= set(kinds)
    assert [(i["role"], i["count"]) for i in plan["instances"]] == [
        ("control-plane", 1),
        ("worker", 3),
    ]
    assert plan["instances"][0]["ami"] == moto_aws.amis["amd64"]
    # the full hourly price, by hand: 4 × t3.medium, 4 root volumes of 40 GiB gp3 at
    # $0.08 per GB-month over 730 h, and 4 public IPv4 addresses at $0.005 (moto answers
    # no Price List: the bundled table's us-east-1 figures)
    cost = plan["cost"]
    assert cost["instances_usd_per_hour"] == pytest.approx(4 * 0.0416)
    assert cost["volumes_usd_per_hour"] == pytest.approx(4 * 40 * 0.08 / 730, abs=1e-6)
    assert cost["addresses_usd_per_hour"] == pytest.approx(4 * 0.005)
    assert cost["usd_per_hour"] == pytest.approx(4 * 0.0416 + 12.8 / 730 + 0.02, abs=1e-6)
    # t3 nodes run unlimited (the default): their surplus credits are not in any price
    assert cost["exact"] is False and len(cost["unknown"]) == 1
    assert "surplus CPU credits of the 4 nodes in unlimited mode" in cost["unknown"][0]
    assert (cost["volumes"]["count"], cost["volumes"]["gb_each"]) == (4, 40)
    assert cost["addresses"]["count"] == 4
    assert cost["source"] == "bundled price table"
    assert [i["cpu_credits"] for i in plan["instances"]] == ["unlimited", "unlimited"]
    text = cli("plan", "--workers", "3", "--allow-cidr", CIDR, env=moto_aws.env)
    assert "bundled price table" in text.stdout
    assert (
        "Total: at least $0.2039/h = instances $0.1664 + volumes $0.0175 (4 × 40 GiB gp3) + "
        "public "
        "IPv4 $0.0200 (4 × $0.005)"
    ) in text.stdout
    assert "CPU credits unlimited" in text.stdout and "Not in this price" in text.stdout
    assert "tcp/6443" in text.stdout and "203.0.113.7/32" in text.stdout
    assert not moto_aws.env.cluster_dir("sparkube").exists()


def test_ls_across_regions_and_clusters(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "0", "-c", "alpha").exit_code == 0
    assert _up(cli, moto_aws, "--workers", "1", "-c", "beta").exit_code == 0
    result = cli("ls", "-o", "json", env=moto_aws.env)
    rows = {r["cluster"]: r for r in json.loads(result.stdout)}
    assert rows["alpha"]["nodes"] == 1 and rows["beta"]["nodes"] == 2
    assert rows["beta"]["time_left"] == "-"
    text = cli("ls", env=moto_aws.env)
    assert "alpha" in text.stdout and "beta" in text.stdout


def test_ls_all_regions_finds_clusters_everywhere(cli: Cli, moto_aws: MotoAws) -> None:
    from tests.fixtures.moto_server import seed_ubuntu

    seed_ubuntu(moto_aws.url, "eu-west-1")
    assert _up(cli, moto_aws, "--workers", "0", "-c", "east").exit_code == 0
    west = _up(cli, moto_aws, "--workers", "1", "-c", "west", "--region", "eu-west-1")
    assert west.exit_code == 0, west.stderr
    here = json.loads(cli("ls", "-o", "json", env=moto_aws.env).stdout)
    assert [r["cluster"] for r in here] == ["east"]
    everywhere = json.loads(cli("ls", "--all-regions", "-o", "json", env=moto_aws.env).stdout)
    assert {(r["cluster"], r["region"]) for r in everywhere} == {
        ("east", "us-east-1"),
        ("west", "eu-west-1"),
    }
    west_row = next(r for r in everywhere if r["cluster"] == "west")
    # eu-west-1 table prices: 2 t3.medium, 2 root volumes of 40 GiB gp3, 2 public IPv4
    assert west_row["usd_per_hour"] == pytest.approx(
        2 * 0.0462 + 2 * 40 * 0.088 / 730 + 2 * 0.005, abs=1e-4
    )


def test_subnet_and_vpc_are_used_when_given(cli: Cli, moto_aws: MotoAws) -> None:
    ec2 = moto_aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24", AvailabilityZone="us-east-1b")
    subnet_id = subnet["Subnet"]["SubnetId"]
    result = _up(cli, moto_aws, "--workers", "1", "--subnet-id", subnet_id)
    assert result.exit_code == 0, result.stderr
    nodes = _instances(ec2)
    assert {i["SubnetId"] for i in nodes} == {subnet_id}
    (group,) = ec2.describe_security_groups(
        Filters=[{"Name": "tag:sparkube:cluster", "Values": ["sparkube"]}]
    )["SecurityGroups"]
    assert group["VpcId"] == vpc
    wrong = _up(cli, moto_aws, "--workers", "1", "--subnet-id", subnet_id, "--vpc-id", "vpc-0")
    assert wrong.exit_code == 2
    assert "not in --vpc-id" in wrong.stderr
    # a subnet that maps no public IPv4 (a new subnet's default): no address is priced
    plan = cli("plan", "--workers", "1", "--subnet-id", subnet_id, "--allow-cidr", CIDR,
               "-o", "json", env=moto_aws.env)  # fmt: skip
    cost = json.loads(plan.stdout)["cost"]
    assert cost["addresses"]["count"] == 0 and cost["addresses_usd_per_hour"] == 0
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    plan = cli("plan", "--workers", "1", "--subnet-id", subnet_id, "--allow-cidr", CIDR,
               "-o", "json", env=moto_aws.env)  # fmt: skip
    assert json.loads(plan.stdout)["cost"]["addresses"]["count"] == 2


def test_up_of_a_cluster_past_its_ttl_is_refused_before_anything_starts(
    cli: Cli, moto_aws: MotoAws
) -> None:
    """Nodes of a cluster whose TTL ran out power off a minute after any boot (the TTL
    timer): starting them or adding workers would fail halfway, so up refuses first."""
    assert _up(cli, moto_aws, "--workers", "1", "--ttl", "1h").exit_code == 0
    ec2: Any = moto_aws.client("ec2")
    ids = [i["InstanceId"] for i in _instances(ec2)]
    ec2.create_tags(
        Resources=ids, Tags=[{"Key": "sparkube:expires-at", "Value": "2026-01-01T00:00:00+00:00"}]
    )
    res = _up(cli, moto_aws, "--workers", "2")
    assert res.exit_code == 2, res.stderr
    assert res.stderr.strip() == (
        "Error: Cluster sparkube reached its time to live at 2026-01-01 00:00 UTC and its "
        "nodes power off as they boot; remove it with 'sparkube down', then create a new one "
        "with 'sparkube up'."
    )
    assert len(_instances(ec2)) == 2  # no worker added


# --- CPU credits of burstable types ----------------------------------------------------


def _launches(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What sparkube launches nodes with: the control plane's RunInstances, then the
    workers' launch template (moto accepts CreditSpecification but keeps no record of it
    on an instance: its DescribeInstanceCreditSpecifications answers standard always)."""
    from sparkube.aws import instances

    sent: list[dict[str, Any]] = []
    real = instances.instance_settings

    def recording(req: Any) -> dict[str, Any]:
        params = real(req)
        sent.append(params)
        return params

    monkeypatch.setattr(instances, "instance_settings", recording)
    return sent


def test_burstable_nodes_launch_in_unlimited_credit_mode_unless_told(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _launches(monkeypatch)
    up = _up(cli, moto_aws, "--workers", "2")
    assert up.exit_code == 0, up.stderr
    assert [p["CreditSpecification"] for p in sent] == [{"CpuCredits": "unlimited"}] * 2
    # up's summary line: the full hourly price and its parts, and what it leaves out
    assert (
        "Estimated cost: at least $0.1530/h = instances $0.1248 + volumes $0.0132 (3 × 40 GiB "
        "gp3) + public IPv4 $0.0150 (3 × $0.005) (on-demand, bundled price table)"
    ) in " ".join(up.stderr.split())
    assert "Not in this price: surplus CPU credits of the 3 nodes" in " ".join(up.stderr.split())
    ec2 = moto_aws.client("ec2")
    (group,) = ec2.describe_security_groups(
        Filters=[{"Name": "tag:sparkube:cluster", "Values": ["sparkube"]}]
    )["SecurityGroups"]
    assert _tags(group)["sparkube:cpu-credits"] == "unlimited"  # recorded: a resume keeps it
    counter = CallCounter()
    with observe_calls(counter):
        other = _up(cli, moto_aws, "--workers", "2", "--cpu-credits", "standard")
    assert other.exit_code == 2
    assert "CPU credits unlimited (asked standard)" in other.stderr
    assert counter.writes() == {}
    bad = _up(cli, moto_aws, "--cpu-credits", "fast")
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1
    assert "--cpu-credits: 'fast' is not one of: standard, unlimited" in bad.stderr


def test_unlimited_is_sent_to_burstable_types_only_and_plan_says_what_it_may_cost(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _launches(monkeypatch)
    up = _up(cli, moto_aws, "-c", "burst", "--workers", "1", "--instance-type", "m7i.large",
             "--cpu-credits", "unlimited")  # fmt: skip
    assert up.exit_code == 0, up.stderr
    # the t3.medium control plane takes the mode; m7i.large workers have no credits
    assert [p.get("CreditSpecification") for p in sent] == [{"CpuCredits": "unlimited"}, None]
    assert "Not in this price: surplus CPU credits of the 1 node in unlimited mode" in up.stderr
    plan = cli("plan", "-c", "burst", "--allow-cidr", CIDR, "-o", "json", env=moto_aws.env)
    doc = json.loads(plan.stdout)
    assert [i["cpu_credits"] for i in doc["instances"]] == ["unlimited", None]
    assert doc["cost"]["exact"] is False
    (note,) = doc["cost"]["unknown"]
    assert "($0.05 per vCPU-hour above it" in note
    text = cli("plan", "-c", "burst", "--allow-cidr", CIDR, env=moto_aws.env)
    assert "Total: at least $" in text.stdout
    assert "Not in this price: surplus CPU credits" in text.stdout
    assert text.stdout.count("CPU credits unlimited") == 1  # the control plane's line only
    # without a burstable type, plan says nothing about credits
    none = cli("plan", "-c", "plain", "--instance-type", "m7i.large", "--control-plane-type",
               "m7i.large", "--cpu-credits", "unlimited", "--allow-cidr", CIDR,
               env=moto_aws.env)  # fmt: skip
    assert none.exit_code == 0, none.stderr
    assert "credit" not in none.stdout.lower() and "Total: $" in none.stdout


class _Recorded:
    """A boto3 client that notes the name of every method called on it."""

    def __init__(self, client: Any) -> None:
        self.client, self.called = client, []

    def __getattr__(self, name: str) -> Any:
        self.called.append(name)
        return getattr(self.client, name)


def test_bucket_expires_decommission_blocks_once_and_keeps_other_rules(moto_aws: MotoAws) -> None:
    """Spark never deletes its decommission fallback; the bucket's lifecycle rule does.
    It is written when missing or changed, never again when it is there, and the
    bucket's other rules stay as they were (S3 replaces the whole configuration)."""
    from sparkube.aws import storage

    s3 = moto_aws.client("s3")
    bucket = "sparkube-lc-us-east-1-0badcafe"

    def ensure(client: Any) -> None:
        storage.ensure(client, bucket, "lc", "us-east-1", {"sparkube:cluster": "lc"})

    first = _Recorded(s3)
    ensure(first)
    assert "put_bucket_lifecycle_configuration" in first.called
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["Filter"] == {"Prefix": "decommission/"} and rule["Status"] == "Enabled"
    assert rule["Expiration"] == {"Days": 1}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert storage.inspect(s3, bucket, "lc").decommission_expires

    # a second ensure looks and writes nothing
    again = _Recorded(s3)
    ensure(again)
    assert "get_bucket_lifecycle_configuration" in again.called
    assert [c for c in again.called if not c.startswith(("get_", "head_", "list_"))] == []

    # someone's own rule, and sparkube's rule changed by hand: the rule is put back,
    # theirs is kept
    theirs = {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
              "Expiration": {"Days": 30}}  # fmt: skip
    changed = {**storage.DECOMMISSION_RULE, "Expiration": {"Days": 7}}
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [theirs, changed]}
    )
    assert not storage.inspect(s3, bucket, "lc").decommission_expires
    ensure(s3)
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"logs", "sparkube-decommission"}
    assert rules["logs"]["Expiration"] == {"Days": 30}
    assert rules["logs"]["Filter"] == {"Prefix": "logs/"}
    assert rules["sparkube-decommission"]["Expiration"] == {"Days": 1}
    # and then nothing more
    last = _Recorded(s3)
    ensure(last)
    assert [c for c in last.called if not c.startswith(("get_", "head_", "list_"))] == []
