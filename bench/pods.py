"""Benchmark: how fast do pods start and stop on real nodes, and what does a cluster cost
a small Spark job against the same job run locally?

The cluster is the one the tests under tests/bed/ share (tests/fixtures/bedcluster.py):
an in-process moto server on loopback, then ``sparkube up --workers 2`` against it, every
instance booted as a machine of the node bed (real kubelet, containerd, Flannel,
CoreDNS; it waits for the machine's one bed lock). Then, in the same run:

1. Pod start-up: N pods (default 20) of the bed's shell image (``sparkube.test/shell:1``,
   busybox) running ``sleep 600`` (a trap makes them exit at once on SIGTERM), created in
   batches (default 5): the creates of a batch are sent back to back, the next batch
   once the whole batch runs. One pod per worker runs first, untimed, so the image is on
   both workers (the pull is bench/nodes.py's ``first_job_s``; this is the kubelet and
   the runtime). A watch on the namespace (through the API server, from this machine)
   timestamps, per pod, the first observation of ``spec.nodeName`` (scheduled) and of a
   container state ``running``; the latency is counted from the start of the pod's
   create. Then the pods are deleted in the same batches (default grace period) and
   DELETE -> the watch's DELETED event is timed. p50/p95 (nearest rank) and max.
2. SparkPi (org.apache.spark.examples.SparkPi, 20 slices, the examples jar of the Spark
   image): ``sparkube submit --executors 2`` on the cluster (driver and executors as
   pods on the workers; the Spark image is already on them: the workers' pre-pull)
   against ``sparkube submit --local --executors 2`` (embedded Spark, local[2], on this
   machine), both the CLI in-process, wall time of the command. Each is run --repeat
   times (alternating local, cluster); the medians and the ratio cluster/local.

The last line is one JSON object. No timed assertions: only a failed pod or job makes the
exit code non-zero. Everything (pods, the cluster: ``down``, the machines, moto, the temp
folder) is removed at the end, also on Ctrl-C.

    sudo .venv/bin/python bench/pods.py [--pods 20] [--batch 5] [--repeat 1]

Measured on the project's 2-core test machine (December 2026, the defaults, Kubernetes
1.36.3 on containerd 2.3.4): ``up`` 49.1 s; create -> scheduled p50 0.04 s, p95 0.14 s;
create -> running p50 1.36 s, p95 1.79 s, max 1.84 s; DELETE -> gone p50 0.99 s, p95
1.37 s; SparkPi ``--local`` 4.7 s, on the cluster 22.1 s (ratio 4.68).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.cli.app import run as cli_run  # noqa: E402
from sparkube.env import Environment  # noqa: E402
from sparkube.spark.image import SPARK_IMAGE  # noqa: E402
from tests.fixtures.bedcluster import CLUSTER, BedCluster, start_bed_cluster  # noqa: E402
from tests.fixtures.moto_server import serve_moto  # noqa: E402
from tests.fixtures.nodebed import problem as bed_problem  # noqa: E402
from tests.fixtures.sparklayer import spark_layer  # noqa: E402

SHELL = "sparkube.test/shell:1"
NAMESPACE = "bench-pods"
SPARK_PI = "org.apache.spark.examples.SparkPi"
SLICES = "20"


# --------------------------------------------------------------------------- pods


class PodWatch:
    """A watch on one namespace's pods in a thread (its own API client): first-seen
    monotonic times per pod."""

    def __init__(self, env: Environment, namespace: str) -> None:
        from sparkube.kube.client import client_from_kubeconfig

        self.client = client_from_kubeconfig(env.cluster_dir(CLUSTER) / "kubeconfig")
        self.namespace = namespace
        self.scheduled: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="pod-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        from lightkube.resources.core_v1 import Pod

        try:
            for op, pod in self.client.watch(Pod, namespace=self.namespace, server_timeout=30):
                seen = time.monotonic()
                if self.stopping.is_set():
                    return
                self._record(op, pod.to_dict(), seen)
        except BaseException as exc:  # reported by wait()
            with self.cond:
                if not self.stopping.is_set():
                    self.error = exc
                self.cond.notify_all()

    def _record(self, kind: str, pod: dict[str, Any], seen: float) -> None:
        name = pod["metadata"]["name"]
        with self.cond:
            if pod["spec"].get("nodeName"):
                self.scheduled.setdefault(name, seen)
            status = pod.get("status") or {}
            for st in status.get("containerStatuses") or []:
                if "running" in (st.get("state") or {}):
                    self.running.setdefault(name, seen)
            if status.get("phase") in ("Failed", "Succeeded") and name not in self.running:
                self.failed[name] = json.dumps(status)[:2000]
            if kind == "DELETED":
                self.gone[name] = seen
            self.cond.notify_all()

    def wait(self, what: str, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not done():
                if self.error is not None:
                    raise RuntimeError(f"pod watch failed: {self.error!r}")
                if self.failed:
                    raise RuntimeError(f"pod ended before running: {self.failed}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
                self.cond.wait(min(left, 1.0))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=1)  # a daemon: its stream ends with the cluster


def sleeper(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {"name": "main", "image": SHELL,
             "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]}
        ],
    }  # fmt: skip
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench-sleeper"}},
        "spec": spec,
    }


def measure_pods(cluster: BedCluster, count: int, batch: int) -> dict[str, list[float]]:
    from lightkube import codecs
    from lightkube.resources.core_v1 import Pod

    from sparkube.kube.client import client_from_kubeconfig

    client = client_from_kubeconfig(cluster.env.cluster_dir(CLUSTER) / "kubeconfig")
    cluster.kubectl(f"create namespace {NAMESPACE}")
    watch = PodWatch(cluster.env, NAMESPACE)
    try:
        warm = [f"warm-{node}" for node in ("worker-1", "worker-2")]
        for name in warm:
            client.create(codecs.from_dict(sleeper(name, name.removeprefix("warm-"))))
        watch.wait("the warm-up pods running", lambda: all(n in watch.running for n in warm), 300)
        for name in warm:
            client.delete(Pod, name, namespace=NAMESPACE)
        watch.wait("the warm-up pods gone", lambda: all(n in watch.gone for n in warm), 120)

        names = [f"sleeper-{i:02d}" for i in range(count)]
        posted: dict[str, float] = {}
        deleted: dict[str, float] = {}
        for start in range(0, count, batch):
            group = names[start : start + batch]
            for name in group:
                posted[name] = time.monotonic()
                client.create(codecs.from_dict(sleeper(name)))
            watch.wait(f"{group} running", lambda g=group: all(n in watch.running for n in g), 180)
        for start in range(0, count, batch):
            group = names[start : start + batch]
            for name in group:
                deleted[name] = time.monotonic()
                client.delete(Pod, name, namespace=NAMESPACE)
            watch.wait(f"{group} gone", lambda g=group: all(n in watch.gone for n in g), 180)
    finally:
        watch.stop()
    return {
        "create -> scheduled": [watch.scheduled[n] - posted[n] for n in names],
        "create -> running": [watch.running[n] - posted[n] for n in names],
        "DELETE -> gone": [watch.gone[n] - deleted[n] for n in names],
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --------------------------------------------------------------------------- SparkPi


def submit_pi(env: Environment, *where: str) -> float:
    """``sparkube submit pi.jar`` (SparkPi, 2 executors) with ``where``; its seconds."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = cli_run(
        ["submit", "pi.jar", *where, "--class", SPARK_PI, "--executors", "2", SLICES],
        env=env, stdout=out, stderr=err,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if code != 0 or "Pi is roughly 3.1" not in out.getvalue():
        raise RuntimeError(
            f"sparkube submit {' '.join(where)} failed ({code}):\n"
            f"{err.getvalue()[-3000:]}\n{out.getvalue()[-2000:]}"
        )
    return elapsed


def measure_spark(cluster: BedCluster, layer: Path, repeat: int) -> list[list[float]]:
    env = cluster.env
    shutil.copy(layer / SPARK_IMAGE.examples_jar.lstrip("/"), env.cwd / "pi.jar")
    runs: list[list[float]] = []
    for i in range(1, repeat + 1):
        local_s = submit_pi(env, "--local")
        cluster_s = submit_pi(env, "--cluster", CLUSTER)
        runs.append([local_s, cluster_s])
        print(f"  SparkPi run {i}: local[2] {local_s:.1f} s, cluster {cluster_s:.1f} s", flush=True)
    return runs


# --------------------------------------------------------------------------- main


def problem(args: argparse.Namespace) -> str | None:
    reason = bed_problem()
    if reason:
        return f"{reason} (run: sudo .venv/bin/python bench/pods.py)"
    if args.repeat > 0 and spark_layer() is None:
        return "Spark image layer not built: run bash tools/spark/build.sh"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20, help="pods to start and delete")
    parser.add_argument("--batch", type=int, default=5, help="creates sent back to back")
    parser.add_argument("--repeat", type=int, default=1, help="SparkPi runs each (0: skip)")
    args = parser.parse_args()
    found = problem(args)
    if found:
        print(f"bench/pods.py: {found}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so the cleanup below runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)

    print(f"{os.cpu_count()} CPUs; {args.pods} x {SHELL} pods in batches of {args.batch}")
    ok = True
    line: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-pods-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "no-maven").mkdir()
        (tmp / "cluster").mkdir()
        try:
            with (
                serve_moto(tmp / "no-maven") as moto_url,
                start_bed_cluster(moto_url, tmp / "cluster") as cluster,
            ):
                print(f"sparkube up of 1+2 real nodes in {cluster.up_seconds:.1f} s", flush=True)
                line["up_s"] = round(cluster.up_seconds, 1)
                pods = measure_pods(cluster, args.pods, args.batch)
                print(f"\n{'pods (n=' + str(args.pods) + ')':<20} {'p50':>7} {'p95':>7} "
                      f"{'max':>7}  s")  # fmt: skip
                for label, values in pods.items():
                    print(
                        f"{label:<20} {percentile(values, 50):7.2f} "
                        f"{percentile(values, 95):7.2f} {max(values):7.2f}"
                    )
                    key = label.replace(" -> ", "_to_").replace(" ", "_").lower()
                    line[key + "_s"] = {
                        "p50": round(percentile(values, 50), 2),
                        "p95": round(percentile(values, 95), 2),
                        "max": round(max(values), 2),
                    }
                if args.repeat > 0:
                    layer = spark_layer()
                    assert layer is not None
                    print(f"\nSparkPi, {SLICES} slices, {args.repeat} run(s) each:", flush=True)
                    runs = measure_spark(cluster, layer, args.repeat)
                    local_s = statistics.median(r[0] for r in runs)
                    cluster_s = statistics.median(r[1] for r in runs)
                    print(f"\n{'SparkPi (median)':<40} {'seconds':>8}")
                    print(f"{'sparkube submit --local (local[2])':<40} {local_s:8.1f}")
                    print(f"{'sparkube submit on the cluster, 2 exec.':<40} {cluster_s:8.1f}")
                    print(f"ratio cluster/local = {cluster_s / local_s:.2f}")
                    line["spark_pi_local_s"] = round(local_s, 1)
                    line["spark_pi_cluster_s"] = round(cluster_s, 1)
                    line["spark_pi_ratio_cluster_over_local"] = round(cluster_s / local_s, 2)
        except Exception as exc:
            ok = False
            print(f"bench/pods.py failed: {exc}", file=sys.stderr)
    if line:
        print(json.dumps(line))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
