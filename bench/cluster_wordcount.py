"""Benchmark: ``sparkube wordcount`` on the process cluster, against a bare in-cluster
spark-submit of the same driver Job and against ``sparkube wordcount --local``.

Starts a moto server on 127.0.0.1 and a process cluster (tests/fixtures/procnodes.py:
test control plane + the process-node agent playing ``worker-1``/``worker-2``, needs root),
prepares it as the ``lab`` fixture of tests/integration/test_cluster_jobs.py does (the
cluster's kubeconfig in SPARKUBE_HOME/sparkube/, the bucket in moto, the spark RBAC and
the ``sparkube-cluster`` ConfigMap, pods pointed at moto and the local jars repository),
writes a generated text of --mb MB once to a temp file, then measures in the same run:

1. ``sparkube wordcount FILE`` on the cluster, end to end: the CLI run in-process
   (``sparkube.cli.app.run``), timed from the call to its return. A first run uploads
   the input; the next ones find it in the bucket (content-addressed: hash + HEAD only).
   The phases come from timestamps taken inside that same run: the library functions
   the CLI calls (``jobs.run_wordcount_cluster``, ``jobs.upload_inputs``,
   ``ClusterJobs.submit/wait/finish``, ``jobs.concat_objects``) are wrapped to stamp
   their start and end, and a watch on the ``spark`` namespace stamps the first time the
   driver pod is seen in phase Running and in phase Succeeded/Failed.
2. The baseline: a bare in-cluster spark-submit of the same job. The Job and ConfigMap
   of ``podspec.job_manifests`` for the same JobSpec (same app, arguments, resources,
   endpoints; the input already in S3) are POSTed directly and the driver pod's phase is
   polled every 0.25 s until Succeeded; no upload, no record, no log archive, no
   download. sparkube's overhead = (1) - (2), also as the ratio (1) / (2). On a small
   machine the driver's own running time varies by tens of seconds between identical
   jobs, so the time each run spends outside the driver (total - driver Running ->
   Succeeded) is printed too: that difference is sparkube's overhead without the noise.
3. ``sparkube wordcount --local FILE`` (the CLI in-process, embedded Spark in its own
   JVM) on the same file: the ratio cluster / local.
4. Jar delivery: the local jars repository's HTTP server is wrapped to record every
   GET (start, end, bytes); per job the GETs before its first executor pod exists are
   the driver's init container's, the later ones the executors'. sparkube's own jobs
   take the S3 jars from the cluster's bucket (sparkube.spark.jars: "no GETs" here);
   the bare baseline's manifests carry no bucket URLs, so it takes them from the
   repository. Plus an HTTP GET of every jar URL from this machine
   (loopback: a lower bound; from Maven Central it takes longer), with the MB.

No timed assertions: only a failed job makes the exit code non-zero. Everything (pods,
agent, control plane, moto, temp folder) is removed at the end, also on Ctrl-C.

    sudo .venv/bin/python bench/cluster_wordcount.py [--mb 200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.aws import s3 as s3_mod  # noqa: E402
from sparkube.cli.app import run as cli_run  # noqa: E402
from sparkube.env import Environment  # noqa: E402
from sparkube.spark import cluster as cluster_mod  # noqa: E402
from sparkube.spark import jobs as jobs_mod  # noqa: E402
from sparkube.spark import local  # noqa: E402
from sparkube.spark.config import JOB_LABEL, ROLE_LABEL  # noqa: E402
from sparkube.spark.image import SPARK_IMAGE, maven_path  # noqa: E402
from sparkube.spark.podspec import JobSpec, job_manifests  # noqa: E402
from sparkube.spark.rbac import SPARK_NAMESPACE  # noqa: E402
from sparkube.spark.records import log_key, now_iso, output_prefix  # noqa: E402
from tests.fixtures.common import isolated_environment  # noqa: E402
from tests.fixtures.controlplane import binaries_problem, kube_bin_dir  # noqa: E402
from tests.fixtures.moto_server import REGION  # noqa: E402
from tests.fixtures.procnode.images import spark_layer  # noqa: E402
from tests.fixtures.procnodes import (  # noqa: E402
    ProcessCluster,
    prepare_jobs_cluster,
    procnode_skip_reason,
    start_process_cluster,
    stop_process_cluster,
)
from tests.wordref import generate_text  # noqa: E402

CLUSTER = "sparkube"
TOP = "20"
POLL = 0.25  # the baseline's driver-phase polling interval (sparkube's own is 1 s)


# --------------------------------------------------------------------------- setup


def make_corpus(path: Path, size_mb: int) -> None:
    """``size_mb`` MB: generated ~1 MB blocks (8 seeds) repeated, written once."""
    blocks = [generate_text(170_000, seed=s).encode() for s in range(8)]
    target = size_mb * 1_000_000
    written = 0
    with path.open("wb") as out:
        i = 0
        while written < target:
            out.write(blocks[i % len(blocks)])
            written += len(blocks[i % len(blocks)])
            i += 1


def prepare_lab(pc: ProcessCluster, moto_url: str, tmp: Path) -> tuple[Environment, str]:
    """What the ``lab`` fixture does (tests/fixtures/procnodes.prepare_jobs_cluster), in
    an isolated environment of its own under ``tmp``."""
    return prepare_jobs_cluster(pc, isolated_environment(tmp), moto_url, CLUSTER)


# --------------------------------------------------------------------------- observation


class DriverWatch:
    """A watch on the spark namespace in a thread: per driver pod (label
    sparkube.io/role=driver), the monotonic time it was first seen, first seen in phase
    Running, and first seen Succeeded/Failed; also the first executor seen running."""

    def __init__(self, pc: ProcessCluster) -> None:
        self.pc = pc
        self.first: dict[tuple[str, str], float] = {}  # (job id, event) -> time
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        listing = pc.kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods")
        self.rv = str(listing["metadata"]["resourceVersion"])
        self.thread = threading.Thread(target=self._loop, name="driver-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while not self.stopping.is_set():
                self._watch_once()
        except BaseException as exc:
            self.error = exc

    def _watch_once(self) -> None:
        query = urllib.parse.urlencode(
            {"watch": "1", "resourceVersion": self.rv, "allowWatchBookmarks": "true",
             "timeoutSeconds": "5"}
        )  # fmt: skip
        url = f"{self.pc.kube.server}/api/v1/namespaces/{SPARK_NAMESPACE}/pods?{query}"
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, context=self.pc.kube._ssl, timeout=30) as resp:
            for line in resp:
                seen = time.monotonic()
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    if obj.get("code") == 410:
                        listing = self.pc.kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods")
                        self.rv = str(listing["metadata"]["resourceVersion"])
                        return
                    raise RuntimeError(f"pod watch error: {obj}")
                self.rv = str(obj["metadata"]["resourceVersion"])
                if event["type"] != "BOOKMARK":
                    self._record(obj, seen)

    def _record(self, pod: dict[str, Any], seen: float) -> None:
        labels = pod["metadata"].get("labels") or {}
        job = labels.get(JOB_LABEL)
        if not job:
            return
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        with self.lock:
            if labels.get(ROLE_LABEL) == "driver":
                self.first.setdefault((job, "driver seen"), seen)
                if phase in ("Running", "Succeeded", "Failed"):
                    self.first.setdefault((job, "driver running"), seen)
                if phase in ("Succeeded", "Failed"):
                    self.first.setdefault((job, "driver ended"), seen)
            elif labels.get("spark-role") == "executor":
                self.first.setdefault((job, "executor seen"), seen)
                if phase == "Running":
                    self.first.setdefault((job, "executor running"), seen)

    def get(self, job: str, event: str) -> float | None:
        with self.lock:
            return self.first.get((job, event))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


@dataclass
class Marks:
    """Start/end times of the library calls one CLI run makes, stamped by wrappers."""

    times: dict[str, float] = field(default_factory=dict)
    job_id: str = ""
    spec: JobSpec | None = None
    uploads: list[s3_mod.Upload] = field(default_factory=list)
    polls: int = 0


@contextlib.contextmanager
def instrumented(marks: Marks) -> Iterator[None]:
    """Wrap the functions the CLI's cluster wordcount calls; restore them afterwards."""
    patched: list[tuple[Any, str, Any]] = []

    def wrap(
        owner: Any, name: str, after: Callable[[Any, tuple[Any, ...]], None] | None = None
    ) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            marks.times.setdefault(f"{name} start", time.monotonic())
            result = original(*args, **kwargs)
            marks.times.setdefault(f"{name} end", time.monotonic())
            if after is not None:
                after(result, args)
            return result

        patched.append((owner, name, original))
        setattr(owner, name, timed)

    def on_submit(record: Any, args: tuple[Any, ...]) -> None:
        marks.spec = args[1]
        marks.job_id = record.job_id

    def on_upload(uploads: Any, args: tuple[Any, ...]) -> None:
        marks.uploads = list(uploads)

    original_progress = cluster_mod.ClusterJobs.progress

    def counting_progress(self: Any, *args: Any, **kwargs: Any) -> Any:
        marks.polls += 1
        return original_progress(self, *args, **kwargs)

    wrap(jobs_mod, "run_wordcount_cluster")
    wrap(jobs_mod, "upload_inputs", on_upload)
    wrap(cluster_mod.ClusterJobs, "submit", on_submit)
    wrap(cluster_mod.ClusterJobs, "wait")
    wrap(cluster_mod.ClusterJobs, "finish")
    wrap(jobs_mod, "concat_objects")
    patched.append((cluster_mod.ClusterJobs, "progress", original_progress))
    cluster_mod.ClusterJobs.progress = counting_progress  # type: ignore[method-assign]
    try:
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def cli(env: Environment, *args: str) -> tuple[float, str, str]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = cli_run(list(args), env=env, stdout=out, stderr=err)
    elapsed = time.monotonic() - started
    if code != 0:
        raise RuntimeError(f"sparkube {' '.join(args)} exited {code}:\n{err.getvalue()[-4000:]}")
    return elapsed, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- jars


class JarRequests:
    """Every GET the local jars repository serves: (start, end, bytes), monotonic.

    The repository is the fixture's HTTP server on 127.0.0.1; pods reach it through the
    agent's forwarder, so the client address says nothing and requests are attributed
    by time: before the job's first executor pod exists they are the driver's
    (spark-submit fetching ``spark.jars``), after it the executors'."""

    def __init__(self, pc: ProcessCluster) -> None:
        self.requests: list[tuple[float, float, int]] = []
        self.lock = threading.Lock()
        server = pc._maven_server
        handler = server.RequestHandlerClass  # functools.partial(QuietHandler, directory=)
        log = self

        class Timed(handler.func):  # type: ignore[name-defined,misc]
            def do_GET(self) -> None:
                started = time.monotonic()
                super().do_GET()
                local_path = self.translate_path(self.path)
                size = os.path.getsize(local_path) if os.path.isfile(local_path) else 0
                with log.lock:
                    log.requests.append((started, time.monotonic(), size))

        server.RequestHandlerClass = functools.partial(Timed, **handler.keywords)

    def between(self, start: float, end: float) -> list[tuple[float, float, int]]:
        with self.lock:
            return sorted(r for r in self.requests if start <= r[0] <= end)


def jar_summary(requests: list[tuple[float, float, int]]) -> str:
    if not requests:
        return "no GETs"
    span = max(r[1] for r in requests) - requests[0][0]
    busy = sum(r[1] - r[0] for r in requests)
    mb = sum(r[2] for r in requests) / 1e6
    return f"{len(requests):3d} GETs {mb:5.1f} MB, first->last {span:5.2f} s, sum {busy:5.2f} s"


def added_jars(log: str) -> int:
    return sum(1 for line in log.splitlines() if "SparkContext: Added JAR" in line)


def http_jars(pc: ProcessCluster) -> tuple[float, int]:
    """GET every S3 jar from the local repository over loopback: (seconds, bytes)."""
    base = f"http://127.0.0.1:{pc.maven_port}"
    total = 0
    started = time.monotonic()
    for jar in SPARK_IMAGE.s3_jars:
        with urllib.request.urlopen(f"{base}/{maven_path(jar.coord)}", timeout=60) as resp:
            total += len(resp.read())
    return time.monotonic() - started, total


# --------------------------------------------------------------------------- the runs


def clear_jobs(pc: ProcessCluster) -> None:
    """Delete every Job in the spark namespace and wait until its pods are gone (untimed),
    so each run starts on an empty cluster."""
    pc.kube.kubectl("delete", "jobs", "-n", SPARK_NAMESPACE, "--all", "--wait=true", timeout=120)
    pc.kube.wait_for(
        "spark pods gone",
        lambda: not pc.kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods")["items"],
        timeout=120,
    )


def others_running() -> list[str]:
    """Other test runs on this machine (they share its 2 cores and skew the timings)."""
    import subprocess

    out = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True).stdout
    return out.split()


def jar_split(
    jars: JarRequests, watch: DriverWatch, job: str, start: float, end: float
) -> tuple[list[tuple[float, float, int]], list[tuple[float, float, int]]]:
    """The job's jar GETs: (the driver's, the executors'), split at its first executor pod."""
    requests = jars.between(start, end)
    split = watch.get(job, "executor seen") or end
    return [r for r in requests if r[0] < split], [r for r in requests if r[0] >= split]


def run_sparkube(
    env: Environment,
    watch: DriverWatch,
    jars: JarRequests,
    corpus: Path,
    out: Path,
    s3: Any,
    bucket: str,
) -> dict[str, Any]:
    marks = Marks()
    others = others_running()
    with instrumented(marks):
        t0 = time.monotonic()
        total, _, _ = cli(env, "wordcount", str(corpus), "--top", TOP, "--output-dir", str(out))
        t_end = t0 + total
    m, job = marks.times, marks.job_id
    running, ended = watch.get(job, "driver running"), watch.get(job, "driver ended")
    if running is None or ended is None:
        raise RuntimeError(f"the watch missed driver {job} (running {running}, ended {ended})")
    log = s3_mod.get_text(s3, bucket, log_key(job)) or ""
    return {
        "job": job,
        "others": others + others_running(),
        "jars": jar_split(jars, watch, job, t0, t_end),
        "spec": marks.spec,
        "uploads": marks.uploads,
        "polls": marks.polls,
        "log": log,
        "total": total,
        "CLI start-up (spec, kubeconfig, cluster config)": m["upload_inputs start"] - t0,
        "upload (hash + HEAD + PUT)": m["upload_inputs end"] - m["upload_inputs start"],
        "submit (events HEAD, Job, ConfigMap, record)": m["submit end"] - m["submit start"],
        "submit start -> driver Running": running - m["submit start"],
        "driver Running -> Succeeded": ended - running,
        "driver ended -> sparkube noticed": m["finish start"] - ended,
        "archive log + record": m["finish end"] - m["finish start"],
        "download + merge": m["run_wordcount_cluster end"] - m["wait end"],
        "  of which concat_objects": m["concat_objects end"] - m["concat_objects start"],
        "CLI output + exit": t_end - m["run_wordcount_cluster end"],
        "executor running after driver": (watch.get(job, "executor running") or running) - running,
        "outside the driver (total - Running->Succeeded)": total - (ended - running),
    }


def run_baseline(
    pc: ProcessCluster,
    env: Environment,
    watch: DriverWatch,
    jars: JarRequests,
    input_key: str,
    s3: Any,
    run: int,
) -> dict[str, Any]:
    """The same driver Job, POSTed directly; the driver phase polled to the end."""
    api = jobs_mod.open_cluster(env, CLUSTER)
    config = api.config()
    job_id = f"bl-{run}-{os.getpid()}"
    parts = f"_sparkube-parts-{job_id}"
    out_uri = s3_mod.s3a(config.bucket, output_prefix(job_id))
    spec = JobSpec(
        job_id=job_id,
        app_name="wordcount",
        app_file="wordcount.py",
        app_bytes=local.app_path("wordcount").read_bytes(),
        args=("--output", out_uri, "--top", TOP, "--parts-name", parts,
              s3_mod.s3a(config.bucket, input_key)),
        resources=jobs_mod.resources_for(config),
        kind="wordcount",
        output_uri=out_uri,
    )  # fmt: skip
    job, configmap = job_manifests(spec, config, api.endpoints, submitted=now_iso())
    selector = urllib.parse.quote(f"{JOB_LABEL}={job_id},{ROLE_LABEL}=driver")
    others = others_running()
    t0 = time.monotonic()
    created = pc.create(SPARK_NAMESPACE, job)
    configmap["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job_id,
         "uid": created["metadata"]["uid"], "blockOwnerDeletion": False}
    ]  # fmt: skip
    pc.create(SPARK_NAMESPACE, configmap)
    phase = ""
    pod: dict[str, Any] = {}
    while phase not in ("Succeeded", "Failed"):
        time.sleep(POLL)
        items = pc.kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods?labelSelector={selector}")
        pod = items["items"][0] if items["items"] else {}
        phase = (pod.get("status") or {}).get("phase", "")
        if time.monotonic() - t0 > 1800:
            raise TimeoutError(f"baseline driver {job_id} still {phase or 'absent'} after 30 min")
    total = time.monotonic() - t0
    t_end = time.monotonic()
    log = pc.logs(SPARK_NAMESPACE, pod["metadata"]["name"], "driver")
    keys = s3_mod.list_keys(s3, config.bucket, output_prefix(job_id) + parts)
    if phase != "Succeeded" or not any("/part-" in k for k in keys):
        raise RuntimeError(f"baseline driver {job_id} {phase}:\n{log[-4000:]}")
    running, ended = watch.get(job_id, "driver running"), watch.get(job_id, "driver ended")
    if running is None or ended is None:
        raise RuntimeError(f"the watch missed driver {job_id} (running {running}, ended {ended})")
    return {
        "job": job_id,
        "others": others + others_running(),
        "jars": jar_split(jars, watch, job_id, t0, t_end),
        "log": log,
        "total": total,
        "submit start -> driver Running": running - t0,
        "driver Running -> Succeeded": ended - running,
        "executor running after driver": (watch.get(job_id, "executor running") or running)
        - running,
        "outside the driver (total - Running->Succeeded)": total - (ended - running),
    }


# --------------------------------------------------------------------------- report


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def problem() -> str | None:
    reason = procnode_skip_reason()
    if reason:
        return f"{reason} (run: sudo .venv/bin/python bench/cluster_wordcount.py)"
    bin_dir = kube_bin_dir()
    found = binaries_problem(bin_dir, check_stamp=not os.environ.get("SPARKUBE_KUBE_BIN_DIR"))
    if found:
        return f"{found} (looked in {bin_dir})"
    layer = spark_layer()
    if layer is None or not (layer.parent / "maven").is_dir():
        return "Spark image layer or its jars repository not built: run bash tools/spark/build.sh"
    return None


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def report(
    first: dict[str, Any],
    cached: list[dict[str, Any]],
    baseline: list[dict[str, Any]],
    local_s: list[float],
    jars_http: tuple[float, int],
    size_mb: float,
) -> None:
    n = len(cached)
    print(f"\n{'sparkube wordcount on the cluster (s)':<48} {'1st':>7} {'cached':>7} {'bare':>7}")
    print(f"{'':<48} {'upload':>7} {'med/' + str(n):>7} {'med/' + str(n):>7}")
    keys = [k for k in first if isinstance(first[k], float) and k != "total"]
    for key in keys:
        bare = f"{med(baseline, key):7.1f}" if key in baseline[0] else f"{'-':>7}"
        print(f"{key:<48} {first[key]:7.1f} {med(cached, key):7.1f} {bare}")
    c_total, b_total = med(cached, "total"), med(baseline, "total")
    print(f"{'TOTAL (wall)':<48} {first['total']:7.1f} {c_total:7.1f} {b_total:7.1f}")
    skipped = [not u.uploaded for r in cached for u in r["uploads"]]
    uploaded = [u.uploaded for u in first["uploads"]]
    print(f"first run uploaded the input: {uploaded}; cached runs skipped it: {skipped}")
    print(f"sparkube polls of the driver/executors per run: first {first['polls']}, "
          f"cached {[r['polls'] for r in cached]}")  # fmt: skip

    print(f"\n{'summary (' + format(size_mb, '.0f') + ' MB)':<48} {'seconds':>8} {'MB/s':>7}")
    rows = [
        ("sparkube wordcount, cluster, 1st (uploads)", first["total"]),
        ("sparkube wordcount, cluster, input cached", c_total),
        ("bare in-cluster spark-submit (same Job)", b_total),
        ("sparkube wordcount --local", statistics.median(local_s)),
    ]
    for name, secs in rows:
        print(f"{name:<48} {secs:8.1f} {size_mb / secs:7.2f}")
    print(f"sparkube overhead, cached input:  {c_total - b_total:+.1f} s  "
          f"(ratio sparkube/bare {c_total / b_total:.2f})")  # fmt: skip
    print(f"sparkube overhead, with upload:   {first['total'] - b_total:+.1f} s  "
          f"(ratio {first['total'] / b_total:.2f})")  # fmt: skip
    l_med = statistics.median(local_s)
    print(f"ratio cluster/local: cached {c_total / l_med:.2f}, 1st {first['total'] / l_med:.2f}, "
          f"bare {b_total / l_med:.2f}")  # fmt: skip

    jar_mb = SPARK_IMAGE.s3_jars_bytes / 1e6
    print(f"\njar delivery (spark.jars): {len(SPARK_IMAGE.s3_jars)} jars, {jar_mb:.1f} MB; "
          f"HTTP GET of all from this machine (loopback) {jars_http[0]:.2f} s "
          f"for {jars_http[1] / 1e6:.1f} MB")  # fmt: skip
    print(
        "  per job, from the repository's request log (first->last: first GET start to "
        "last GET end; sum: GET durations added):"
    )
    for label, r in (
        [("1st", first)]
        + [(f"cached {i + 1}", c) for i, c in enumerate(cached)]
        + [(f"bare {i + 1}", b) for i, b in enumerate(baseline)]
    ):
        driver, executors = r["jars"]
        print(f"  {label:<9} driver    {jar_summary(driver)}; {added_jars(r['log'])} "
              "'Added JAR' lines in its log")  # fmt: skip
        print(f"  {'':<9} executors {jar_summary(executors)}")
    contended = {
        label: r["others"]
        for label, r in [("1st", first), *[(f"cached {i + 1}", c) for i, c in enumerate(cached)],
                         *[(f"bare {i + 1}", b) for i, b in enumerate(baseline)]]
        if r["others"]
    }  # fmt: skip
    if contended:
        print(f"\nWARNING: other pytest processes ran during {sorted(contended)}: timings skewed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the generated input")
    parser.add_argument("--repeat", type=int, default=1, help="cached/bare/local runs each")
    parser.add_argument("--keep-logs", type=Path, help="write the driver logs into this folder")
    args = parser.parse_args()
    found = problem()
    if found:
        print(f"bench/cluster_wordcount.py: {found}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    from moto.server import ThreadedMotoServer

    ok = True
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-cwc-") as tmp_name:
        tmp = Path(tmp_name)
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        pc: ProcessCluster | None = None
        watch: DriverWatch | None = None
        try:
            host, moto_port = moto.get_host_and_port()
            moto_url = f"http://{host}:{moto_port}"
            t0 = time.monotonic()
            corpus = tmp / "corpus.txt"
            make_corpus(corpus, args.mb)
            size_mb = corpus.stat().st_size / 1e6
            print(f"input: {size_mb:.1f} MB generated in {time.monotonic() - t0:.1f} s; "
                  f"{os.cpu_count()} CPUs; {load()}", flush=True)  # fmt: skip
            t0 = time.monotonic()
            pc = start_process_cluster(tmp / "cluster", int(moto_port))
            env, bucket = prepare_lab(pc, moto_url, tmp)
            print(f"process cluster up and prepared in {time.monotonic() - t0:.1f} s", flush=True)
            import boto3

            s3 = boto3.client(
                "s3",
                endpoint_url=moto_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            watch = DriverWatch(pc)
            jar_log = JarRequests(pc)
            jars = http_jars(pc)

            first = run_sparkube(env, watch, jar_log, corpus, tmp / "out-1", s3, bucket)
            print(f"  cluster run 1 (upload): {first['total']:.1f} s", flush=True)
            input_key = first["uploads"][0].key
            clear_jobs(pc)
            cached: list[dict[str, Any]] = []
            baseline: list[dict[str, Any]] = []
            local_s: list[float] = []
            for i in range(1, args.repeat + 1):
                baseline.append(run_baseline(pc, env, watch, jar_log, input_key, s3, i))
                print(f"  bare run {i}: {baseline[-1]['total']:.1f} s", flush=True)
                clear_jobs(pc)
                cached.append(
                    run_sparkube(env, watch, jar_log, corpus, tmp / f"out-c{i}", s3, bucket)
                )
                print(f"  cluster run {i + 1} (cached input): {cached[-1]['total']:.1f} s",
                      flush=True)  # fmt: skip
                clear_jobs(pc)
                others = others_running()
                secs, _, _ = cli(env, "wordcount", "--local", str(corpus), "--top", TOP,
                                 "--output-dir", str(tmp / f"out-l{i}"))  # fmt: skip
                local_s.append(secs)
                others += others_running()
                busy = f" (WARNING: pytest running: {others})" if others else ""
                print(f"  local run {i}: {secs:.1f} s{busy}", flush=True)
            same = (tmp / "out-1" / "wordcount.csv").read_bytes() == (
                tmp / "out-l1" / "wordcount.csv"
            ).read_bytes()
            print(f"cluster result identical to local: {same}; after the runs: {load()}")
            ok = same
            if watch.error is not None:
                print(f"(the pod watch failed: {watch.error!r})")
            report(first, cached, baseline, local_s, jars, size_mb)
            if args.keep_logs:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                for r in [first, *cached, *baseline]:
                    (args.keep_logs / f"{r['job']}.log").write_text(r["log"])
        except Exception as exc:
            ok = False
            print(f"bench/cluster_wordcount.py failed: {exc}", file=sys.stderr)
        finally:
            if watch is not None:
                watch.stop()
            if pc is not None:
                stop_process_cluster(pc)
            moto.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
