"""Shared pytest setup: the stand-in fixtures live in tests/fixtures/ as plugins.

Tests whose stand-in is missing (no Go-built control plane, no root for network
namespaces, no shellcheck) skip with the reason. In CI, where every stand-in must be
there, ``SPARKUBE_REQUIRE_STANDINS=1`` turns such a skip into a failure, so a broken
build or a missing package can never pass as green.

The network safety net (tests/fixtures/netguard.py) refuses, in this process, any
connection to an address that is neither loopback nor in a range a fixture created.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

pytest_plugins = [
    "tests.fixtures.netguard",  # first: no fixture may connect before the net is up
    "tests.fixtures.common",
    "tests.fixtures.controlplane",
    "tests.fixtures.sshhosts",
    "tests.fixtures.moto_server",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if (
        report.skipped
        and os.environ.get("SPARKUBE_REQUIRE_STANDINS") == "1"
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("e2e") is None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but SPARKUBE_REQUIRE_STANDINS=1 requires it: {reason}"
