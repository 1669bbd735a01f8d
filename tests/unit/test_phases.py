"""The up pipeline: registry, --until, timing, failures, address overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sparkube import phases
from sparkube.env import Environment
from sparkube.errors import CloudError, UsageError
from sparkube.model import ClusterInfo, Node
from sparkube.progress import RecordingReporter
from sparkube.spec import ClusterSpec


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, phases.Phase]:
    table: dict[str, phases.Phase] = {}
    monkeypatch.setattr(phases, "_REGISTRY", table)
    monkeypatch.setattr(phases, "_loaded", True)
    return table


def _phase(name: str, calls: list[str], fail: bool = False) -> phases.Phase:
    def run(ctx: phases.PhaseContext) -> str:
        calls.append(name)
        if fail:
            raise CloudError(f"{name} broke.")
        return f"{name} done"

    return phases.Phase(name, f"the {name} phase", run)


class FakeProvider:
    def __init__(self, done: str | None = None) -> None:
        self.recorded: list[str] = []
        self.done = done

    def describe(self, name: str) -> ClusterInfo:
        tags = {"sparkube:done": self.done} if self.done else {}
        return ClusterInfo(
            name,
            "us-east-1",
            nodes=(Node("worker-1", "worker", public_ip="1.2.3.4"),),
            security_group_id="sg-1",
            tags=tags,
        )

    def record_done(self, info: ClusterInfo, phase: str) -> ClusterInfo:
        self.recorded.append(phase)
        return dataclasses.replace(info, tags={**info.tags, "sparkube:done": phase})


def _ctx(
    sparkube_env: Environment, reporter: Any, provider: Any = None, **kw: Any
) -> phases.PhaseContext:
    return phases.PhaseContext(
        spec=ClusterSpec(),
        env=sparkube_env,
        reporter=reporter,
        provider=provider or FakeProvider(),
        **kw,
    )


def test_only_registered_phases_run_in_pipeline_order(
    registry: dict[str, phases.Phase], sparkube_env: Environment
) -> None:
    calls: list[str] = []
    phases.register(_phase("nodes", calls))
    phases.register(_phase("infra", calls))
    assert [p.name for p in phases.available()] == ["infra", "nodes"]
    reporter = RecordingReporter()
    results = phases.run_up(_ctx(sparkube_env, reporter))
    assert calls == ["infra", "nodes"]
    assert [r.summary for r in results] == ["infra done", "nodes done"]
    assert [e[0] for e in reporter.events] == ["started", "done", "started", "done"]
    calls.clear()
    phases.run_up(_ctx(sparkube_env, reporter), until="infra")
    assert calls == ["infra"]


def test_until_a_phase_that_is_not_available(
    registry: dict[str, phases.Phase], sparkube_env: Environment
) -> None:
    phases.register(_phase("infra", []))
    with pytest.raises(UsageError, match=r"'addons' is not available.*accepts infra"):
        phases.select("addons")
    with pytest.raises(UsageError, match="Unknown phase 'infr'"):
        phases.select("infr")
    with pytest.raises(ValueError):
        phases.register(_phase("dance", []))


def test_a_failing_phase_is_reported_and_stops_the_pipeline(
    registry: dict[str, phases.Phase], sparkube_env: Environment
) -> None:
    calls: list[str] = []
    phases.register(_phase("infra", calls, fail=True))
    phases.register(_phase("nodes", calls))
    reporter = RecordingReporter()
    with pytest.raises(CloudError):
        phases.run_up(_ctx(sparkube_env, reporter))
    assert calls == ["infra"]
    assert reporter.events[-1] == ("failed", "infra", "infra broke.")


def test_address_overrides_apply_to_the_cluster(sparkube_env: Environment) -> None:
    ctx = _ctx(sparkube_env, RecordingReporter(), address_overrides={"worker-1": "10.200.0.3:2222"})
    (node,) = ctx.cluster.nodes
    assert (node.address, node.ssh_port) == ("10.200.0.3", 2222)


def test_parse_addresses() -> None:
    assert phases.parse_addresses("control-plane=10.0.0.2:22, worker-1=10.0.0.3") == {
        "control-plane": "10.0.0.2:22",
        "worker-1": "10.0.0.3",
    }
    assert phases.parse_addresses("") == {}
    with pytest.raises(UsageError):
        phases.parse_addresses("worker-1")


def test_infra_is_registered_by_default() -> None:
    assert phases.available()[0].name == "infra"


def test_completed_phases_are_recorded_once_and_reset_when_nodes_change(
    registry: dict[str, phases.Phase], sparkube_env: Environment
) -> None:
    calls: list[str] = []
    for name in ("infra", "nodes", "kubernetes"):
        phases.register(_phase(name, calls))
    fresh = FakeProvider()
    phases.run_up(_ctx(sparkube_env, RecordingReporter(), fresh))
    assert fresh.recorded == ["nodes", "kubernetes"]  # AWS itself shows infra is done

    complete = FakeProvider(done="kubernetes")
    phases.run_up(_ctx(sparkube_env, RecordingReporter(), complete))
    assert complete.recorded == []  # a re-run of a complete cluster writes nothing

    failing = FakeProvider(done="infra")
    phases.register(_phase("kubernetes", calls, fail=True))
    with pytest.raises(CloudError):
        phases.run_up(_ctx(sparkube_env, RecordingReporter(), failing))
    assert failing.recorded == ["nodes"]

    def grows(ctx: phases.PhaseContext) -> str:
        ctx.nodes_changed = True  # what infra does when it launched instances
        return "grown"

    phases.register(phases.Phase("infra", "grows", grows))
    phases.register(_phase("kubernetes", calls))
    grown = FakeProvider(done="kubernetes")
    phases.run_up(_ctx(sparkube_env, RecordingReporter(), grown))
    assert grown.recorded == ["infra", "nodes", "kubernetes"]  # reset, then done again
