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
    "with sparkube up, or find yours with sparkube ls --all-regions."
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
