"""Benchmark: what a job pays for a worker the group adds, and how soon an idle one goes.

The cluster is the one the tests under tests/bed/ share (tests/fixtures/bedcluster.py):
an in-process moto server on loopback, ``sparkube up --workers 2`` against it, every
instance booted as a machine of the node bed (it waits for the machine's one bed lock),
then ``sparkube up --max-workers 3 --idle-minutes 1`` (the idle time short for the
bench; the default is 10 minutes). Then, in the same run:

1. Baseline: the app (eight tasks of 5 s) with one fixed executor of 1.5 CPU beside a
   0.5-CPU driver: it fits the two workers; ``sparkube submit`` wall time.
2. The same app with dynamic allocation (sparkube's default: no ``--executors``). It
   starts with the executor that fits; Spark asks for a second while tasks wait, which
   no worker has room for (a worker has 2 CPUs less its DaemonSets: one such executor
   each, and the driver's worker none). The controller grows the group for it, moto
   launches an instance, the bed boots it from the launch template's user data and it
   joins by itself. Measured: ``scale_out_s``, from that executor pod's creation
   (Pending, no room) to it Running on the new node, the node's own ``join_s`` (same
   start to Node Ready), and the submit's wall time; the ratio to the baseline is what
   waiting for a worker cost (or saved) the job.
3. ``scale_in_s``: from that job's end to the new instance terminated in moto (the idle
   minute plus the controller's cycle).

The last line is one JSON object. No timed assertions: only a failed job or a worker
that never comes or goes makes the exit code non-zero. Everything (the cluster:
``down``, the machines, moto, the temp folder) is removed at the end, also on Ctrl-C.

    sudo .venv/bin/python bench/elastic.py
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.bedcluster import (  # noqa: E402
    ALLOW_CIDR,
    BedCluster,
    approve_serving_csrs,
    start_bed_cluster,
)
from tests.fixtures.moto_server import serve_moto  # noqa: E402
from tests.fixtures.nodebed import approver_missing  # noqa: E402
from tests.fixtures.nodebed import problem as bed_problem  # noqa: E402

APP = """
import time
from pyspark.sql import SparkSession

def slow(x):
    time.sleep(5)
    return x * x

spark = SparkSession.builder.appName("elastic-bench").getOrCreate()
print(spark.sparkContext.parallelize(range(1, 9), 8).map(slow).sum())
spark.stop()
"""
EXECUTOR_CPU = "1500m"


def submit(c: BedCluster, executors: int | None) -> tuple[float, str]:
    """``sparkube submit`` of the app with ``executors`` executors (None: dynamic
    allocation); (seconds, job id)."""
    t0 = time.monotonic()
    fixed = ["--executors", str(executors)] if executors is not None else []
    ran = c.cli(
        "submit", "app.py", "--cluster", c.name, *fixed,
        "--executor-memory", "1g", "--executor-cores", "1", "--conf",
        f"spark.kubernetes.executor.request.cores={EXECUTOR_CPU}",
    )  # fmt: skip
    took = time.monotonic() - t0
    if ran.exit_code != 0:
        raise RuntimeError(f"the job failed ({ran.exit_code}): {ran.stderr[-2000:]}")
    (job_id,) = set(re.findall(r"\bjob (job-[\w-]+)", ran.stderr))
    return took, job_id


class Watcher:
    """Polls the cluster once a second from a thread: when an executor pod first waits
    with no room (Pending, unschedulable), when the first Node named by an instance id
    is Ready, and when an executor first runs on it."""

    def __init__(self, c: BedCluster) -> None:
        self.c = c
        self.node = ""
        self.executor_waits: float | None = None
        self.node_ready: float | None = None
        self.executor_running: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(1.0):
            got = self.c.kubectl("get nodes,pods -A -o json", check=False)
            if got.returncode != 0:
                continue
            items: list[dict[str, Any]] = json.loads(got.stdout)["items"]
            now = time.monotonic()
            for item in items:
                name = item["metadata"]["name"]
                if item["kind"] == "Node" and name.startswith("i-") and self.node_ready is None:
                    conditions = item["status"].get("conditions") or []
                    if any(x["type"] == "Ready" and x["status"] == "True" for x in conditions):
                        self.node, self.node_ready = name, now
                labels = item["metadata"].get("labels") or {}
                if (
                    item["kind"] == "Pod"
                    and labels.get("sparkube.io/role") == "executor"
                    and self.executor_waits is None
                    and any(
                        x.get("reason") == "Unschedulable"
                        for x in item["status"].get("conditions") or []
                    )
                ):
                    # (its creation, to the second: the scheduler said so just after)
                    made = item["metadata"]["creationTimestamp"]
                    lag = time.time() - _epoch(made)
                    self.executor_waits = now - max(0.0, lag)
                if (
                    item["kind"] == "Pod"
                    and self.node
                    and labels.get("sparkube.io/role") == "executor"
                    and item["spec"].get("nodeName") == self.node
                    and item["status"].get("phase") == "Running"
                    and self.executor_running is None
                ):
                    self.executor_running = now


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def scale_in_seconds(c: BedCluster, instance: str, timeout: float = 600) -> float:
    """From now to ``instance`` shutting down or terminated in moto."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        found = c.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
        if found[0]["Instances"][0]["State"]["Name"] in ("shutting-down", "terminated"):
            return time.monotonic() - t0
        time.sleep(1)
    raise RuntimeError(f"{instance} was not terminated within {timeout:.0f} s of idling")


def main() -> int:
    found = bed_problem()
    if found:
        print(f"bench/elastic.py: {found}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    print(f"{os.cpu_count()} CPUs; workers 2 to 3, idle time 1 minute")
    ok = True
    line: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-elastic-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "no-maven").mkdir()
        (tmp / "cluster").mkdir()
        stop = threading.Event()
        try:
            with (
                serve_moto(tmp / "no-maven") as moto_url,
                start_bed_cluster(moto_url, tmp / "cluster") as c,
            ):
                print(f"sparkube up of 1+2 real nodes in {c.up_seconds:.1f} s", flush=True)
                resumed = c.cli(
                    "up", "--cluster", c.name, "--max-workers", "3", "--idle-minutes", "1",
                    "--allow-cidr", ALLOW_CIDR, "--yes",
                )  # fmt: skip
                if resumed.exit_code != 0:
                    raise RuntimeError(f"up --max-workers 3 failed: {resumed.stderr[-2000:]}")
                c.kubectl("-n sparkube-system rollout status deploy/sparkube-controller "
                          "--timeout=300s")  # fmt: skip
                (c.env.cwd / "app.py").write_text(APP, encoding="utf-8")
                if approver_missing():  # (see approve_serving_csrs)
                    threading.Thread(
                        target=approve_serving_csrs, args=(c, stop), daemon=True
                    ).start()
                narrow_s, _ = submit(c, 1)
                print(f"job with one fixed executor: {narrow_s:.1f} s", flush=True)
                watcher = Watcher(c)
                watcher.thread.start()
                t0 = time.monotonic()
                wide_s, _ = submit(c, None)
                ended = time.monotonic()
                watcher.stop.set()
                watcher.thread.join()
                if (
                    watcher.executor_waits is None
                    or watcher.node_ready is None
                    or watcher.executor_running is None
                ):
                    raise RuntimeError("the job ran without an executor on a new worker")
                join_s = watcher.node_ready - watcher.executor_waits
                scale_out_s = watcher.executor_running - watcher.executor_waits
                print(f"the same job, dynamic allocation: {wide_s:.1f} s (an executor waited "
                      f"{watcher.executor_waits - t0:.1f} s after the submit; new worker "
                      f"{watcher.node} Ready {join_s:.1f} s later, the executor running there "
                      f"after {scale_out_s:.1f} s)", flush=True)  # fmt: skip
                scale_in_s = scale_in_seconds(c, watcher.node)
                stop.set()  # (the approver stops before the cluster goes)
                print(f"{watcher.node} terminated {scale_in_s:.1f} s after the job's end "
                      f"({time.monotonic() - ended:.1f} s)", flush=True)  # fmt: skip
                line = {
                    "up_s": round(c.up_seconds, 1),
                    "job_fixed_s": round(narrow_s, 1),
                    "job_dynamic_s": round(wide_s, 1),
                    "ratio_dynamic_over_fixed": round(wide_s / narrow_s, 2),
                    "join_s": round(join_s, 1),
                    "scale_out_s": round(scale_out_s, 1),
                    "scale_in_s": round(scale_in_s, 1),
                    "idle_s": 60,
                }
        except Exception as exc:
            ok = False
            print(f"bench/elastic.py failed: {exc}", file=sys.stderr)
        finally:
            stop.set()
    if line:
        print(json.dumps(line))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
