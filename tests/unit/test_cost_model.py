"""The cost model against scenarios whose dollars are worked out by hand here, from fixed
timestamps and a fixed price table (no AWS, no cluster: the model is pure)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sparkube.cost import model
from sparkube.cost.ledger import (
    CONTROL_PLANE,
    CREDITS,
    INSTANCE,
    IPV4,
    SPOT,
    VOLUME,
    WORKER,
    CreditCharge,
    Instance,
    Interval,
    Job,
    Ledger,
    LedgerError,
    Pod,
    PriceFact,
    Volume,
)

GIB = 2**30
CP_USD = 0.0416  # t3.medium
W_USD = 0.0832  # t3.large: 2 vCPU, 8 GiB
GB_MONTH = 0.08  # gp3
IP_USD = 0.005
VOL_GB = 20


def t(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 12, 1, hh, mm, tzinfo=UTC)


PRICES = (
    PriceFact(INSTANCE, CP_USD, "test table", instance_type="t3.medium"),
    PriceFact(INSTANCE, W_USD, "test table", instance_type="t3.large"),
    PriceFact(VOLUME, GB_MONTH, "test table", volume_type="gp3"),
    PriceFact(IPV4, IP_USD, "test table"),
)


def node(
    iid: str,
    role: str,
    *running: tuple[datetime, datetime | None],
    itype: str = "t3.large",
    market: str = "on-demand",
    zone: str = "us-east-1a",
    volume_until: datetime | None = None,
    volume_kept: bool = False,
    ipv4: bool = True,
) -> Instance:
    spans = tuple(Interval(a, b) for a, b in running)
    first = spans[0].start
    last = None if volume_kept else volume_until or spans[-1].end
    cpu, mem = (2.0, 4 * GIB) if itype == "t3.medium" else (2.0, 8 * GIB)
    return Instance(
        iid, iid, role, itype, market, zone, cpu, mem, spans,
        volumes=(Volume(f"vol-{iid}", "gp3", VOL_GB, (Interval(first, last),)),),
        public_ipv4=ipv4,
    )  # fmt: skip


def job(jid: str, *pods: tuple[float, float, datetime, datetime | None]) -> Job:
    return Job(
        jid, "app", "Succeeded",
        tuple(Pod(f"{jid}-{n}", "executor", cpu, int(gib * GIB), Interval(a, b))
              for n, (cpu, gib, a, b) in enumerate(pods)),
    )  # fmt: skip


def ledger(*instances: Instance, jobs: tuple[Job, ...] = (), prices=PRICES, at=t(12)) -> Ledger:
    return Ledger("c1", "us-east-1", at, tuple(instances), tuple(prices), jobs)


def vol_usd(hours: float, count: int = 1) -> float:
    return count * VOL_GB * GB_MONTH / 730 * hours


def check_sum(b: model.Breakdown) -> None:
    """jobs + idle + control plane + volumes + addresses = the instances' and other
    resources' cost, exactly."""
    instances = sum(i.usd for i in b.instances)
    assert b.total == pytest.approx(instances + b.volumes + b.addresses, abs=1e-12)
    assert sum(j.usd for j in b.jobs) + b.idle == pytest.approx(
        sum(i.usd for i in b.instances if i.role == WORKER), abs=1e-12
    )
    assert sum(sum(s.usd.values()) for s in b.segments) == pytest.approx(b.total, abs=1e-12)


def test_two_overlapping_jobs() -> None:
    cp = node("cp", CONTROL_PLANE, (t(10), t(12)), itype="t3.medium")
    w1, w2 = node("w1", WORKER, (t(10), t(12))), node("w2", WORKER, (t(10), t(12)))
    a = job("a", (2, 4, t(10), t(11)))  # 2 of 4 cores, 4 of 16 GiB for 1 h
    b = job("b", (1, 8, t(10, 30), t(11, 30)))  # 1 of 4 cores, 8 of 16 GiB for 1 h
    out = model.compute(ledger(cp, w1, w2, jobs=(a, b)))
    workers_per_hour = 2 * W_USD
    a_usd = (2 / 4 + 4 / 16) / 2 * workers_per_hour * 1
    b_usd = (1 / 4 + 8 / 16) / 2 * workers_per_hour * 1
    by_id = {j.job_id: j for j in out.jobs}
    assert by_id["a"].usd == pytest.approx(a_usd, abs=1e-12) == pytest.approx(0.0624)
    assert by_id["b"].usd == pytest.approx(b_usd, abs=1e-12)
    assert by_id["a"].core_hours == pytest.approx(2.0) and by_id["b"].gib_hours == pytest.approx(8)
    assert out.idle == pytest.approx(2 * workers_per_hour - a_usd - b_usd, abs=1e-12)
    assert out.control_plane == pytest.approx(2 * CP_USD, abs=1e-12)
    assert out.volumes == pytest.approx(vol_usd(2, 3), abs=1e-12)
    assert out.addresses == pytest.approx(3 * IP_USD * 2, abs=1e-12)
    assert out.total == pytest.approx(
        2 * (CP_USD + 2 * W_USD) + vol_usd(2, 3) + 3 * IP_USD * 2, abs=1e-12
    )
    assert out.exact
    check_sum(out)


def test_worker_added_mid_job_pays_the_new_price_and_capacity() -> None:
    w1 = node("w1", WORKER, (t(10), t(12)))
    w2 = node("w2", WORKER, (t(11), t(12)))
    j = job("j", (1, 2, t(10, 30), t(11, 30)))
    out = model.compute(ledger(w1, w2, jobs=(j,)))
    before = (1 / 2 + 2 / 8) / 2 * W_USD * 0.5  # one worker: 2 cores, 8 GiB
    after = (1 / 4 + 2 / 16) / 2 * (2 * W_USD) * 0.5  # two workers
    assert out.jobs[0].usd == pytest.approx(before + after, abs=1e-12)
    check_sum(out)


def test_worker_terminated_mid_job() -> None:
    w1 = node("w1", WORKER, (t(10), t(12)))
    w2 = node("w2", WORKER, (t(10), t(11)))
    j = job("j", (1, 2, t(10, 30), t(11, 30)))
    out = model.compute(ledger(w1, w2, jobs=(j,)))
    before = (1 / 4 + 2 / 16) / 2 * (2 * W_USD) * 0.5
    after = (1 / 2 + 2 / 8) / 2 * W_USD * 0.5
    assert out.jobs[0].usd == pytest.approx(before + after, abs=1e-12)
    w2_line = next(i for i in out.instances if i.instance_id == "w2")
    assert w2_line.hours == pytest.approx(1) and w2_line.usd == pytest.approx(W_USD)
    check_sum(out)


def test_stopped_then_started_instance_bills_its_volume_while_stopped() -> None:
    w = node("w", WORKER, (t(10), t(11)), (t(12), t(13)), volume_until=t(13))
    out = model.compute(ledger(w, at=t(13)))
    assert out.instances[0].hours == pytest.approx(2)
    assert out.instances[0].usd == pytest.approx(2 * W_USD, abs=1e-12)
    assert out.volumes == pytest.approx(vol_usd(3), abs=1e-12)  # 3 h: stopped too
    assert out.addresses == pytest.approx(2 * IP_USD, abs=1e-12)  # released while stopped
    assert out.idle == pytest.approx(2 * W_USD, abs=1e-12)
    check_sum(out)


def test_spot_at_the_zones_price_in_force_each_moment() -> None:
    spot = (
        PriceFact(INSTANCE, 0.03, "history", instance_type="t3.large", market=SPOT,
                  zone="us-east-1a", start=t(9, 47), end=t(11)),
        PriceFact(INSTANCE, 0.04, "history", instance_type="t3.large", market=SPOT,
                  zone="us-east-1a", start=t(11), end=t(12)),
        PriceFact(INSTANCE, 0.025, "history", instance_type="t3.large", market=SPOT,
                  zone="us-east-1a", start=t(12)),
        PriceFact(INSTANCE, 0.5, "history", instance_type="t3.large", market=SPOT,
                  zone="us-east-1b", start=t(9)),
    )  # fmt: skip
    w = node("w", WORKER, (t(10, 30), t(12, 30)), market=SPOT, ipv4=False)
    out = model.compute(ledger(w, prices=PRICES + spot, at=t(13)))
    assert out.instances[0].usd == pytest.approx(0.5 * 0.03 + 1 * 0.04 + 0.5 * 0.025, abs=1e-12)
    assert model.rate(ledger(w, prices=PRICES + spot, at=t(12, 15))).instances == 0.025
    check_sum(out)


def test_a_job_that_ended_unwatched_stops_costing_at_its_end() -> None:
    w = node("w", WORKER, (t(10), None))
    j = job("j", (2, 8, t(10), t(10, 45)))  # the whole worker for 45 minutes
    out = model.compute(ledger(w, jobs=(j,), at=t(14)))
    assert out.jobs[0].end == t(10, 45)
    assert out.jobs[0].usd == pytest.approx(W_USD * 0.75, abs=1e-12)
    assert out.idle == pytest.approx(W_USD * 3.25, abs=1e-12)
    check_sum(out)


def test_a_price_that_cannot_be_known_is_unknown_not_zero() -> None:
    prices = (
        PriceFact(INSTANCE, CP_USD, "test table", instance_type="t3.medium"),
        PriceFact(INSTANCE, None, "AWS Price List", instance_type="t3.large",
                  reason="the Price List API refused: AccessDenied"),
        PriceFact(VOLUME, GB_MONTH, "test table", volume_type="gp3"),
        PriceFact(IPV4, IP_USD, "test table"),
    )  # fmt: skip
    cp = node("cp", CONTROL_PLANE, (t(10), t(12)), itype="t3.medium")
    w = node("w", WORKER, (t(10), t(12)))
    j = job("j", (1, 1, t(10), t(11)))
    out = model.compute(ledger(cp, w, jobs=(j,), prices=prices))
    assert not out.exact
    assert "the Price List API refused: AccessDenied" in out.unknown
    line = next(i for i in out.instances if i.instance_id == "w")
    assert not line.exact and line.usd == 0.0
    assert not out.jobs[0].exact
    # what is known is still counted: a lower bound
    assert out.total == pytest.approx(2 * CP_USD + vol_usd(2, 2) + 2 * 2 * IP_USD, abs=1e-12)
    assert not model.rate(ledger(cp, w, prices=prices, at=t(11))).exact


def test_a_missing_spot_price_is_unknown_with_the_zone() -> None:
    w = node("w", WORKER, (t(10), t(11)), market=SPOT, zone="eu-west-1c")
    out = model.compute(ledger(w, at=t(11)))
    assert not out.exact
    assert out.unknown == ["no spot price of t3.large in eu-west-1c at 2026-12-01 10:00 UTC"]


def test_since_window_cuts_a_job() -> None:
    w = node("w", WORKER, (t(10), t(12)))
    j = job("j", (2, 8, t(10), t(12)))
    out = model.compute(ledger(w, jobs=(j,)), since=t(11))
    assert out.jobs[0].usd == pytest.approx(W_USD * 1, abs=1e-12)
    assert out.jobs[0].core_hours == pytest.approx(2.0)
    assert out.instances[0].hours == pytest.approx(1.0)
    assert out.volumes == pytest.approx(vol_usd(1), abs=1e-12)
    check_sum(out)


def test_more_reserved_than_exists_is_shared_pro_rata() -> None:
    w = node("w", WORKER, (t(10), t(11)), ipv4=False)
    a = job("a", (2, 8, t(10), t(11)))
    b = job("b", (2, 8, t(10), t(11)))
    out = model.compute(ledger(w, jobs=(a, b), at=t(11)))
    assert [j.usd for j in out.jobs] == [pytest.approx(W_USD / 2), pytest.approx(W_USD / 2)]
    assert out.idle == pytest.approx(0.0, abs=1e-12)
    check_sum(out)


def test_unlimited_credits_unread_make_totals_lower_bounds() -> None:
    w = node("w", WORKER, (t(10), t(11)))
    w = dataclasses.replace(w, cpu_credits="unlimited")  # surplus_credits None: not read
    out = model.compute(ledger(w, at=t(11)))
    assert not out.exact and "could not be read" in out.unknown[0]


def test_surplus_credits_charged_add_to_their_instance_and_its_jobs() -> None:
    credit_usd = PriceFact(CREDITS, 0.05, "test table")  # per vCPU-hour: 1/60 per credit
    w = dataclasses.replace(
        node("w", WORKER, (t(10), t(12)), ipv4=False),
        cpu_credits="unlimited",
        surplus_credits=(CreditCharge(t(10), t(11), 48.0),),  # 0.8 vCPU-hours
    )
    j = job("j", (2, 8, t(10, 30), t(11)))  # the whole worker for half of that hour
    out = model.compute(ledger(w, jobs=(j,), prices=(*PRICES, credit_usd)))
    credits = 48 * 0.05 / 60
    assert out.exact
    assert out.instances[0].usd == pytest.approx(2 * W_USD + credits, abs=1e-12)
    assert out.jobs[0].usd == pytest.approx(0.5 * (W_USD + credits), abs=1e-12)
    assert model.rate(ledger(w, prices=(*PRICES, credit_usd), at=t(11, 30))).instances == W_USD
    check_sum(out)
    again = Ledger.loads(ledger(w, jobs=(j,), prices=(*PRICES, credit_usd)).dumps())
    assert again.instances[0].surplus_credits == w.surplus_credits


def test_rate_now_counts_running_instances_volumes_and_addresses() -> None:
    cp = node("cp", CONTROL_PLANE, (t(10), None), itype="t3.medium")
    w = node("w", WORKER, (t(10), t(11)), volume_kept=True)  # stopped, volume kept
    r = model.rate(ledger(cp, w, at=t(12)))
    assert r.instances == pytest.approx(CP_USD)
    assert r.addresses == pytest.approx(IP_USD)
    assert r.volumes == pytest.approx(2 * VOL_GB * GB_MONTH / 730)
    assert r.exact


def test_the_ledger_round_trips_through_json_and_refuses_other_schemas() -> None:
    cp = node("cp", CONTROL_PLANE, (t(10), None), itype="t3.medium")
    j = job("j", (1, 1.5, t(10), None))
    led = ledger(cp, jobs=(j,))
    again = Ledger.loads(led.dumps())
    assert again == led
    assert model.compute(again).total == model.compute(led).total
    with pytest.raises(LedgerError, match="schema"):
        Ledger.loads('{"schema": "sparkube.ledger/99"}')
    with pytest.raises(LedgerError, match="role"):
        Ledger.from_json({**led.to_json(), "instances": [{**cp.to_json(), "role": "boss"}]})
    with pytest.raises(LedgerError, match="time zone"):
        Ledger.from_json({**led.to_json(), "generated": "2026-12-01T10:00:00"})


def test_every_segment_adds_up_over_a_long_random_history() -> None:
    """Many jobs, workers coming and going: the lines always add up to the total."""
    import random

    rng = random.Random(7)
    base = t(0)
    instances = [node("cp", CONTROL_PLANE, (base, None), itype="t3.medium")]
    for n in range(6):
        a = base + timedelta(minutes=rng.randrange(0, 600))
        instances.append(node(f"w{n}", WORKER, (a, a + timedelta(minutes=rng.randrange(30, 600)))))
    jobs = tuple(
        job(f"j{n}", (rng.choice([0.5, 1, 2]), rng.choice([1, 2, 4]),
                      (s := base + timedelta(minutes=rng.randrange(0, 900))),
                      s + timedelta(minutes=rng.randrange(1, 200))))
        for n in range(25)
    )  # fmt: skip
    out = model.compute(ledger(*instances, jobs=jobs, at=t(20)), since=t(2))
    check_sum(out)
    assert out.idle >= -1e-12


def test_a_job_on_workers_the_ledger_does_not_know_is_unknown_not_free() -> None:
    cp = node("cp", CONTROL_PLANE, (t(10), t(12)), itype="t3.medium")
    j = job("j", (1, 1, t(10), t(11)))
    out = model.compute(ledger(cp, jobs=(j,)))
    assert not out.exact and not out.jobs[0].exact and out.jobs[0].usd == 0.0
    assert "no running worker" in out.unknown[0]


def test_a_credit_hour_that_began_before_the_run_counts_whole() -> None:
    """CloudWatch stamps an hour's charge at the hour; a node started at 10:40 may be
    charged for the hour 10:00–11:00."""
    credit_usd = PriceFact(CREDITS, 0.05, "test table")
    w = dataclasses.replace(
        node("w", WORKER, (t(10, 40), t(12)), ipv4=False),
        cpu_credits="unlimited",
        surplus_credits=(CreditCharge(t(10), t(11), 30.0),),
    )
    out = model.compute(ledger(w, prices=(*PRICES, credit_usd)))
    assert out.instances[0].usd == pytest.approx(W_USD * 80 / 60 + 30 * 0.05 / 60, abs=1e-12)
    check_sum(out)


def test_scaling_what_the_added_worker_cost_and_what_scaling_saved() -> None:
    """Two workers from 10:00 to 12:00; the group added a third (named by its instance
    id) from 10:30 to 11:00. The workers ran 4.5 worker-hours; sized for the peak of
    three all along, 6: scaling saved 1.5 worker-hours. One job waited 10 minutes."""
    from sparkube.cost.ledger import ScaleEvent

    cp = node("cp", CONTROL_PLANE, (t(10), t(12)), itype="t3.medium")
    w1, w2 = node("w1", WORKER, (t(10), t(12))), node("w2", WORKER, (t(10), t(12)))
    added = dataclasses.replace(node("i-0abc", WORKER, (t(10, 30), t(11))), name="i-0abc")
    waited = dataclasses.replace(
        job("a", (2, 4, t(10, 35), t(10, 55))), queued=Interval(t(10, 25), t(10, 35))
    )
    events = (
        ScaleEvent(t(10, 25), "grow", 2, 3, maximum=3, reason="job a needs 1 more worker(s)"),
        ScaleEvent(t(11), "shrink", 3, 2, maximum=3, instance="i-0abc", node="i-0abc"),
    )
    led = dataclasses.replace(ledger(cp, w1, w2, added, jobs=(waited,)), scaling=events)
    s = model.scaling(led, model.compute(led))
    assert (s.grew, s.shrank, s.added, s.peak_workers) == (1, 1, ["i-0abc"], 3)
    assert s.added_hours == pytest.approx(0.5)
    assert s.added_usd == pytest.approx(0.5 * W_USD)
    assert s.worker_hours == pytest.approx(4.5)
    assert s.workers_usd == pytest.approx(4.5 * W_USD)
    assert s.fixed_usd == pytest.approx(6 * W_USD)
    assert s.saved_usd == pytest.approx(1.5 * W_USD)
    assert (s.queued_jobs, s.queued_seconds) == (1, 600.0)
    # a window after all of it: nothing grew, nothing waited
    late = model.compute(led, since=t(11, 30))
    s = model.scaling(led, late)
    assert (s.grew, s.shrank, s.queued_jobs, s.peak_workers) == (0, 0, 0, 2)
    assert s.saved_usd == pytest.approx(0.0)
    # the events and the wait go through the ledger file unchanged
    again = Ledger.loads(led.dumps())
    assert again.scaling == events and again.jobs[0].queued == Interval(t(10, 25), t(10, 35))
    with pytest.raises(LedgerError, match="kind 'explode'"):
        Ledger.loads(led.dumps().replace('"kind": "grow"', '"kind": "explode"'))


# --- what spot saved against on-demand ---------------------------------------------------

SPOT_PRICES = (
    PriceFact(INSTANCE, 0.03, "history", instance_type="t3.large", market=SPOT,
              zone="us-east-1a", start=t(9), end=t(11)),
    PriceFact(INSTANCE, 0.04, "history", instance_type="t3.large", market=SPOT,
              zone="us-east-1a", start=t(11)),
)  # fmt: skip


def test_spot_saved_per_job_and_in_all() -> None:
    """One on-demand worker w1 (10:00–12:00) and one spot worker w2 (10:00–11:30, spot
    $0.03 until 11:00, then $0.04; on-demand $0.0832), each 2 cores and 8 GiB. Job a
    reserves 1 core and 4 GiB from 10:30 to 11:30, a quarter of both workers; job b the
    whole of w1 from 11:30 to 12:00, when no spot worker runs."""
    cp = node("cp", CONTROL_PLANE, (t(10), t(12)), itype="t3.medium")
    w1 = node("w1", WORKER, (t(10), t(12)))
    w2 = node("w2", WORKER, (t(10), t(11, 30)), market=SPOT)
    a = job("a", (1, 4, t(10, 30), t(11, 30)))
    b = job("b", (2, 8, t(11, 30), t(12)))
    out = model.compute(ledger(cp, w1, w2, jobs=(a, b), prices=PRICES + SPOT_PRICES))
    assert out.exact and out.spot_unknown == []
    check_sum(out)
    by_id = {j.job_id: j for j in out.jobs}
    # a: (1/4 + 4/16) / 2 = 1/4 of the workers; half an hour at each spot price
    share = (1 / 4 + 4 / 16) / 2
    a_usd = share * ((W_USD + 0.03) * 0.5 + (W_USD + 0.04) * 0.5)  # 0.02955
    a_on_demand = share * 2 * W_USD * 1  # 0.0416
    assert by_id["a"].usd == pytest.approx(a_usd, abs=1e-12) == pytest.approx(0.02955)
    assert by_id["a"].on_spot
    assert by_id["a"].on_demand_usd == pytest.approx(a_on_demand, abs=1e-12)
    saved = share * ((W_USD - 0.03) * 0.5 + (W_USD - 0.04) * 0.5)  # 0.01205
    assert by_id["a"].spot_saved_usd == pytest.approx(saved, abs=1e-12)
    assert saved == pytest.approx(0.01205, abs=1e-12)
    # b: no spot worker ran while it did: no saving, not "saved $0"
    assert not by_id["b"].on_spot and by_id["b"].spot_saved_usd is None
    assert by_id["b"].usd == pytest.approx(W_USD * 0.5, abs=1e-12)
    assert by_id["b"].on_demand_usd == pytest.approx(by_id["b"].usd, abs=1e-12)
    # in all: w2 ran 1.5 h, $0.03 + 0.5 × $0.04 = $0.05; on-demand 1.5 × $0.0832
    s = model.spot(out)
    assert s is not None and s.exact and s.unknown == []
    assert s.worker_hours == pytest.approx(1.5)
    assert s.usd == pytest.approx(0.03 + 0.5 * 0.04, abs=1e-12)
    assert s.on_demand_usd == pytest.approx(1.5 * W_USD, abs=1e-12) == pytest.approx(0.1248)
    assert s.saved_usd == pytest.approx(0.1248 - 0.05, abs=1e-12)
    w2_line = next(i for i in out.instances if i.instance_id == "w2")
    assert w2_line.on_demand_usd == pytest.approx(0.1248, abs=1e-12)
    assert next(i for i in out.instances if i.instance_id == "w1").on_demand_usd is None


def test_a_ledger_without_the_spot_types_on_demand_price_leaves_the_saving_unknown() -> None:
    """A ledger gathered before the on-demand price of spot types was recorded: every
    cost is still exact; only what spot saved is unknown, and says why."""
    old = tuple(p for p in PRICES if p.instance_type != "t3.large") + SPOT_PRICES
    cp = node("cp", CONTROL_PLANE, (t(10), t(12)), itype="t3.medium")
    w = node("w", WORKER, (t(10), t(12)), market=SPOT)
    j = job("j", (2, 8, t(10), t(12)))  # the whole spot worker for 2 h
    led = Ledger.loads(ledger(cp, w, jobs=(j,), prices=old).dumps())
    out = model.compute(led)
    assert out.exact and out.unknown == []
    assert out.jobs[0].usd == pytest.approx(0.03 + 0.04, abs=1e-12) and out.jobs[0].exact
    assert out.jobs[0].on_spot and out.jobs[0].spot_saved_usd is None
    assert out.jobs[0].on_demand_usd is None
    s = model.spot(out)
    assert s is not None and s.exact  # its spot cost is known
    assert s.usd == pytest.approx(0.07, abs=1e-12) and s.worker_hours == pytest.approx(2)
    assert s.on_demand_usd is None and s.saved_usd is None
    assert s.unknown == [model.NO_ON_DEMAND.format(itype="t3.large")]
    check_sum(out)
    # an unknown spot price: its cost is a lower bound, the saving unknown
    out = model.compute(ledger(cp, w, jobs=(j,), prices=PRICES))
    s = model.spot(out)
    assert s is not None and not s.exact and s.saved_usd is None
    assert s.on_demand_usd == pytest.approx(2 * W_USD, abs=1e-12)
    assert s.unknown == ["a spot price of t3.large in us-east-1a is unknown"]
    assert out.jobs[0].spot_saved_usd is None and not out.jobs[0].exact


def test_no_spot_instance_no_spot_figures() -> None:
    w = node("w", WORKER, (t(10), t(12)))
    j = job("j", (1, 2, t(10), t(11)))
    out = model.compute(ledger(w, jobs=(j,), prices=PRICES + SPOT_PRICES))
    assert model.spot(out) is None and out.spot_unknown == []
    assert not out.jobs[0].on_spot and out.jobs[0].spot_saved_usd is None
    assert out.jobs[0].on_demand_usd == pytest.approx(out.jobs[0].usd, abs=1e-12)


def test_prices_gather_the_on_demand_price_of_spot_types_too() -> None:
    from sparkube.cost import prices

    class Ec2:
        def get_paginator(self, name: str) -> Any:
            assert name == "describe_spot_price_history"
            return self

        def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
            assert kwargs["InstanceTypes"] == ["t3.large"]
            point = {"AvailabilityZone": "us-east-1a", "SpotPrice": "0.0300", "Timestamp": t(9)}
            return [{"SpotPriceHistory": [point]}]

    class Clients:
        ec2 = Ec2()

        def client(self, service: str, **_: Any) -> Any:
            raise OSError("no Price List here")  # the bundled table answers

    cp = node("cp", CONTROL_PLANE, (t(10), None), itype="t3.medium")
    w = node("w", WORKER, (t(10), None), market=SPOT)
    facts = prices.for_instances(Clients(), "us-east-1", [cp, w], t(10), t(12))
    instance = {(f.instance_type, f.market): f.usd for f in facts if f.kind == INSTANCE}
    assert instance == {
        ("t3.medium", "on-demand"): CP_USD,
        ("t3.large", "on-demand"): W_USD,  # what the spot worker would cost on-demand
        ("t3.large", SPOT): 0.03,
    }
