"""One CLI surface: the same failure exits the same way from every command."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fixtures.common import CliResult

Cli = Callable[..., CliResult]

#: Every command that needs the cluster's kubeconfig on this machine.
_NEEDS_KUBECONFIG = [
    ("jobs",),
    ("logs", "job-1"),
    ("cancel", "job-1"),
    ("usage",),
    ("dashboard", "--no-browser"),
    ("spark-ui", "job-1", "--no-browser"),
    ("kubeconfig",),
    ("kubeconfig", "--merge"),
]
#: Every command that looks the cluster up in AWS (here: no region to look in).
_LOOKS_IN_AWS = [
    ("status",),
    ("status", "-o", "json"),
    ("down", "--yes"),
    ("ssh",),
    ("up", "--yes"),
]


@pytest.mark.parametrize("args", _NEEDS_KUBECONFIG, ids=" ".join)
def test_no_such_cluster_exits_2_with_one_sentence(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args, "--cluster", "demo")
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("Error: No cluster demo is up on this machine (no kubeconfig in ")
    assert message.endswith(
        "); create it with 'sparkube up', or pass --cluster NAME for another one."
    )
    assert "'demo'" not in message and '"demo"' not in message


@pytest.mark.parametrize("args", _LOOKS_IN_AWS, ids=" ".join)
def test_no_cluster_and_no_region_exits_2(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args, "--cluster", "demo")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("Error: ")
    assert "region" in result.stderr and "demo" not in result.stdout
