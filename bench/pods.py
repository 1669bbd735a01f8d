"""Benchmark: how fast do pods start and stop on the process nodes, and what does that
cost a real Spark job?

Starts a moto server on 127.0.0.1 and a process cluster (tests/fixtures/procnodes.py:
test control plane + the process-node agent playing ``worker-1``/``worker-2``, needs root),
then measures in the same run:

1. Pod start-up: N pods (default 20) of ``python:3.11-slim`` running ``time.sleep(600)``,
   created in batches (default 5): the POSTs of a batch are sent back to back, the next
   batch once the whole batch runs. A watch on the namespace timestamps, per pod, the first
   observation of ``spec.nodeName`` (scheduled) and of a container state ``running``; the
   latency is counted from the start of the pod's POST. Then the pods are deleted in the
   same batches (default grace period; python exits on SIGTERM) and DELETE -> the watch's
   DELETED event is timed. p50/p95 (nearest rank) and max are printed.
2. SparkPi (org.apache.spark.examples.SparkPi, 20 slices): the wall time of the
   spark-submit command in cluster mode with 2 executors (the submission of
   tests/integration/test_spark_procnodes.py) against the same example with
   ``--master local[2]`` on the host, from the same Spark home (the image layer built by
   tools/spark/build.sh), JVM start included in both. Each is run --repeat times
   (alternating local, cluster); the medians and the ratio cluster/local are printed.

No timed assertions: only a failed pod or job makes the exit code non-zero. Everything
(pods, namespaces, agent, control plane, moto, temp folder) is removed at the end, also
on Ctrl-C.

    sudo .venv/bin/python bench/pods.py [--pods 20] [--batch 5] [--repeat 1]
        [--agent-log PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.spark.image import SPARK_IMAGE  # noqa: E402
from sparkube.spark.rbac import SPARK_NAMESPACE  # noqa: E402
from tests.fixtures.controlplane import binaries_problem, kube_bin_dir  # noqa: E402
from tests.fixtures.procnode.images import spark_layer  # noqa: E402
from tests.fixtures.procnodes import (  # noqa: E402
    ProcessCluster,
    procnode_skip_reason,
    start_process_cluster,
    stop_process_cluster,
)

PY = "python:3.11-slim"
NAMESPACE = "bench-pods"
JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
SPARK_PI = "org.apache.spark.examples.SparkPi"
SLICES = "20"


# --------------------------------------------------------------------------- pods


class PodWatch:
    """A watch on one namespace's pods in a thread: first-seen monotonic times per pod."""

    def __init__(self, pc: ProcessCluster, namespace: str) -> None:
        self.pc = pc
        self.namespace = namespace
        self.scheduled: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        listing = pc.kube.get(f"/api/v1/namespaces/{namespace}/pods")
        self.rv = str(listing["metadata"]["resourceVersion"])
        self.thread = threading.Thread(target=self._loop, name="pod-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while not self.stopping.is_set():
                self._watch_once()
        except BaseException as exc:  # reported by wait()
            with self.cond:
                self.error = exc
                self.cond.notify_all()

    def _watch_once(self) -> None:
        query = urllib.parse.urlencode(
            {"watch": "1", "resourceVersion": self.rv, "allowWatchBookmarks": "true",
             "timeoutSeconds": "5"}
        )  # fmt: skip
        url = f"{self.pc.kube.server}/api/v1/namespaces/{self.namespace}/pods?{query}"
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.pc.kube._ssl, timeout=30) as resp:
            for line in resp:
                seen = time.monotonic()
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    if obj.get("code") == 410:  # expired: start over from a fresh list
                        listing = self.pc.kube.get(f"/api/v1/namespaces/{self.namespace}/pods")
                        self.rv = str(listing["metadata"]["resourceVersion"])
                        return
                    raise RuntimeError(f"pod watch error: {obj}")
                self.rv = str(obj["metadata"]["resourceVersion"])
                if event["type"] != "BOOKMARK":
                    self._record(event["type"], obj, seen)

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
        self.thread.join(timeout=10)


def sleeper(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench-sleeper"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": PY,
                 "command": ["python3", "-c", "import time; time.sleep(600)"]}
            ],
        },
    }  # fmt: skip


def measure_pods(pc: ProcessCluster, count: int, batch: int) -> dict[str, list[float]]:
    pc.kube.create_namespace(NAMESPACE)
    watch = PodWatch(pc, NAMESPACE)
    names = [f"sleeper-{i:02d}" for i in range(count)]
    posted: dict[str, float] = {}
    deleted: dict[str, float] = {}
    try:
        for start in range(0, count, batch):
            group = names[start : start + batch]
            for name in group:
                posted[name] = time.monotonic()
                pc.create(NAMESPACE, sleeper(name))
            watch.wait(f"{group} running", lambda g=group: all(n in watch.running for n in g), 120)
        for start in range(0, count, batch):
            group = names[start : start + batch]
            for name in group:
                deleted[name] = time.monotonic()
                pc.kube.api("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
            watch.wait(f"{group} gone", lambda g=group: all(n in watch.gone for n in g), 120)
    finally:
        watch.stop()
    return {
        "POST -> scheduled": [watch.scheduled[n] - posted[n] for n in names],
        "POST -> running": [watch.running[n] - posted[n] for n in names],
        "DELETE -> gone": [watch.gone[n] - deleted[n] for n in names],
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --------------------------------------------------------------------------- SparkPi


def spark_env(home: Path, spark_home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBECONFIG", "SPARK_", "PYSPARK_"))
    }
    env.update(
        HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", JAVA_HOME=JAVA_HOME, SPARK_HOME=str(spark_home)
    )
    return env


def run_local(spark_home: Path, tmp: Path) -> float:
    home = tmp / "home-local"
    home.mkdir(exist_ok=True)
    cmd = [
        str(spark_home / "bin" / "spark-submit"),
        "--master", "local[2]",
        "--class", SPARK_PI,
        str(spark_home / "examples" / "jars" / "spark-examples.jar"),
        SLICES,
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=spark_env(home, spark_home), timeout=600
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0 or "Pi is roughly 3.1" not in done.stdout:
        raise RuntimeError(
            f"local SparkPi failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}"
        )
    return elapsed


def run_cluster(pc: ProcessCluster, tmp: Path, run: int) -> float:
    from tests.integration.test_spark_procnodes import driver_pod, executor_pods, spark_submit

    name = f"spark-pi-{run}"
    work = tmp / f"cluster-{run}"
    work.mkdir()
    app = ["--class", SPARK_PI, f"local://{SPARK_IMAGE.examples_jar}", SLICES]
    started = time.monotonic()
    submitted = spark_submit(pc, work, name, app, {"spark.executor.instances": "2"})
    elapsed = time.monotonic() - started
    driver = driver_pod(pc, name, submitted)
    driver_name = driver["metadata"]["name"]
    log = pc.logs(SPARK_NAMESPACE, driver_name)
    if driver["status"]["phase"] != "Succeeded" or "Pi is roughly 3.1" not in log:
        raise RuntimeError(
            f"cluster SparkPi failed (spark-submit exited {submitted.returncode}, driver "
            f"{driver['status']['phase']}):\n{log[-4000:]}\n"
            f"{(submitted.stdout + submitted.stderr)[-2000:]}"
        )
    # leave the cluster as found for the next run: driver deleted, executors gone
    pc.kube.api("DELETE", f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods/{driver_name}")
    pc.wait_gone(SPARK_NAMESPACE, driver_name, timeout=60)
    pc.kube.wait_for("executor pods gone", lambda: not executor_pods(pc), timeout=60)
    return elapsed


def measure_spark(pc: ProcessCluster, layer: Path, repeat: int, tmp: Path) -> list[list[float]]:
    from tests.integration.test_spark_procnodes import apply_rbac, submitter_token

    apply_rbac(pc)
    submitter_token(pc)  # the submitter's service account, created before any timing
    spark_home = layer / "opt" / "spark"
    runs: list[list[float]] = []
    for i in range(1, repeat + 1):
        local_s = run_local(spark_home, tmp)
        cluster_s = run_cluster(pc, tmp, i)
        runs.append([local_s, cluster_s])
        print(f"  SparkPi run {i}: local[2] {local_s:.1f} s, cluster {cluster_s:.1f} s", flush=True)
    return runs


# --------------------------------------------------------------------------- main


def agent_log_summary(path: Path) -> list[str]:
    if not path.exists():
        return [f"agent log {path} missing"]
    lines = path.read_text(errors="replace").splitlines()
    bad = [ln for ln in lines if " WARNING " in ln or " ERROR " in ln or "Traceback" in ln]
    out = [f"agent log: {len(lines)} lines, {len(bad)} WARNING/ERROR/Traceback"]
    out += [f"  {ln[:160]}" for ln in bad[:8]]
    return out


def problem(args: argparse.Namespace) -> str | None:
    reason = procnode_skip_reason()
    if reason:
        return f"{reason} (run: sudo .venv/bin/python bench/pods.py)"
    bin_dir = kube_bin_dir()
    found = binaries_problem(bin_dir, check_stamp=not os.environ.get("SPARKUBE_KUBE_BIN_DIR"))
    if found:
        return f"{found} (looked in {bin_dir})"
    if args.repeat > 0:
        if spark_layer() is None:
            return "Spark image layer not built: run bash tools/spark/build.sh"
        if not Path(JAVA_HOME, "bin", "java").exists():
            return f"Java 17 not found at {JAVA_HOME}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20, help="pods to start and delete")
    parser.add_argument("--batch", type=int, default=5, help="POSTs sent back to back")
    parser.add_argument("--repeat", type=int, default=1, help="SparkPi runs each (0: skip)")
    parser.add_argument("--agent-log", type=Path, help="copy the agent's log here at the end")
    args = parser.parse_args()
    found = problem(args)
    if found:
        print(f"bench/pods.py: {found}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so the cleanup below runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    from moto.server import ThreadedMotoServer

    print(f"{os.cpu_count()} CPUs; {args.pods} x {PY} pods in batches of {args.batch}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-pods-") as tmp_name:
        tmp = Path(tmp_name)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        pc: ProcessCluster | None = None
        try:
            _, moto_port = moto.get_host_and_port()
            t0 = time.monotonic()
            pc = start_process_cluster(tmp / "cluster", int(moto_port))
            print(f"process cluster up in {time.monotonic() - t0:.1f} s", flush=True)
            pods = measure_pods(pc, args.pods, args.batch)
            print(f"\n{'pods (n=' + str(args.pods) + ')':<20} {'p50':>7} {'p95':>7} {'max':>7}  s")
            for label, values in pods.items():
                print(
                    f"{label:<20} {percentile(values, 50):7.2f} {percentile(values, 95):7.2f} "
                    f"{max(values):7.2f}"
                )
            if args.repeat > 0:
                layer = spark_layer()
                assert layer is not None
                print(f"\nSparkPi, {SLICES} slices, {args.repeat} run(s) each:", flush=True)
                runs = measure_spark(pc, layer, args.repeat, tmp)
                local_s = statistics.median(r[0] for r in runs)
                cluster_s = statistics.median(r[1] for r in runs)
                print(f"\n{'SparkPi (median)':<34} {'seconds':>8}")
                print(f"{'spark-submit --master local[2]':<34} {local_s:8.1f}")
                print(f"{'cluster mode, 2 executors':<34} {cluster_s:8.1f}")
                print(f"ratio cluster/local = {cluster_s / local_s:.2f}")
        except Exception as exc:
            ok = False
            print(f"bench/pods.py failed: {exc}", file=sys.stderr)
        finally:
            if pc is not None:
                stop_process_cluster(pc)
                print("\n" + "\n".join(agent_log_summary(pc.agent_log)))
                if args.agent_log and pc.agent_log.exists():
                    shutil.copyfile(pc.agent_log, args.agent_log)
            moto.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
