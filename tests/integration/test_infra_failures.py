"""Failures: bad input (exit 2, nothing created), injected AWS errors, resume, partial
`down`, DependencyViolation and IAM-propagation retries, Ctrl-C."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError

from sparkube.aws.provider import AwsProvider
from sparkube.aws.session import CallCounter, observe_calls
from sparkube.spec import load_spec
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import MotoAws

pytestmark = pytest.mark.integration

CIDR = "203.0.113.7/32"
Cli = Callable[..., CliResult]


@contextmanager
def failing(
    operation: str, code: str, message: str = "injected", *, times: int = 1, skip: int = 0
) -> Iterator[CallCounter]:
    """Make the ``skip+1``-th .. ``skip+times``-th call of ``Service.Operation`` fail."""
    counter = CallCounter()
    seen = {"n": 0}

    def observer(service: str, op: str) -> None:
        counter(service, op)
        if f"{service}.{op}" != operation:
            return
        seen["n"] += 1
        if skip < seen["n"] <= skip + times:
            if code == "KeyboardInterrupt":
                raise KeyboardInterrupt
            raise ClientError({"Error": {"Code": code, "Message": message}}, op)

    with observe_calls(observer):
        yield counter


def _count(moto_aws: MotoAws) -> dict[str, int]:
    ec2, iam, s3 = (moto_aws.client(s) for s in ("ec2", "iam", "s3"))
    f = [{"Name": "tag:sparkube:cluster", "Values": ["sparkube"]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    return {
        "instances": sum(
            len(r["Instances"]) for r in ec2.describe_instances(Filters=f + live)["Reservations"]
        ),
        "groups": len(ec2.describe_security_groups(Filters=f)["SecurityGroups"]),
        "keys": len(ec2.describe_key_pairs(Filters=f)["KeyPairs"]),
        "roles": len(iam.list_roles(PathPrefix="/sparkube/")["Roles"]),
        "profiles": len(iam.list_instance_profiles(PathPrefix="/sparkube/")["InstanceProfiles"]),
        "buckets": len([b for b in s3.list_buckets()["Buckets"] if "sparkube" in b["Name"]]),
    }


NOTHING = {"instances": 0, "groups": 0, "keys": 0, "roles": 0, "profiles": 0, "buckets": 0}
COMPLETE_2 = {"instances": 3, "groups": 1, "keys": 1, "roles": 1, "profiles": 1, "buckets": 1}


def _up(cli: Cli, moto_aws: MotoAws, *args: str) -> CliResult:
    return cli("up", "--until", "infra", "--allow-cidr", CIDR, *args, env=moto_aws.env)


# --- bad input: exit 2, nothing created ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--region", "mars-east-1"], "Unknown AWS region"),
        (["--instance-type", "t3.gigantic"], "Unknown EC2 instance type"),
        (["--instance-type", "t3.micro"], "kubeadm needs at least 2 vCPUs and 2 GiB"),
        (["--control-plane-type", "t2.micro"], "has 1 vCPU"),
        (["--instance-type", "hpc6a.48xlarge"], "not offered in us-east-1"),
        (["--workers", "201"], "workers"),
        (["--workers", "-1"], "workers"),
        (["--allow-cidr", "300.1.1.1/33"], "not a CIDR"),
        (["--allow-cidr", "0.0.0.0/0"], "whole internet"),
        (["--allow-cidr", "::/0"], "whole internet"),
        (["--ami", "ami-0123456789abcdef0"], "AMI"),
        (["--ttl", "soon"], "duration"),
    ],
)
def test_bad_input_exits_2_and_creates_nothing(
    cli: Cli, moto_aws: MotoAws, args: list[str], expected: str
) -> None:
    counter = CallCounter()
    with observe_calls(counter):
        result = cli("up", "--until", "infra", "--allow-cidr", CIDR, *args, env=moto_aws.env)
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert counter.writes() == {}
    assert _count(moto_aws) == NOTHING
    assert not moto_aws.env.cluster_dir("sparkube").exists()


def test_without_allow_cidr_and_no_detection_says_pass_allow_cidr(
    cli: Cli, moto_aws: MotoAws
) -> None:
    result = cli("up", "--until", "infra", env=moto_aws.env)
    assert result.exit_code == 2
    assert "pass --allow-cidr" in result.stderr
    assert _count(moto_aws) == NOTHING


def test_no_credentials_says_how_to_configure(cli: Cli, moto_aws: MotoAws) -> None:
    environ = {
        k: v
        for k, v in moto_aws.env.environ.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env = dataclasses.replace(moto_aws.env, environ=environ)
    result = cli("up", "--until", "infra", "--allow-cidr", CIDR, env=env)
    assert result.exit_code == 2
    assert "No AWS credentials found" in result.stderr
    assert "aws configure" in result.stderr


# --- AWS errors become one sentence --------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "code", "message", "expected"),
    [
        (
            "ec2.RunInstances",
            "VcpuLimitExceeded",
            "You have requested more vCPU capacity than your current vCPU limit of 8 allows",
            "needs 2 more vCPUs but your On-Demand Standard vCPU quota in us-east-1 allows 8",
        ),
        (
            "ec2.RunInstances",
            "InsufficientInstanceCapacity",
            "no capacity",
            "another --instance-type",
        ),
        (
            "ec2.CreateSecurityGroup",
            "UnauthorizedOperation",
            "You are not authorized to perform this operation. User: arn:aws:iam::1:user/x is "
            "not authorized to perform: ec2:CreateSecurityGroup",
            "ec2:CreateSecurityGroup",
        ),
        ("iam.CreateRole", "AccessDenied", "denied", "iam:CreateRole"),
        (
            "ec2.RunInstances",
            "Unsupported",
            "not supported in your requested Availability Zone",
            "Availability Zone",
        ),
    ],
)
def test_aws_errors_are_one_sentence(
    cli: Cli, moto_aws: MotoAws, operation: str, code: str, message: str, expected: str
) -> None:
    with failing(operation, code, message, times=99):
        result = _up(cli, moto_aws, "--workers", "1")
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1


# --- resume, partial down, empty SPARKUBE_HOME ----------------------------------------


@pytest.mark.parametrize(
    ("operation", "skip"),
    [
        ("iam.CreateInstanceProfile", 0),
        ("ec2.AuthorizeSecurityGroupIngress", 0),
        # the control plane started, the workers' group failed
        ("auto-scaling.CreateAutoScalingGroup", 0),
    ],
)
def test_up_resumes_after_a_failure_in_infra(
    cli: Cli, moto_aws: MotoAws, operation: str, skip: int
) -> None:
    with failing(operation, "InternalError", "boom", skip=skip):
        first = _up(cli, moto_aws, "--workers", "2")
    assert first.exit_code == 1
    assert "✗ infra" in first.stderr
    assert _count(moto_aws) != COMPLETE_2
    second = _up(cli, moto_aws, "--workers", "2")
    assert second.exit_code == 0, second.stderr
    assert _count(moto_aws) == COMPLETE_2
    counter = CallCounter()
    with observe_calls(counter):
        assert _up(cli, moto_aws, "--workers", "2").exit_code == 0
    assert counter.writes() == {}


def test_ctrl_c_leaves_a_resumable_state(cli: Cli, moto_aws: MotoAws) -> None:
    with failing("ec2.RunInstances", "KeyboardInterrupt"):
        first = _up(cli, moto_aws, "--workers", "2")
    assert first.exit_code == 130
    assert "✗ infra" in first.stderr
    assert "Interrupted; run 'sparkube up' again to resume" in first.stderr
    assert _up(cli, moto_aws, "--workers", "2").exit_code == 0
    assert _count(moto_aws) == COMPLETE_2


def _worker_types(moto_aws: MotoAws) -> list[str]:
    ec2 = moto_aws.client("ec2")
    f = [
        {"Name": "tag:sparkube:cluster", "Values": ["sparkube"]},
        {"Name": "tag:sparkube:role", "Values": ["worker"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]},
    ]
    reservations = ec2.describe_instances(Filters=f)["Reservations"]
    return sorted(i["InstanceType"] for r in reservations for i in r["Instances"])


def test_a_plain_up_resumes_with_the_interrupted_ups_settings(cli: Cli, moto_aws: MotoAws) -> None:
    # Interrupted after the control plane, before the workers' group was made.
    with failing("auto-scaling.CreateAutoScalingGroup", "KeyboardInterrupt"):
        first = _up(cli, moto_aws, "--workers", "3", "--instance-type", "t3.large", "--ttl", "4h")
    assert first.exit_code == 130
    assert _count(moto_aws)["instances"] == 1

    # No flags at all (not even --allow-cidr: the group's CIDRs are the cluster's).
    plan = cli("plan", "-o", "json", env=moto_aws.env)
    assert plan.exit_code == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert [(i["role"], i["count"], i["instance_type"]) for i in planned["instances"]] == [
        ("control-plane", 1, "t3.medium"),
        ("worker", 3, "t3.large"),
    ]
    assert planned["allow_cidrs"] == [CIDR] and planned["ttl_minutes"] == 240
    resumed = cli("up", "--until", "infra", env=moto_aws.env)
    assert resumed.exit_code == 0, resumed.stderr
    assert _worker_types(moto_aws) == ["t3.large"] * 3

    # Another operator CIDR is added to the group, not a different spec.
    more = cli("plan", "-o", "json", "--allow-cidr", "198.51.100.0/24", env=moto_aws.env)
    planned = json.loads(more.stdout)
    assert planned["allow_cidrs"] == [CIDR, "198.51.100.0/24"]
    rules = {r["name"]: r["exists"] for r in planned["resources"] if r["kind"] == "ingress rule"}
    assert rules == {
        "all traffic from the cluster's own group": True,
        "tcp/22 from 198.51.100.0/24": False,
        "tcp/6443 from 198.51.100.0/24": False,
    }

    # Explicitly different settings are refused, saying what differs; nothing is written.
    counter = CallCounter()
    with observe_calls(counter):
        other = cli("up", "--until", "infra", "--instance-type", "m6i.large", env=moto_aws.env)
        fewer = cli("up", "--until", "infra", "--workers", "2", env=moto_aws.env)
    assert other.exit_code == 2
    assert "worker type t3.large (asked m6i.large)" in other.stderr
    assert fewer.exit_code == 2 and "remove-node worker-3" in fewer.stderr
    assert counter.writes() == {}

    # Explicitly more workers adds them, and a plain 'up' after that keeps them.
    assert cli("up", "--until", "infra", "--workers", "4", env=moto_aws.env).exit_code == 0
    assert _worker_types(moto_aws) == ["t3.large"] * 4
    counter = CallCounter()
    with observe_calls(counter):
        again = cli("up", "--until", "infra", env=moto_aws.env)
    assert again.exit_code == 0, again.stderr
    assert counter.writes() == {}
    status = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
    assert len(status["nodes"]) == 5


def test_more_workers_interrupted_before_launch_resumes_with_more(
    cli: Cli, moto_aws: MotoAws
) -> None:
    assert _up(cli, moto_aws, "--workers", "1").exit_code == 0
    with failing("auto-scaling.UpdateAutoScalingGroup", "InternalError", "boom"):
        assert _up(cli, moto_aws, "--workers", "3").exit_code == 1
    assert _worker_types(moto_aws) == ["t3.medium"]
    resumed = cli("up", "--until", "infra", env=moto_aws.env)
    assert resumed.exit_code == 0, resumed.stderr
    assert _worker_types(moto_aws) == ["t3.medium"] * 3


def test_ctrl_c_during_down_says_run_it_again(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "1").exit_code == 0
    with failing("ec2.DeleteSecurityGroup", "KeyboardInterrupt"):
        first = cli("down", "--yes", env=moto_aws.env)
    assert first.exit_code == 130
    assert "✗ down" in first.stderr
    assert "run 'sparkube down' again to finish deleting" in first.stderr
    assert cli("down", "--yes", env=moto_aws.env).exit_code == 0
    assert _count(moto_aws) == NOTHING


def test_down_after_a_partial_up_removes_everything(cli: Cli, moto_aws: MotoAws) -> None:
    with failing("auto-scaling.CreateAutoScalingGroup", "InternalError"):
        assert _up(cli, moto_aws, "--workers", "2").exit_code == 1
    partial = _count(moto_aws)
    assert partial["instances"] == 1
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert _count(moto_aws) == NOTHING


def test_down_works_with_an_empty_sparkube_home(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "2").exit_code == 0
    shutil.rmtree(moto_aws.env.home)
    status = cli("status", env=moto_aws.env)
    assert "worker-2" in status.stdout
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert _count(moto_aws) == NOTHING


def test_down_without_yes_and_without_a_tty_refuses(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "0").exit_code == 0
    result = cli("down", env=moto_aws.env)
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert _count(moto_aws)["instances"] == 1


def test_down_keep_data_keeps_the_bucket(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "0").exit_code == 0
    s3 = moto_aws.client("s3")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.put_object(Bucket=bucket, Key="results/part-0000.csv", Body=b"word,count\n")
    down = cli("down", "--yes", "--keep-data", env=moto_aws.env)
    assert down.exit_code == 0, down.stderr
    assert "kept S3 bucket" in down.stderr
    left = _count(moto_aws)
    assert left == {**NOTHING, "buckets": 1}
    # A full down later empties and deletes it.
    assert cli("down", "--yes", env=moto_aws.env).exit_code == 0
    assert _count(moto_aws) == NOTHING


def test_down_lists_what_remains_and_exits_1(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _up(cli, moto_aws, "--workers", "0").exit_code == 0
    from sparkube.aws import teardown

    monkeypatch.setattr(teardown.iam, "delete", lambda *a, **k: [])
    down = cli("down", "--yes", env=moto_aws.env)
    assert down.exit_code == 1
    assert "remain" in down.stderr
    assert "IAM role sparkube-sparkube-us-east-1" in down.stderr


# --- retries (library level, with an injected sleep) --------------------------------


def _provider(moto_aws: MotoAws, sleeps: list[float]) -> AwsProvider:
    return AwsProvider.from_env(moto_aws.env, region=None, sleep=sleeps.append)


def test_security_group_dependency_violation_is_retried_with_backoff(moto_aws: MotoAws) -> None:
    spec = load_spec(env=moto_aws.env, flags={"workers": 1, "allow_cidrs": [CIDR]})
    sleeps: list[float] = []
    provider = _provider(moto_aws, sleeps)
    provider.ensure_infra(spec)
    with failing("ec2.DeleteSecurityGroup", "DependencyViolation", "in use", times=3) as calls:
        _, remaining = provider.teardown("sparkube", keep_data=False)
    assert calls.calls["ec2.DeleteSecurityGroup"] == 4
    assert sleeps == [2.0, 4.0, 8.0]
    assert remaining.security_group_id is None
    assert _count(moto_aws) == NOTHING


def test_new_instance_profile_not_yet_visible_is_retried(moto_aws: MotoAws) -> None:
    spec = load_spec(env=moto_aws.env, flags={"workers": 1, "allow_cidrs": [CIDR]})
    sleeps: list[float] = []
    message = (
        "Value (sparkube-sparkube-us-east-1) for parameter iamInstanceProfile.name is "
        "invalid. Invalid IAM Instance Profile name"
    )
    with failing("ec2.RunInstances", "InvalidParameterValue", message, times=2) as calls:
        info = _provider(moto_aws, sleeps).ensure_infra(spec)
    assert calls.calls["ec2.RunInstances"] == 3  # the control plane's; workers: its group
    assert sleeps == [2.0, 4.0]
    assert [n.name for n in info.nodes] == ["control-plane", "worker-1"]


def test_group_creation_waits_for_a_new_instance_profile_too(moto_aws: MotoAws) -> None:
    """CreateAutoScalingGroup checks the template's instance profile, and refuses it
    while EC2 cannot see it yet (moto does not check: the error is injected, as AWS
    words it)."""
    spec = load_spec(env=moto_aws.env, flags={"workers": 1, "allow_cidrs": [CIDR]})
    sleeps: list[float] = []
    message = (
        "You must use a valid fully-formed launch template. Value "
        "(sparkube-sparkube-us-east-1) for parameter iamInstanceProfile.name is invalid. "
        "Invalid IAM Instance Profile name"
    )
    operation = "auto-scaling.CreateAutoScalingGroup"
    with failing(operation, "ValidationError", message, times=2) as calls:
        info = _provider(moto_aws, sleeps).ensure_infra(spec)
    assert calls.calls[operation] == 3
    assert sleeps == [2.0, 4.0]
    assert [n.name for n in info.nodes] == ["control-plane", "worker-1"]


def test_down_asks_for_confirmation_on_a_terminal(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _up(cli, moto_aws, "--workers", "0").exit_code == 0
    env = dataclasses.replace(moto_aws.env, interactive=True)
    questions: list[str] = []

    def answer(value: bool) -> Callable[..., bool]:
        def confirm(text: str, **_: object) -> bool:
            questions.append(text)
            return value

        return confirm

    monkeypatch.setattr("typer.confirm", answer(False))
    declined = cli("down", env=env)
    assert declined.exit_code == 1
    assert "sparkube-sparkube" in declined.stderr  # what would be deleted is listed
    assert _count(moto_aws)["instances"] == 1
    monkeypatch.setattr("typer.confirm", answer(True))
    assert cli("down", env=env).exit_code == 0
    assert _count(moto_aws) == NOTHING
    assert len(questions) == 2


def test_up_starts_a_stopped_node_instead_of_replacing_it(cli: Cli, moto_aws: MotoAws) -> None:
    assert _up(cli, moto_aws, "--workers", "1").exit_code == 0
    ec2 = moto_aws.client("ec2")
    status = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
    worker = next(n for n in status["nodes"] if n["name"] == "worker-1")["instance_id"]
    ec2.stop_instances(InstanceIds=[worker])
    stopped = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
    assert stopped["phases_done"] == []  # infra is not complete with a stopped node
    resumed = cli("up", "--until", "infra", env=moto_aws.env)
    assert resumed.exit_code == 0, resumed.stderr
    state = ec2.describe_instances(InstanceIds=[worker])
    assert state["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    assert _count(moto_aws)["instances"] == 2  # started, not replaced
