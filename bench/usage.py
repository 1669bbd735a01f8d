"""Cost of ``sparkube usage`` (build_report) as finished jobs pile up in the bucket.

Runs build_report against a moto server and a test control plane (kwok nodes, no
metrics API), both on loopback, after writing N finished job records into the bucket.
Each call is made as from a new machine: a fresh kubeconfig client and a fresh S3
client, nothing cached. The first call finds no ``jobs/index.json`` and reads every
record (then writes the index); the second reads the index, lists the prefix and reads
nothing else. Target: second-call S3 calls do not grow with N (ratio ~1), while the
listing still grows by one page per 1000 keys.

    python bench/usage.py [N ...]          # default: 10 200

Exits 2 (skipped) when the Kubernetes test binaries are not built (tools/kube/build.sh).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from moto.server import ThreadedMotoServer

from sparkube.aws.session import AwsClients, CallCounter, observe_calls
from sparkube.kube.apply import apply_manifest
from sparkube.kube.client import client_from_kubeconfig
from sparkube.monitoring.usage import UsageReport, build_report
from sparkube.spark.cluster import (
    RESULTS_PREFIX,
    ClusterConfig,
    ClusterJobs,
    JobRecord,
    put_json,
    record_key,
)
from sparkube.spark.phase import apply_cluster_config
from sparkube.spark.rbac import render_spark_rbac
from tests.fixtures.controlplane import binaries_problem, kube_bin_dir, start_control_plane
from tests.fixtures.moto_server import REGION, moto_environ

BUCKET = "sparkube-usage-bench"
SINCE = timedelta(days=2)


@dataclass
class Measure:
    seconds: float
    aws: CallCounter
    kube_requests: int | None
    report: UsageReport


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _count_kube_requests(client: Any) -> list[int] | None:
    """A counter of the HTTP requests the lightkube client sends (None if its httpx
    client is not where lightkube keeps it today)."""
    http = getattr(getattr(client, "_client", None), "_client", None)
    hooks = getattr(http, "event_hooks", None)
    if not isinstance(hooks, dict) or "request" not in hooks:
        return None
    box = [0]

    def hook(_request: Any) -> None:
        box[0] += 1

    hooks["request"].append(hook)
    return box


def _empty_jobs_prefix(s3: Any) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=f"{RESULTS_PREFIX}/"
    ):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents") or []]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def _write_records(s3: Any, n: int, now: datetime) -> None:
    """N finished jobs, written as sparkube.spark.cluster writes them (put_json of
    JobRecord.to_json()), submitted and finished within the last day."""
    for i in range(n):
        submitted = now - timedelta(hours=20) + timedelta(seconds=60 * i)
        finished = submitted + timedelta(minutes=3)
        rec = JobRecord(
            job_id=f"job-{i:05d}",
            app="etl.py",
            kind="submit",
            state="Succeeded",
            submitted=_iso(submitted),
            finished=_iso(finished),
            exit_code=0,
            executors=2,
            executor_cores=1,
            executor_memory="1g",
            args=["s3a://in/", "s3a://out/"],
            output=f"s3a://{BUCKET}/{RESULTS_PREFIX}/job-{i:05d}/output/",
        )
        put_json(s3, BUCKET, record_key(rec.job_id), rec.to_json())


def _measure(kubeconfig: Path, environ: dict[str, str]) -> Measure:
    """One build_report as from a new machine: new kube client, new S3 client."""
    client = client_from_kubeconfig(kubeconfig)
    kube = _count_kube_requests(client)
    api = ClusterJobs(client, lambda region: AwsClients(environ, region).s3)
    aws = CallCounter()
    with observe_calls(aws):
        t0 = time.perf_counter()
        report = build_report(api, since=SINCE)
        seconds = time.perf_counter() - t0
    return Measure(seconds, aws, kube[0] if kube is not None else None, report)


def _ops(counter: CallCounter) -> str:
    return ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(counter.calls.items()))


def main(sizes: list[int]) -> int:
    bin_dir = kube_bin_dir()
    problem = binaries_problem(bin_dir, check_stamp=not os.environ.get("SPARKUBE_KUBE_BIN_DIR"))
    if problem:
        print(f"SKIPPED: {problem}", file=sys.stderr)
        return 2

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    results: dict[int, tuple[Measure, Measure]] = {}
    metrics_message = ""
    costed = 0
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-usage-") as tmp:
        workdir = Path(tmp)
        (workdir / "home").mkdir()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        cp = None
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            environ = {**moto_environ(url), "HOME": str(workdir / "home")}
            # Seeding client: not made by AwsClients, so its calls are never counted.
            seed: Any = boto3.client(
                "s3",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            seed.create_bucket(Bucket=BUCKET)

            cp = start_control_plane(workdir / "kube", bin_dir, workers=2)
            print(
                f"control plane {cp.kube_version} up in {cp.startup_seconds:.1f} s "
                f"({len(cp.workers)} kwok workers); moto at {url}",
                file=sys.stderr,
            )
            admin = client_from_kubeconfig(cp.kubeconfig)
            apply_manifest(admin, render_spark_rbac())
            apply_cluster_config(
                admin,
                ClusterConfig(
                    cluster="bench",
                    bucket=BUCKET,
                    region=REGION,
                    worker_type="t3.medium",
                    workers=2,
                    control_plane_type="t3.medium",
                    control_plane_usd_per_hour=0.0416,
                    worker_usd_per_hour=0.0416,
                ),
            )

            # Warm-up (not reported): imports, botocore models, first TLS handshakes.
            _measure(cp.kubeconfig, environ)

            for n in sizes:
                _empty_jobs_prefix(seed)
                _write_records(seed, n, datetime.now(UTC))
                first = _measure(cp.kubeconfig, environ)
                second = _measure(cp.kubeconfig, environ)
                for m in (first, second):
                    if len(m.report.jobs) != n:
                        raise SystemExit(f"N={n}: build_report saw {len(m.report.jobs)} jobs")
                    if m.report.metrics_available:
                        raise SystemExit("the metrics API answered; this cluster should have none")
                    if m.report.usd_per_hour <= 0 or m.report.usd_so_far <= 0:
                        raise SystemExit(f"N={n}: the report has no cluster cost")
                metrics_message = first.report.metrics_message
                costed = sum(1 for j in first.report.jobs if j.usd > 0)
                results[n] = (first, second)
        finally:
            if cp is not None:
                cp.stop()
            server.stop()

    def kube(m: Measure) -> str:
        return "n/a" if m.kube_requests is None else str(m.kube_requests)

    print(f"metrics: {metrics_message}")
    # The records predate the kwok Node objects (created seconds ago), and job_cost only
    # prices time during which a listed node was alive: such jobs show $0.
    print(f"jobs costed > $0 in the last run: {costed} (records older than the nodes cost $0)\n")
    header = (
        f"{'N':>5}  {'1st s':>7}  {'1st S3':>6}  {'1st kube':>8}  "
        f"{'2nd s':>7}  {'2nd S3':>6}  {'2nd kube':>8}"
    )
    print(header)
    for n, (first, second) in results.items():
        print(
            f"{n:>5}  {first.seconds:>7.3f}  {first.aws.total:>6}  {kube(first):>8}  "
            f"{second.seconds:>7.3f}  {second.aws.total:>6}  {kube(second):>8}"
        )
    print()
    for n, (first, second) in results.items():
        print(f"N={n:<4} 1st: {_ops(first.aws)}")
        print(f"{'':6} 2nd: {_ops(second.aws)}")
    lo, hi = min(results), max(results)
    if lo != hi:
        f_lo, s_lo = results[lo]
        f_hi, s_hi = results[hi]
        print(
            f"\nratios N={hi} vs N={lo} (N grows {hi / lo:.0f}x):\n"
            f"  1st call (no index): time {f_hi.seconds / f_lo.seconds:.2f}, "
            f"S3 calls {f_hi.aws.total / f_lo.aws.total:.2f}\n"
            f"  2nd call (index):    time {s_hi.seconds / s_lo.seconds:.2f}, "
            f"S3 calls {s_hi.aws.total / s_lo.aws.total:.2f} (target ~1)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main([int(a) for a in sys.argv[1:]] or [10, 200]))
