"""The ledger's instance facts on moto over HTTP: ``up`` and ``down`` record each
instance's billed intervals in the bucket; ``status`` and ``usage`` price them with the
one cost model, agree, and write nothing.

moto stand-in note: moto keeps an instance's ``LaunchTime`` when it is started again,
where EC2 sets it to the new start; the stop-start test sets it as EC2 would, in moto's
backend (same process), and says so where it does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from sparkube.aws.session import CallCounter, observe_calls
from sparkube.cost import model
from sparkube.cost.instances import KEY
from sparkube.cost.ledger import Instance, Ledger
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import REGION, MotoAws

pytestmark = pytest.mark.integration

CIDR = "203.0.113.7/32"
Cli = Callable[..., CliResult]


def _client(moto_aws: MotoAws, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto_aws.url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def _bucket(s3: Any) -> str:
    names = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("sparkube-")]
    assert len(names) == 1, names
    return str(names[0])


def _recorded(s3: Any) -> dict[str, Instance]:
    text = s3.get_object(Bucket=_bucket(s3), Key=KEY)["Body"].read()
    out = {}
    for n, data in enumerate(json.loads(text)["instances"]):
        inst = Instance.from_json(data, f"instances[{n}]")
        out[inst.instance_id] = inst
    return out


def _up(cli: Cli, moto_aws: MotoAws) -> None:
    result = cli("up", "--until", "infra", "--allow-cidr", CIDR, "--workers", "1",
                 "--root-volume-gb", "30", env=moto_aws.env)  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_up_records_instances_and_status_prices_them_with_the_model(
    cli: Cli, moto_aws: MotoAws
) -> None:
    _up(cli, moto_aws)
    s3 = _client(moto_aws, "s3")
    recorded = _recorded(s3)
    assert sorted(i.role for i in recorded.values()) == ["control-plane", "worker"]
    for inst in recorded.values():
        assert len(inst.running) == 1 and inst.running[0].end is None
        assert [(v.volume_type, v.size_gb) for v in inst.volumes] == [("gp3", 30)]
        assert inst.vcpus == 2 and inst.memory_bytes == 4 * 2**30  # t3.medium
    status = cli("status", "-o", "json", env=moto_aws.env)
    assert status.exit_code == 0, status.stderr
    doc = json.loads(status.stdout)
    # the one model over the recorded facts and the bundled prices (moto has no Price List)
    ledger = Ledger.loads(_export(cli, moto_aws))
    assert ledger.instances and {i.instance_id for i in ledger.instances} == set(recorded)
    rate = model.rate(ledger)
    public = sum(1 for i in ledger.instances if i.public_ipv4)
    assert rate.instances == pytest.approx(2 * 0.0416)
    assert rate.addresses == pytest.approx(public * 0.005)
    gp3 = next(p.usd for p in ledger.prices if p.kind == "volume")
    assert gp3 is not None
    assert rate.volumes == pytest.approx(2 * 30 * gp3 / 730)
    assert doc["usd_per_hour"] == pytest.approx(round(rate.total, 4))
    assert doc["cost_exact"] is True and doc["cost_unknown"] == []


def _export(cli: Cli, moto_aws: MotoAws, *args: str) -> str:
    path = moto_aws.env.cwd / "ledger.json"
    result = cli("usage", "--since", "all", "--export-ledger", str(path), "-o", "json", *args,
                 env=moto_aws.env)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return path.read_text()


def test_status_and_usage_agree_and_write_nothing(cli: Cli, moto_aws: MotoAws) -> None:
    _up(cli, moto_aws)
    counter = CallCounter()
    with observe_calls(counter):
        before = datetime.now(UTC)
        status = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
        usage = json.loads(cli("usage", "--since", "all", "-o", "json", env=moto_aws.env).stdout)
        after = datetime.now(UTC)
        jobs = cli("jobs", env=moto_aws.env)
        assert jobs.exit_code == 0, jobs.stderr
    assert counter.total > 0
    assert counter.writes() == {}, counter.writes()
    # the same model over the same facts: equal up to what the cluster costs in the
    # moments between the two calls
    drift = usage["cost"]["usd_per_hour"] * (after - before).total_seconds() / 3600
    assert usage["cost"]["cluster_total_usd"] == pytest.approx(
        status["usd_so_far"], abs=drift + 1e-4
    )
    assert usage["cost"]["usd_per_hour"] == pytest.approx(status["usd_per_hour"], abs=1e-4)
    assert usage["exact"] is True
    total = usage["cost"]
    assert total["total_usd"] == pytest.approx(
        total["jobs_usd"] + total["idle_usd"] + total["control_plane_usd"]
        + total["volumes_usd"] + total["addresses_usd"]
    )  # fmt: skip


def test_a_stopped_then_started_instance_keeps_its_stopped_interval(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.utils import utcnow
    from moto.ec2.models.instances import Instance as MotoInstance

    # moto stand-in: EC2 sets LaunchTime to the new start when an instance starts again;
    # moto keeps the first one. The server runs in this process: make it do as EC2 does.
    moto_start = MotoInstance.start

    def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = moto_start(self, *args, **kwargs)
        self.launch_time = utcnow()
        return out

    monkeypatch.setattr(MotoInstance, "start", start)
    _up(cli, moto_aws)
    ec2 = _client(moto_aws, "ec2")
    s3 = _client(moto_aws, "s3")
    worker = next(i for i in _recorded(s3).values() if i.role == "worker")
    ec2.stop_instances(InstanceIds=[worker.instance_id])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[worker.instance_id],
                                            WaiterConfig={"Delay": 1})  # fmt: skip
    assert _recorded(s3)[worker.instance_id].running[-1].end is None  # not recorded yet
    # usage sees the stop in EC2, without writing it
    facts = Ledger.loads(_export(cli, moto_aws))
    seen = next(i for i in facts.instances if i.instance_id == worker.instance_id)
    stopped_at = seen.running[-1].end
    assert stopped_at is not None
    assert _recorded(s3)[worker.instance_id].running[-1].end is None
    _up(cli, moto_aws)  # records the stop, then starts it again
    runs = _recorded(s3)[worker.instance_id].running
    assert len(runs) == 2, runs
    assert runs[0] == seen.running[-1]  # from the first start to the stop EC2 reported
    assert runs[1].start >= stopped_at and runs[1].end is None


def test_down_keep_data_records_the_end_and_the_ledger_recomputes_offline(
    cli: Cli, moto_aws: MotoAws
) -> None:
    _up(cli, moto_aws)
    s3 = _client(moto_aws, "s3")
    result = cli("down", "--yes", "--keep-data", env=moto_aws.env)
    assert result.exit_code == 0, result.stderr
    recorded = _recorded(s3)
    assert len(recorded) == 2
    for inst in recorded.values():
        assert inst.running[-1].end is not None
        assert all(v.existed[-1].end is not None for v in inst.volumes)
    led = Ledger(
        "sparkube", REGION, datetime.now(UTC) + timedelta(hours=5), tuple(recorded.values()),
        prices=Ledger.loads(_export_after_down(cli, moto_aws)).prices,
    )  # fmt: skip
    # ended instances cost nothing more, however late the ledger is read
    assert model.rate(led).total == 0.0
    path = moto_aws.env.cwd / "offline.json"
    path.write_text(led.dumps())
    offline = cli("usage", "--ledger", str(path), "--since", "all", "-o", "json",
                  env=moto_aws.env)  # fmt: skip
    assert offline.exit_code == 0, offline.stderr
    doc = json.loads(offline.stdout)
    assert doc["cost"]["total_usd"] == pytest.approx(model.compute(led).total)
    assert doc["cost"]["usd_per_hour"] == 0.0


def _export_after_down(cli: Cli, moto_aws: MotoAws) -> str:
    """The cluster is gone from EC2 but its bucket (kept) still holds the ledger."""
    return _export(cli, moto_aws)


def test_usage_ledger_refuses_a_file_that_is_not_a_ledger(cli: Cli, moto_aws: MotoAws) -> None:
    path = moto_aws.env.cwd / "x.json"
    path.write_text('{"schema": "something/else"}')
    result = cli("usage", "--ledger", str(path), env=moto_aws.env)
    assert result.exit_code == 2
    assert "is not a sparkube ledger" in result.stderr and "--export-ledger" in result.stderr


def test_surplus_credits_charged_are_read_from_cloudwatch_and_counted(
    cli: Cli, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlimited-mode nodes (the default) cost their charged surplus credits too.

    moto stand-in: moto takes CreditSpecification at launch but answers "standard" for
    every instance; the server runs in this process, so it is made to answer what EC2
    would (unlimited, as sent). CloudWatch is moto's own."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.instances import InstanceResponse

    def unlimited(self: Any) -> Any:
        found = self.ec2_backend.describe_instance_credit_specifications(
            self._get_param("InstanceIds", [])
        )
        return ActionResult({"InstanceCreditSpecifications": [
            {"InstanceId": i.id, "CpuCredits": "unlimited"} for i in found]})  # fmt: skip

    monkeypatch.setattr(InstanceResponse, "describe_instance_credit_specifications", unlimited)
    _up(cli, moto_aws)
    worker = next(i for i in _recorded(_client(moto_aws, "s3")).values() if i.role == "worker")
    now = datetime.now(UTC)
    _client(moto_aws, "cloudwatch").put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[{
            "MetricName": "CPUSurplusCreditsCharged", "Timestamp": now, "Value": 48.0,
            "Dimensions": [{"Name": "InstanceId", "Value": worker.instance_id}],
        }],
    )  # fmt: skip
    ledger = Ledger.loads(_export(cli, moto_aws))
    facts = {i.instance_id: i for i in ledger.instances}
    assert {i.cpu_credits for i in facts.values()} == {"unlimited"}
    charges = facts[worker.instance_id].surplus_credits
    assert charges is not None and [c.credits for c in charges] == [48.0]
    assert all(i.surplus_credits == () for k, i in facts.items() if k != worker.instance_id)
    out = model.compute(ledger)
    line = next(i for i in out.instances if i.instance_id == worker.instance_id)
    charge = charges[0]
    # the part of the charged hour that has passed by the ledger's time
    share = (min(ledger.generated, charge.end) - charge.start) / (charge.end - charge.start)
    assert line.usd == pytest.approx(line.hours * 0.0416 + 48 * 0.05 / 60 * share, abs=1e-9)
    assert out.exact
    status = json.loads(cli("status", "-o", "json", env=moto_aws.env).stdout)
    assert status["cost_exact"] is True


def test_usage_says_what_scaling_cost_and_saved_and_how_long_jobs_waited(
    cli: Cli, moto_aws: MotoAws
) -> None:
    """Offline, from a ledger with the controller's scale events and a queued wait (the
    figures themselves are worked out in tests/unit/test_cost_model.py)."""
    from sparkube.cost.ledger import WORKER, Interval, Job, PriceFact, ScaleEvent

    def at(hh: int, mm: int = 0) -> datetime:
        return datetime(2026, 12, 1, hh, mm, tzinfo=UTC)

    def worker(iid: str, name: str, start: datetime, end: datetime) -> Instance:
        return Instance(iid, name, WORKER, "t3.large", "on-demand", "us-east-1a", 2.0,
                        8 * 2**30, (Interval(start, end),))  # fmt: skip

    led = Ledger(
        "c1", REGION, at(12),
        instances=(worker("i-01", "worker-1", at(10), at(12)),
                   worker("i-0abc", "i-0abc", at(10, 30), at(11))),
        prices=(PriceFact("instance", 0.0832, "test table", instance_type="t3.large"),),
        jobs=(Job("job-a", "a.py", "Succeeded", (), queued=Interval(at(10, 25), at(10, 35))),),
        scaling=(ScaleEvent(at(10, 25), "grow", 1, 2, maximum=2),
                 ScaleEvent(at(11), "shrink", 2, 1, maximum=2, instance="i-0abc")),
    )  # fmt: skip
    path = moto_aws.env.cwd / "ledger.json"
    path.write_text(led.dumps())
    text = cli("usage", "--ledger", str(path), "--since", "all", env=moto_aws.env)
    assert text.exit_code == 0, text.stderr
    assert (
        "Scaling: the group grew 1× and shrank 1×; 1 worker it added ran 0.50 h for $0.0416; "
        "sized for its peak of 2 workers all along, the workers would have cost $0.3328 "
        "instead of $0.2080 (saved $0.1248)." in " ".join(text.stdout.split())
    ), text.stdout
    assert "Queue: 1 job waited 10:00 in all for room." in text.stdout
    data = json.loads(
        cli("usage", "--ledger", str(path), "--since", "all", "-o", "json",
            env=moto_aws.env).stdout
    )["scaling"]  # fmt: skip
    assert (data["grew"], data["shrank"], data["added"], data["peak_workers"]) == (
        1, 1, ["i-0abc"], 2,
    )  # fmt: skip
    assert data["saved_usd"] == pytest.approx(0.1248)


def test_a_worker_the_controller_removed_and_ec2_forgot_is_counted_from_its_events(
    moto_aws: MotoAws,
) -> None:
    """EC2 lists a terminated instance for about an hour; after that the controller's
    shrink event (type, zone, first seen, terminated) is what remains of it."""
    from sparkube.cost.collect import removed_workers
    from sparkube.cost.ledger import WORKER, Interval, ScaleEvent, Volume

    def at(hh: int, mm: int = 0) -> datetime:
        return datetime(2026, 12, 1, hh, mm, tzinfo=UTC)

    sibling = Instance(
        "i-01", "worker-1", WORKER, "t3.large", "on-demand", "us-east-1a", 2.0, 8 * 2**30,
        (Interval(at(10), None),), volumes=(Volume("vol-1", "gp3", 30, (Interval(at(10)),)),),
        public_ipv4=True, cpu_credits="unlimited",
    )  # fmt: skip
    gone = ScaleEvent(at(11), "shrink", 2, 1, maximum=2, instance="i-0gone", node="i-0gone",
                      instance_type="t3.large", zone="us-east-1b", since=at(10, 30))  # fmt: skip
    still = ScaleEvent(at(11, 30), "shrink", 2, 1, instance="i-01", instance_type="t3.large",
                       since=at(10))  # fmt: skip
    grow = ScaleEvent(at(10, 29), "grow", 1, 2)
    out, notes = removed_workers(_client(moto_aws, "ec2"), [sibling], [grow, gone, still])
    (worker,) = out  # i-01 is known: not made up again
    assert (worker.instance_id, worker.role, worker.zone, worker.market) == (
        "i-0gone", WORKER, "us-east-1b", "on-demand",
    )  # fmt: skip
    assert (worker.vcpus, worker.memory_bytes) == (2.0, 8 * 2**30)  # from EC2's type table
    assert worker.running == (Interval(at(10, 30), at(11)),)
    assert [(v.volume_type, v.size_gb, v.existed) for v in worker.volumes] == [
        ("gp3", 30, (Interval(at(10, 30), at(11)),))
    ]
    assert worker.public_ipv4 and "i-0gone" in notes[0]


def test_usage_says_what_spot_saved_per_job_and_in_all(cli: Cli, moto_aws: MotoAws) -> None:
    """Offline, from a ledger with one on-demand and one spot worker (the figures are
    worked out in tests/unit/test_cost_model.py): the spot line and the jobs' column;
    from a ledger without the spot type's on-demand price, the saving is unknown and
    says why; with no spot worker, neither is shown."""
    from sparkube.cost.ledger import SPOT, WORKER, Interval, Job, Pod, PriceFact

    def at(hh: int, mm: int = 0) -> datetime:
        return datetime(2026, 12, 1, hh, mm, tzinfo=UTC)

    def worker(iid: str, market: str, end: datetime) -> Instance:
        return Instance(iid, iid, WORKER, "t3.large", market, "us-east-1a", 2.0, 8 * 2**30,
                        (Interval(at(10), end),))  # fmt: skip

    def job(jid: str, cpu: float, gib: int, start: datetime, end: datetime) -> Job:
        pod = Pod(f"{jid}-exec-1", "executor", cpu, gib * 2**30, Interval(start, end))
        return Job(jid, f"{jid}.py", "Succeeded", (pod,))

    on_demand = PriceFact("instance", 0.0832, "test table", instance_type="t3.large")
    spot = (
        PriceFact("instance", 0.03, "history", instance_type="t3.large", market=SPOT,
                  zone="us-east-1a", start=at(9), end=at(11)),
        PriceFact("instance", 0.04, "history", instance_type="t3.large", market=SPOT,
                  zone="us-east-1a", start=at(11)),
    )  # fmt: skip
    # job-a: half of both workers 10:30–11:30 ($0.0591, on-demand $0.0832: saved $0.0241);
    # job-b: all of worker-1 after the spot worker ended
    led = Ledger(
        "c1", REGION, at(12),
        instances=(worker("worker-1", "on-demand", at(12)), worker("worker-2", SPOT, at(11, 30))),
        prices=(on_demand, *spot),
        jobs=(job("job-a", 2, 8, at(10, 30), at(11, 30)), job("job-b", 2, 8, at(11, 30), at(12))),
    )  # fmt: skip

    def usage(ledger: Ledger, *args: str) -> str:
        path = moto_aws.env.cwd / "ledger.json"
        path.write_text(ledger.dumps())
        result = cli("usage", "--ledger", str(path), "--since", "all", *args, env=moto_aws.env)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    text = usage(led)
    flat = " ".join(text.split())
    assert (
        "Spot: 1.50 worker-hours on spot cost $0.0500; on-demand they would have cost "
        "$0.1248: saved $0.0748 (60%)." in flat
    ), text
    assert "spot saved" in flat, text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if "job-" in line}
    assert rows["job-a"][-2:] == ["$0.0591", "$0.0241"], text
    assert rows["job-b"][-2:] == ["$0.0416", "-"], text
    doc = json.loads(usage(led, "-o", "json"))
    jobs = {j["job_id"]: j for j in doc["jobs"]}
    assert jobs["job-a"]["on_spot"] is True
    assert jobs["job-a"]["spot_saved_usd"] == pytest.approx(0.0241)
    assert (jobs["job-b"]["on_spot"], jobs["job-b"]["spot_saved_usd"]) == (False, None)
    assert doc["spot"] == {
        "worker_hours": pytest.approx(1.5), "usd": pytest.approx(0.05),
        "on_demand_usd": pytest.approx(0.1248), "saved_usd": pytest.approx(0.0748),
        "exact": True, "unknown": [],
    }  # fmt: skip
    assert doc["exact"] is True

    # a ledger from before the on-demand price of spot types was gathered
    old = Ledger(
        "c1", REGION, at(12), instances=(worker("worker-2", SPOT, at(11, 30)),),
        prices=spot, jobs=(job("job-a", 2, 8, at(10, 30), at(11, 30)),),
    )  # fmt: skip
    text = usage(old)
    flat = " ".join(text.split())
    assert (
        "Spot: 1.50 worker-hours on spot cost $0.0500; what spot saved is unknown: the "
        "ledger has no on-demand price of t3.large to set its spot price against" in flat
    ), text
    assert next(line for line in text.splitlines() if "job-a" in line).split()[-1] == "unknown"
    doc = json.loads(usage(old, "-o", "json"))
    assert doc["exact"] is True and doc["jobs"][0]["spot_saved_usd"] is None
    assert (doc["spot"]["on_demand_usd"], doc["spot"]["saved_usd"]) == (None, None)
    assert doc["spot"]["usd"] == pytest.approx(0.05) and doc["spot"]["unknown"]

    # no spot worker: no spot line, no column, "spot": null
    plain = Ledger(
        "c1", REGION, at(12), instances=(worker("worker-1", "on-demand", at(12)),),
        prices=(on_demand,), jobs=(job("job-b", 2, 8, at(11, 30), at(12)),),
    )  # fmt: skip
    text = usage(plain)
    assert "Spot" not in text and "spot saved" not in " ".join(text.split()), text
    doc = json.loads(usage(plain, "-o", "json"))
    assert doc["spot"] is None and doc["jobs"][0]["spot_saved_usd"] is None
