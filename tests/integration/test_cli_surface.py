"""One CLI surface against AWS (moto): a cluster that is not there exits 2 from every
command that looks it up, with the same sentence; ``down`` of nothing stays a success."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import REGION, MotoAws

Cli = Callable[..., CliResult]

_SENTENCE = (
    f"Error: No cluster demo in {REGION} (nothing tagged sparkube:cluster=demo); create it "
    "with 'sparkube up', or find yours with 'sparkube ls --all-regions'."
)


@pytest.mark.parametrize("args", [("status",), ("ssh",), ("ssh", "--", "true")], ids=" ".join)
def test_a_cluster_not_in_aws_exits_2(cli: Cli, moto_aws: MotoAws, args: tuple[str, ...]) -> None:
    result = cli(*args[:1], "--cluster", "demo", *args[1:], env=moto_aws.env)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == _SENTENCE
    assert result.stdout == ""


def test_status_json_of_a_missing_cluster_says_so_and_exits_2(cli: Cli, moto_aws: MotoAws) -> None:
    result = cli("status", "-c", "demo", "-o", "json", env=moto_aws.env)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["exists"] is False
    assert result.stderr.strip() == _SENTENCE


def test_down_of_nothing_is_done(cli: Cli, moto_aws: MotoAws) -> None:
    # down makes the cluster not exist: when it already does not, that is success.
    result = cli("down", "-c", "demo", "--yes", env=moto_aws.env)
    assert result.exit_code == 0, result.stderr


def _tag_a_cluster(moto_aws: MotoAws, name: str, region: str = REGION) -> None:
    ec2 = moto_aws.client("ec2", region=region)
    ec2.create_security_group(  # type: ignore[attr-defined]
        GroupName=f"sparkube-{name}",
        Description=f"sparkube cluster {name}",
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "sparkube:cluster", "Value": name}]}
        ],
    )


def test_ls_cluster_lists_only_that_cluster(cli: Cli, moto_aws: MotoAws) -> None:
    _tag_a_cluster(moto_aws, "east")
    _tag_a_cluster(moto_aws, "other")
    _tag_a_cluster(moto_aws, "west", region="eu-west-1")
    every = json.loads(cli("ls", "-o", "json", env=moto_aws.env).stdout)
    assert sorted(row["cluster"] for row in every) == ["east", "other"]

    only = cli("ls", "--cluster", "east", "-o", "json", env=moto_aws.env)
    assert only.exit_code == 0, only.stderr
    assert [row["cluster"] for row in json.loads(only.stdout)] == ["east"]

    found = cli("ls", "-c", "west", "--all-regions", "-o", "json", env=moto_aws.env)
    assert [(r["cluster"], r["region"]) for r in json.loads(found.stdout)] == [
        ("west", "eu-west-1")
    ]
    none = cli("ls", "-c", "west", env=moto_aws.env)
    assert none.exit_code == 0 and none.stdout.strip() == f"No cluster west in {REGION}."
    assert cli("ls", "-c", "Bad_Name", env=moto_aws.env).exit_code == 2


def test_kubeconfig_region_tells_another_machine_from_no_cluster(
    cli: Cli, moto_aws: MotoAws
) -> None:
    _tag_a_cluster(moto_aws, "elsewhere", region="eu-west-1")
    made_elsewhere = cli("kubeconfig", "-c", "elsewhere", "--region", "eu-west-1", env=moto_aws.env)
    assert made_elsewhere.exit_code == 2
    assert made_elsewhere.stderr.startswith(
        "Error: Cluster elsewhere exists in eu-west-1 but was made on another machine"
    )
    absent = cli("kubeconfig", "-c", "demo", "--region", REGION, env=moto_aws.env)
    assert absent.exit_code == 2
    assert absent.stderr.strip() == _SENTENCE

    here = moto_aws.env.cluster_dir("demo", create=True) / "kubeconfig"
    here.write_text("apiVersion: v1\n")
    found = cli("kubeconfig", "-c", "demo", "--region", REGION, env=moto_aws.env)
    assert found.exit_code == 0 and found.stdout.strip() == str(here)
