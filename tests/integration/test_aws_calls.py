"""AWS API calls do not grow with the number of workers (issue 11).

``up --until infra`` and ``down`` run in-process against the moto server, and every
call of every boto3 client sparkube makes is counted by ``Service.Operation``
(``sparkube.aws.session.observe_calls``). Counts are deterministic against moto: its
instances are running on the first describe, so every waiter and poll returns on its
first call and the counts do not depend on timing. One RunInstances (the control plane),
one Auto Scaling group for the workers, one filtered DescribeInstances per poll and one
TerminateInstances for all: 1 and 5 workers must make exactly the same calls, but for
one CreateTags per new worker (its name, ``worker-K``: each takes another value, and a
CreateTags gives all its resources the same). (bench/aws_calls.py prints the table for
more sizes.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sparkube.aws.session import CallCounter, observe_calls
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import MotoAws

pytestmark = pytest.mark.integration


def counted(cli: Callable[..., CliResult], moto_aws: MotoAws, *args: str) -> dict[str, int]:
    counter = CallCounter()
    with observe_calls(counter):
        result = cli(*args, env=moto_aws.env)
    assert result.exit_code == 0, (args, result.stderr)
    return counter.calls


def up_and_down(cli: Callable[..., CliResult], moto_aws: MotoAws, workers: int) -> tuple[
    dict[str, int], dict[str, int]
]:  # fmt: skip
    up = counted(
        cli, moto_aws,
        "up", "--until", "infra", "--workers", str(workers), "--allow-cidr", "203.0.113.7/32",
    )  # fmt: skip
    down = counted(cli, moto_aws, "down", "--yes")
    return up, down


def differences(a: dict[str, int], b: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {k: (a.get(k, 0), b.get(k, 0)) for k in sorted({*a, *b}) if a.get(k) != b.get(k)}


def test_aws_calls_are_the_same_for_1_and_5_workers(
    cli: Callable[..., CliResult], moto_aws: MotoAws
) -> None:
    ec2 = moto_aws.client("ec2")
    up1, down1 = up_and_down(cli, moto_aws, 1)
    up5, down5 = up_and_down(cli, moto_aws, 5)

    # the runs did what they say: 1 + 5 workers and 2 control planes, all terminated
    launched = [
        i
        for r in ec2.describe_instances()["Reservations"]  # type: ignore[attr-defined]
        for i in r["Instances"]
    ]
    assert len(launched) == 2 + 1 + 5
    assert {i["State"]["Name"] for i in launched} == {"terminated"}

    assert differences(up1, up5) == {"ec2.CreateTags": (1, 5)}  # a name per new worker
    assert down5 == down1, differences(down1, down5)
    # ... and the calls that could have been per node are one per role / one in all
    assert up1["ec2.RunInstances"] == 1
    assert up1["auto-scaling.CreateAutoScalingGroup"] == 1
    assert down1["ec2.TerminateInstances"] == 1
    # no polling storm: today 63 and 40 (the bucket's lifecycle rule, read and written,
    # is the last added)
    assert sum(up1.values()) < 70 and sum(down1.values()) < 50
