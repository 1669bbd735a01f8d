"""Cost of ``sparkube usage`` as finished jobs pile up in the cluster's bucket.

What it measures: ``sparkube.monitoring.usage.build_report(env, cluster, region,
since=24h)`` — the path ``sparkube usage`` takes (``open_jobs`` through the cluster's
kubeconfig, ``job_facts``, ``gather``, the one cost model, the namespaces' pods) — for
N finished jobs (default 10 and 200): wall seconds, AWS calls by operation (S3, EC2, ...,
counted by ``sparkube.aws.session.observe_calls``) and Kubernetes requests (counted on
the lightkube clients ``open_jobs`` makes), for a first and a second call. Each call is
made as from a new machine: new kubeconfig client, new AWS clients, nothing cached
between calls (a read writes nothing either, which is checked), so the two calls should
make the same calls. Target: calls of N=200 over N=10 stay flat except for reading the
event logs, one GET per log file (a job's log must be read once to know its times).

The set-up, all on loopback:

- a moto server (ThreadedMotoServer) and the real ``sparkube up --until infra
  --workers 2`` run in-process against it: the bucket as sparkube names it, two
  t3.medium workers and a control-plane instance with the cluster's tags, their ledger
  records. moto stand-in: the instances' ``LaunchTime`` and their volumes'
  ``CreateTime`` are moved 26 h back in moto's backend (same process), so the cluster
  ran throughout the 24 h window the jobs fall in;
- the test control plane (tests/fixtures/controlplane.py: etcd, kube-apiserver,
  controllers, kwok nodes; no metrics API), its admin kubeconfig where ``open_jobs``
  looks (``env.cluster_dir(cluster)/kubeconfig``), the ``spark`` namespace and the
  ``spark/sparkube-cluster`` ConfigMap naming the bucket;
- N finished job records written as sparkube writes them (``JobRecord`` with
  ``driver_request``/``executor_request`` from ``pod_requests`` as submit does, then
  started/finished/exit code and ``driver.log`` as a watcher's finish does, and every
  record in ``jobs/index.json`` as the write paths keep it), jobs 3 minutes long spread
  over the last 20 h; one job in LOG_EVERY also has its driver's Spark event log
  (``spark-events/eventlog_v2_ID/events_1_ID`` and the ``appstatus_ID`` marker, with
  filler events), which then gives the job's times.

Checked (exit 1 when wrong): the report sees N jobs; jobs + idle + control plane +
volumes + addresses = total; the instances' lines = jobs + idle + control plane; total =
the rate now x 24 h (everything ran through the window); jobs cost what their requests
reserve of the workers, worked out here from what was written; the jobs with an event
log took their times from it; no write call; the first and second call agree.

    .venv/bin/python bench/usage.py [N ...]     # default: 10 200; ~15 s

A table goes to stderr; the last line on stdout is one JSON object with the figures
and the ratios of the largest N against the smallest. Exits 2 (skipped) when the
Kubernetes test binaries are not built (bash tools/kube/build.sh). It boots a control
plane: do not run it while a pytest run that boots one is running.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from moto.server import ThreadedMotoServer

import sparkube.kube.client as kube_client
from sparkube.aws import storage
from sparkube.aws.s3 import put_json
from sparkube.aws.session import CallCounter, observe_calls
from sparkube.cli.app import run
from sparkube.env import Environment, write_private_file
from sparkube.kube.apply import apply_manifest
from sparkube.monitoring.usage import UsageReport, build_report
from sparkube.spark.config import ClusterConfig, Resources
from sparkube.spark.phase import apply_cluster_config
from sparkube.spark.podspec import EVENTS_PREFIX, Endpoints, JobSpec, pod_requests, spark_properties
from sparkube.spark.rbac import render_spark_rbac
from sparkube.spark.records import INDEX_KEY, RESULTS_PREFIX, JobRecord, log_key, record_key
from tests.fixtures.controlplane import binaries_problem, kube_bin_dir, start_control_plane
from tests.fixtures.moto_server import ACCOUNT, REGION, moto_environ, seed_ubuntu

CLUSTER = "sparkube"  # sparkube's default name
CIDR = "203.0.113.7/32"
WORKERS = 2
WINDOW = timedelta(hours=24)  # usage's default --since
UPTIME = timedelta(hours=26)  # how long the cluster has run (LaunchTime moved back)
JOBS_SPAN = timedelta(hours=20)  # the jobs' submissions spread over this
JOB_LENGTH = timedelta(minutes=3)
EXECUTORS = 2
LOG_EVERY = 4  # one job in LOG_EVERY has its Spark event log in the bucket
FILLER_EVENTS = 40  # task events per log, skipped by the parser
GIB = 2**30


@dataclass
class Measure:
    seconds: float
    aws: CallCounter
    kube: Counter[str] | None  # "METHOD /path" -> requests; None: could not count
    report: UsageReport

    @property
    def kube_total(self) -> int | None:
        return None if self.kube is None else sum(self.kube.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 4),
            "aws_calls": self.aws.total,
            "aws_by_operation": dict(sorted(self.aws.calls.items())),
            "kube_requests": self.kube_total,
            "kube_by_request": dict(sorted(self.kube.items())) if self.kube is not None else None,
        }


@dataclass
class Written:
    """What the bench put in the bucket for one N, to check the report against."""

    jobs: int = 0
    logs: list[str] = field(default_factory=list)  # job ids with an event log
    #: per job: [(cpu, memory bytes, start, end)] of its pods as written
    pods: dict[str, list[tuple[float, int, datetime, datetime]]] = field(default_factory=dict)


# --------------------------------------------------------------------------- set-up


def _env(url: str, base: Path) -> Environment:
    home, work = base / "home", base / "work"
    home.mkdir()
    work.mkdir()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SPARKUBE_")) and k != "KUBECONFIG"
    }
    environ.update(
        HOME=str(home),
        SPARKUBE_HOME=str(home / ".sparkube"),
        AWS_MAX_ATTEMPTS="2",
        **moto_environ(url),
    )
    return Environment(environ=environ, cwd=work, interactive=False)


def _sparkube(env: Environment, *args: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), env=env, stdout=out, stderr=err)
    if code != 0:
        raise SystemExit(f"sparkube {' '.join(args)} failed ({code}):\n{err.getvalue()}")


def _move_launch_back(ago: timedelta) -> int:
    """moto stand-in: the cluster has run for ``ago`` (moto's server is in this process)."""
    from moto.core.utils import utcnow
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[ACCOUNT][REGION]
    then = utcnow() - ago
    moved = 0
    for inst in backend.all_instances():
        inst.launch_time = then
        moved += 1
    for vol in backend.volumes.values():
        vol.create_time = then
    return moved


def _requests(bucket: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (driver, executor) requests submit records for a 2 x 1 core x 1g job."""
    spec = JobSpec(
        job_id="job-x",
        app_name="etl.py",
        app_file="etl.py",
        app_bytes=b"",
        args=(),
        resources=Resources(EXECUTORS, 1, "1g"),
    )
    config = ClusterConfig(cluster=CLUSTER, bucket=bucket, region=REGION)
    return pod_requests(spec, spark_properties(spec, config, Endpoints()))


# --------------------------------------------------------------------------- the bucket


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _event(name: str, at: datetime, **fields: Any) -> str:
    return json.dumps({"Event": name, "Timestamp": _ms(at), **fields})


def _event_log(job_id: str, start: datetime, end: datetime) -> bytes:
    """A small Spark 4 event log: start, executors added and removed, filler task
    events (skipped unread), end with its exit code."""
    lines = [
        json.dumps({"Event": "SparkListenerLogStart", "Spark Version": "4.1.2"}),
        _event(
            "SparkListenerApplicationStart",
            start,
            **{"App Name": f"sparkube-{job_id}", "App ID": job_id, "User": "spark"},
        ),
    ]
    for e in range(1, EXECUTORS + 1):
        lines.append(
            _event(
                "SparkListenerExecutorAdded",
                start + timedelta(seconds=10),
                **{
                    "Executor ID": str(e),
                    "Executor Info": {"Host": f"10.244.1.{e}", "Total Cores": 1},
                },
            )
        )
    for task in range(FILLER_EVENTS):
        lines.append(
            json.dumps(
                {
                    "Event": "SparkListenerTaskEnd",
                    "Stage ID": 0,
                    "Task Info": {"Task ID": task, "Executor ID": str(1 + task % 2)},
                    "Task Metrics": {"Executor Run Time": 1200},
                }
            )
        )
    for e in range(1, EXECUTORS + 1):
        lines.append(
            _event(
                "SparkListenerExecutorRemoved",
                end - timedelta(seconds=5),
                **{"Executor ID": str(e), "Removed Reason": "finished"},
            )
        )
    lines.append(_event("SparkListenerApplicationEnd", end, ExitCode=0))
    return ("\n".join(lines) + "\n").encode()


def _empty(s3: Any, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents") or []]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _write_jobs(s3: Any, bucket: str, n: int, now: datetime) -> Written:
    """N finished jobs as sparkube leaves them in the bucket (see the module docstring)."""
    _empty(s3, bucket, f"{RESULTS_PREFIX}/")
    _empty(s3, bucket, EVENTS_PREFIX)
    driver_req, executor_req = _requests(bucket)
    written = Written(jobs=n)
    index = []
    step = JOBS_SPAN / n
    first = (now - JOBS_SPAN).replace(microsecond=0)
    for i in range(n):
        job_id = f"job-{i:05d}"
        submitted = first + step * i
        submitted = submitted.replace(microsecond=0)
        started = submitted + timedelta(seconds=8)
        finished = started + JOB_LENGTH
        rec = JobRecord(
            job_id=job_id,
            app="etl.py",
            kind="submit",
            state="Succeeded",
            submitted=_iso(submitted),
            finished=_iso(finished),
            exit_code=0,
            executors=EXECUTORS,
            executor_cores=1,
            executor_memory="1g",
            args=["s3a://in/", "s3a://out/"],
            output=f"s3a://{bucket}/{RESULTS_PREFIX}/{job_id}/output/",
            started=_iso(started),
            driver_request=driver_req,
            executor_request=executor_req,
        )
        put_json(s3, bucket, record_key(job_id), rec.to_json())
        s3.put_object(Bucket=bucket, Key=log_key(job_id), Body=b"Pi is roughly 3.14\n")
        index.append(asdict(rec))
        d_cpu, d_mem = float(driver_req["cpu"]), int(driver_req["memory_bytes"])
        e_cpu, e_mem = float(executor_req["cpu"]), int(executor_req["memory_bytes"])
        pods = [(d_cpu, d_mem, started, finished)]
        if i % LOG_EVERY == 0:
            folder = f"{EVENTS_PREFIX}eventlog_v2_{job_id}/"
            s3.put_object(
                Bucket=bucket,
                Key=f"{folder}events_1_{job_id}",
                Body=_event_log(job_id, started, finished),
            )
            s3.put_object(Bucket=bucket, Key=f"{folder}appstatus_{job_id}", Body=b"")
            written.logs.append(job_id)
            ran = (started + timedelta(seconds=10), finished - timedelta(seconds=5))
        else:  # the record's executors, for the driver's run
            ran = (started, finished)
        pods += [(e_cpu, e_mem, *ran)] * EXECUTORS
        written.pods[job_id] = pods
    put_json(s3, bucket, INDEX_KEY, {"jobs": sorted(index, key=lambda d: d["job_id"])})
    return written


# --------------------------------------------------------------------------- measuring


@contextlib.contextmanager
def _counting_kube() -> Iterator[list[Counter[str] | None]]:
    """Count the HTTP requests of every lightkube client made from a kubeconfig inside
    (``open_jobs`` makes its own), by method and path, into ``box[0]``; None there once
    out if lightkube keeps its httpx client elsewhere than today."""
    counts: Counter[str] = Counter()
    box: list[Counter[str] | None] = [counts]
    able = [True]
    original: Callable[..., Any] = kube_client.client_from_kubeconfig

    def hook(request: Any) -> None:
        counts[f"{request.method} {request.url.path}"] += 1

    def counted(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        http = getattr(getattr(client, "_client", None), "_client", None)
        hooks = getattr(http, "event_hooks", None)
        if isinstance(hooks, dict) and isinstance(hooks.get("request"), list):
            hooks["request"].append(hook)
        else:
            able[0] = False
        return client

    kube_client.client_from_kubeconfig = counted
    try:
        yield box
    finally:
        kube_client.client_from_kubeconfig = original
        if not able[0]:
            box[0] = None


def _measure(env: Environment) -> Measure:
    """One build_report as ``sparkube usage`` makes it, as from a new machine."""
    aws = CallCounter()
    with _counting_kube() as kube, observe_calls(aws):
        t0 = time.perf_counter()
        report = build_report(env, CLUSTER, REGION, since=WINDOW)
        seconds = time.perf_counter() - t0
    return Measure(seconds, aws, kube[0], report)


# --------------------------------------------------------------------------- checks


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def _problems(m: Measure, written: Written) -> list[str]:
    rep = m.report
    w = rep.window
    cost = rep.to_json()["cost"]
    out = []
    if len(w.jobs) != written.jobs:
        out.append(f"the report shows {len(w.jobs)} jobs, {written.jobs} were written")
    parts = (
        cost["jobs_usd"]
        + cost["idle_usd"]
        + cost["control_plane_usd"]
        + cost["volumes_usd"]
        + cost["addresses_usd"]
    )
    if not _close(cost["total_usd"], parts):
        out.append(f"total ${cost['total_usd']:.6f} != sum of its parts ${parts:.6f}")
    instances = sum(i.usd for i in w.instances)
    if not _close(instances, cost["jobs_usd"] + cost["idle_usd"] + cost["control_plane_usd"]):
        out.append(f"instances ${instances:.6f} != jobs + idle + control plane")
    hours = (w.end - w.start).total_seconds() / 3600
    if not _close(cost["total_usd"], cost["usd_per_hour"] * hours):
        out.append(f"total ${cost['total_usd']:.6f} != ${cost['usd_per_hour']:.4f}/h x {hours} h")
    if cost["total_usd"] <= 0 or not rep.exact:
        out.append(f"no exact cost: total {cost['total_usd']}, unknown {w.unknown}")
    # each job: its pods' share of the workers, (cpu/C + mem/M)/2 x the workers' $/h
    workers = [i for i in rep.ledger.instances if i.role != "control-plane"]
    cap_cpu = sum(i.vcpus for i in workers)
    cap_mem = sum(i.memory_bytes for i in workers)
    worker_rate = sum(line.usd for line in w.instances if line.role != "control-plane") / hours
    lines = {j.job_id: j for j in w.jobs}
    for job_id, pods in written.pods.items():
        want = sum(
            (cpu / cap_cpu + mem / cap_mem) / 2 * worker_rate * (end - start).total_seconds() / 3600
            for cpu, mem, start, end in pods
        )
        got = lines[job_id].usd if job_id in lines else -1.0
        if not _close(got, want, rel=1e-4):
            out.append(f"{job_id} costs ${got:.8f}, its requests reserved ${want:.8f}")
            break
    from_log = {j.job_id for j in rep.ledger.jobs if "driver start: event log" in j.source}
    if from_log != set(written.logs):
        out.append(
            f"{len(from_log)} jobs took their times from an event log, {len(written.logs)} have one"
        )
    if m.aws.writes():
        out.append(f"usage made write calls: {m.aws.writes()}")
    return out


# --------------------------------------------------------------------------- main


def _ops(counter: CallCounter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.calls.items()))


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def main(sizes: list[int]) -> int:
    bin_dir = kube_bin_dir()
    problem = binaries_problem(bin_dir, check_stamp=not os.environ.get("SPARKUBE_KUBE_BIN_DIR"))
    if problem:
        print(f"SKIPPED: {problem}", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # moto's server prints to stdout
        doc = _bench(sizes, bin_dir)
    print(json.dumps(doc), flush=True)
    return 0 if doc["ok"] else 1


def _bench(sizes: list[int], bin_dir: Path) -> dict[str, Any]:
    def say(text: str = "") -> None:
        print(text, file=sys.stderr, flush=True)

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    results: dict[int, tuple[Measure, Measure, Written]] = {}
    problems: list[str] = []
    setup: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-usage-") as tmp:
        base = Path(tmp)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        cp = None
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, timeout=10).read()  # loopback only
            seed_ubuntu(url, REGION)
            env = _env(url, base)
            t0 = time.perf_counter()
            _sparkube(
                env, "up", "--until", "infra", "--allow-cidr", CIDR, "--workers", str(WORKERS)
            )
            setup["up_infra_seconds"] = round(time.perf_counter() - t0, 2)
            setup["instances"] = _move_launch_back(UPTIME)
            bucket = storage.bucket_name(CLUSTER, REGION, ACCOUNT)
            # the bench's own client (not made by AwsClients: its calls are not counted)
            s3: Any = boto3.client(
                "s3",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            s3.head_bucket(Bucket=bucket)  # made by up

            cp = start_control_plane(base / "kube", bin_dir, workers=WORKERS)
            setup["control_plane_seconds"] = round(cp.startup_seconds, 2)
            setup["kube_version"] = cp.kube_version
            write_private_file(
                env.cluster_dir(CLUSTER, create=True) / "kubeconfig", cp.kubeconfig.read_text()
            )
            admin = kube_client.client_from_kubeconfig(cp.kubeconfig)
            apply_manifest(admin, render_spark_rbac())
            apply_cluster_config(
                admin,
                ClusterConfig(
                    cluster=CLUSTER,
                    bucket=bucket,
                    region=REGION,
                    worker_type="t3.medium",
                    workers=WORKERS,
                    control_plane_type="t3.medium",
                ),
            )
            say(
                f"up --until infra on moto in {setup['up_infra_seconds']} s "
                f"({setup['instances']} instances, launched {UPTIME} ago); control plane "
                f"{cp.kube_version} up in {cp.startup_seconds:.1f} s; bucket {bucket}"
            )

            # warm-up, not reported: imports, botocore models, the first TLS handshakes
            _measure(env)

            for n in sizes:
                t0 = time.perf_counter()
                written = _write_jobs(s3, bucket, n, datetime.now(UTC))
                say(
                    f"N={n}: {n} records, {len(written.logs)} event logs written in "
                    f"{time.perf_counter() - t0:.1f} s"
                )
                first = _measure(env)
                second = _measure(env)
                for label, m in (("1st", first), ("2nd", second)):
                    problems += [f"N={n} {label}: {p}" for p in _problems(m, written)]
                if first.aws.calls != second.aws.calls or first.kube != second.kube:
                    problems.append(f"N={n}: the second call's calls differ from the first's")
                results[n] = (first, second, written)
        finally:
            if cp is not None:
                cp.stop()
            server.stop()

    say()
    say(
        f"{'N':>5} {'logs':>5}  {'1st s':>7} {'1st AWS':>7} {'1st kube':>8}  "
        f"{'2nd s':>7} {'2nd AWS':>7} {'2nd kube':>8}  {'jobs $':>8} {'total $':>8}"
    )
    for n, (first, second, written) in results.items():
        cost = first.report.to_json()["cost"]
        say(
            f"{n:>5} {len(written.logs):>5}  {first.seconds:>7.3f} {first.aws.total:>7} "
            f"{first.kube_total!s:>8}  {second.seconds:>7.3f} {second.aws.total:>7} "
            f"{second.kube_total!s:>8}  {cost['jobs_usd']:>8.4f} {cost['total_usd']:>8.4f}"
        )
    say()
    for n, (first, _, _) in results.items():
        say(f"N={n:<4} AWS:  {_ops(first.aws)}")
        kube = ", ".join(f"{k} {v}" for k, v in sorted((first.kube or {}).items()))
        say(f"{'':6} kube: {kube or 'n/a'}")
    notes: list[str] = []
    if results:
        rep = results[max(results)][0].report
        notes = list(rep.ledger.notes)
        say(f"\nmetrics: {rep.metrics_message}")
        say(f"ledger notes: {len(notes)}" + "".join(f"\n  {n}" for n in notes[:5]))
    lo, hi = min(results), max(results)
    ratios: dict[str, Any] = {"n": round(hi / lo, 3)}
    for label, pick in (("first", 0), ("second", 1)):
        a, b = (results[hi][0], results[lo][0]) if pick == 0 else (results[hi][1], results[lo][1])
        ratios[label] = {
            "seconds": _ratio(a.seconds, b.seconds),
            "aws_calls": _ratio(a.aws.total, b.aws.total),
            "kube_requests": _ratio(a.kube_total, b.kube_total),
        }
    if lo != hi:
        say(
            f"ratios N={hi} vs N={lo} (N x{hi / lo:.0f}): "
            + "; ".join(
                f"{label} call: time {r['seconds']}, AWS calls {r['aws_calls']}, "
                f"kube requests {r['kube_requests']}"
                for label, r in ratios.items()
                if label != "n"
            )
        )
    for p in problems:
        say(f"WRONG: {p}")
    doc = {
        "bench": "usage",
        "ok": not problems,
        "problems": problems,
        "setup": setup,
        "window_hours": WINDOW.total_seconds() / 3600,
        "event_log_every": LOG_EVERY,
        "sizes": {
            str(n): {
                "jobs": written.jobs,
                "event_logs": len(written.logs),
                "jobs_usd": first.report.to_json()["cost"]["jobs_usd"],
                "total_usd": first.report.to_json()["cost"]["total_usd"],
                "first": first.to_json(),
                "second": second.to_json(),
            }
            for n, (first, second, written) in results.items()
        },
        "ratios": ratios,
        "notes": notes,
    }
    return doc


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [10, 200]))
