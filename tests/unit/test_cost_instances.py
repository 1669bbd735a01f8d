"""Billed intervals from EC2's view and the bucket's records (sparkube.cost.instances):
pure functions, EC2's answers written here as EC2 gives them."""

from __future__ import annotations

from datetime import UTC, datetime

from sparkube.cost.instances import merge_intervals, transition_time
from sparkube.cost.ledger import Interval


def t(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 12, 1, hh, mm, tzinfo=UTC)


def test_transition_time_reads_ec2s_reason_in_gmt_or_utc() -> None:
    assert transition_time("User initiated (2026-12-01 10:15:00 GMT)") == t(10, 15)
    assert transition_time("User initiated (2026-12-01 10:15:00 UTC)") == t(10, 15)
    assert transition_time("Server.SpotInstanceTermination") is None
    assert transition_time("") is None and transition_time(None) is None


def test_a_new_start_closes_the_recorded_run_at_its_recorded_end() -> None:
    recorded = (Interval(t(10), t(11)),)
    runs, notes = merge_intervals(recorded, Interval(t(12), None), "i-1")
    assert runs == (Interval(t(10), t(11)), Interval(t(12), None)) and notes == []


def test_ec2s_current_run_replaces_the_recorded_one_it_knows_better() -> None:
    recorded = (Interval(t(10), None),)
    runs, _ = merge_intervals(recorded, Interval(t(10), t(11, 30)), "i-1")
    assert runs == (Interval(t(10), t(11, 30)),)


def test_an_unseen_stop_is_counted_as_running_and_said() -> None:
    recorded = (Interval(t(10), None),)
    runs, notes = merge_intervals(recorded, Interval(t(12), None), "i-1")
    assert runs == (Interval(t(10), t(12)), Interval(t(12), None))
    assert "without sparkube seeing when" in notes[0] and "upper bound" in notes[0]


def test_nothing_from_ec2_keeps_the_record() -> None:
    recorded = (Interval(t(10), t(11)),)
    assert merge_intervals(recorded, None, "i-1") == (recorded, [])
