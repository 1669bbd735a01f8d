"""Per-job cost maths against hand-computed expectations (sparkube.monitoring.cost)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sparkube.monitoring.cost import GIB, PricedNode, cluster_cost, job_cost
from sparkube.monitoring.usage import job_requests
from sparkube.spark.cluster import JobRecord

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


CP = PricedNode("control-plane", 0.0416, 0, 0, start=h(-1))


def worker(name: str, start: float, price: float = 0.0416, end: float | None = None) -> PricedNode:
    return PricedNode(name, price, 2.0, 4 * GIB, h(start), h(end) if end is not None else None)


def test_steady_cluster() -> None:
    nodes = [CP, worker("w1", -1), worker("w2", -1)]
    # 1 core + 2 GiB of 4 cores + 8 GiB for 1 h: share (1/4 + 2/8) / 2 = 0.25 of $0.1248/h
    cost = job_cost(nodes, h(0), h(1), 1.0, 2 * GIB)
    assert cost.usd == pytest.approx(0.25 * 0.1248)
    assert (cost.core_hours, cost.gib_hours, cost.hours) == (1.0, 2.0, 1.0)


def test_job_spanning_a_worker_being_added() -> None:
    nodes = [CP, worker("w1", -1), worker("w2", 0.5)]
    # first half hour: 1 worker (2 cores, 4 GiB), price 0.0832; share (1/2 + 2/4)/2 = 0.5
    # second half hour: 2 workers, price 0.1248; share 0.25
    cost = job_cost(nodes, h(0), h(1), 1.0, 2 * GIB)
    assert cost.usd == pytest.approx(0.5 * 0.0832 * 0.5 + 0.5 * 0.1248 * 0.25)


def test_job_still_running_is_costed_up_to_now() -> None:
    nodes = [CP, worker("w1", -1), worker("w2", -1)]
    now = h(0.25)
    cost = job_cost(nodes, h(0), now, 2.0, 4 * GIB)  # share 0.5
    assert cost.usd == pytest.approx(0.25 * 0.1248 * 0.5)
    assert cost.hours == pytest.approx(0.25)


def test_spot_cluster_uses_spot_prices() -> None:
    spot = [CP, worker("w1", -1, price=0.0125), worker("w2", -1, price=0.0125)]
    cost = job_cost(spot, h(0), h(2), 4.0, 8 * GIB)  # the whole cluster: share 1
    assert cost.usd == pytest.approx(2 * (0.0416 + 0.025))


def test_a_worker_removed_during_the_job() -> None:
    nodes = [CP, worker("w1", -1), worker("w2", -1, end=0.5)]
    cost = job_cost(nodes, h(0), h(1), 2.0, 4 * GIB)
    # 0.5 h at 0.1248 with share 0.5, then 0.5 h at 0.0832 with share 1
    assert cost.usd == pytest.approx(0.5 * 0.1248 * 0.5 + 0.5 * 0.0832 * 1.0)


def test_cluster_cost_so_far() -> None:
    nodes = [CP, worker("w1", -1), worker("w2", 0.5)]
    assert cluster_cost(nodes, h(-1), h(1)) == pytest.approx(2 * 0.0416 * 2 + 0.5 * 0.0416)


def test_job_requests_driver_plus_executors() -> None:
    rec = JobRecord("j", "a", "submit", "Succeeded", "2026-12-02T12:00:00Z", executors=2,
                    executor_cores=1, executor_memory="1g")  # fmt: skip
    cpu, mem = job_requests(rec)
    assert cpu == 2.5  # driver 500m + 2 x 1 core
    assert mem == (1408 + 2 * 1408) * 2**20  # 1g heap + 384 MiB overhead each


def test_requested_cpu_over_the_window_and_chart(tmp_path: object) -> None:
    from pathlib import Path

    from sparkube.monitoring.usage import JobUsage, UsageReport, requested_over_time, write_chart

    def job(i: int, start: str, end: str | None, cpu: float) -> JobUsage:
        return JobUsage(f"job-{i}", "a.py", "Succeeded" if end else "Running", start, end,
                        0, 1, cpu, 0, 0, 0, 0.01)  # fmt: skip

    report = UsageReport(
        cluster="c", generated="2026-12-02T14:00:00Z", since="2026-12-02T12:00:00Z",
        metrics_available=False, metrics_message="", usd_per_hour=0.1, usd_so_far=0.2,
        market="on-demand", uptime_hours=2,
        jobs=[job(1, "2026-12-02T12:30:00Z", "2026-12-02T13:30:00Z", 2.5),
              job(2, "2026-12-02T13:00:00Z", None, 1.5),
              job(3, "2026-12-02T10:00:00Z", "2026-12-02T12:15:00Z", 1.0)],
    )  # fmt: skip
    times, values = requested_over_time(report)
    at = {t.strftime("%H:%M"): v for t, v in zip(times, values, strict=True)}
    assert at["12:15"] == 0.0  # job 3 (clipped to the window) ended
    assert at["13:00"] == 4.0  # jobs 1 and 2 together
    assert at["13:30"] == 1.5 and at["14:00"] == 1.5  # job 2 still running
    assert max(values) == 4.0
    png = Path(str(tmp_path)) / "u.png"
    write_chart(report, png)
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
