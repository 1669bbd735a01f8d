"""Benchmark: ``sparkube wordcount`` on a real cluster of the node bed, against a bare
in-cluster run of the same driver Job and against ``sparkube wordcount --local``.

The cluster is the one the tests under tests/bed/ share (tests/fixtures/bedcluster.py):
an in-process moto server on loopback (tests/fixtures/moto_server.py), then ``sparkube up
--workers 2`` against it, every instance moto launches booted as a machine of the node bed
(systemd, containerd, kubelet, real ``kubeadm``, Flannel, CoreDNS; it waits for the
machine's one bed lock). Everything the jobs need is what ``up`` made: the cluster's
bucket with the S3 jars in it, the spark RBAC, the ``sparkube-cluster`` ConfigMap; pods
reach S3 and the instance metadata through their node (tests/fixtures/motobed.py
``PodServices``). A generated text of --mb MB is written once to a temp file, then
measured in the same run:

1. ``sparkube wordcount FILE --cluster bed``, end to end: the CLI run in-process
   (``sparkube.cli.app.run``), timed from the call to its return. A first run uploads
   the input; the next ones find it in the bucket (content-addressed: hash + HEAD only).
   The phases come from timestamps taken inside that same run: the library functions
   the CLI calls (``jobs.run_wordcount_cluster``, ``jobs.upload_inputs``,
   ``ClusterJobs.submit/wait/finish``, ``jobs.concat_objects``) are wrapped to stamp
   their start and end, and a watch on the ``spark`` namespace (through the API server,
   from this machine) stamps the first time the driver pod is seen in phase Running and
   in phase Succeeded/Failed.
2. The baseline: a bare in-cluster run of the same job. The Job and ConfigMap that
   ``ClusterJobs.submit`` makes for the same JobSpec (``podspec.job_manifests``: same
   app, arguments, resources, endpoints, the same presigned URLs of the S3 jars in the
   bucket; the input already in S3) are created directly and the driver pod's phase is
   polled every 0.25 s until Succeeded; no upload, no record, no log archive, no
   download. sparkube's overhead = (1) - (2), also as the ratio (1) / (2). The driver's
   own running time varies between identical jobs on a small machine, so the time each
   run spends outside the driver (total - driver Running -> Succeeded) is printed too:
   that difference is sparkube's overhead without the noise.
3. ``sparkube wordcount --local FILE`` (the CLI in-process, embedded Spark in its own
   JVM on this machine) on the same file: the ratio cluster / local.
4. Jar delivery: how long each driver's ``fetch-s3-jars`` init container ran (from the
   kubelet's container status, whole seconds), and every GET the S3 jars' Maven
   repository (the fallback) served during the job (none while the bucket answers).
   Plus a GET of every jar from this machine, from the bucket (the presigned URLs pods
   get) and from the repository (both on the bed's bridge: lower bounds), with the MB.

The last line is one JSON object with the totals and ratios. No timed assertions: only
a failed job makes the exit code non-zero. Everything (the cluster: ``down`` at the end,
the machines, moto, the temp folder) is removed at the end, also on Ctrl-C.

    sudo .venv/bin/python bench/cluster_wordcount.py [--mb 200] [--repeat 1]

Measured on the project's 2-core test machine (December 2026, ``--mb 20``: 20.8 MB, one
run each, Kubernetes 1.36.3 on containerd 2.3.4, other engineers' tests running
beside it): ``up`` 47.6 s; sparkube on the cluster 37.5 s with the upload, 35.2 s with
the input already in the bucket, the bare Job 34.9 s (sparkube/bare 1.07 and 1.01; the
time outside the driver 3.4, 3.1 and 1.8 s), ``--local`` 9.4 s (cluster/local 3.75: the
driver pod ran 32-34 s, its executors came 5.5-6.3 s after it, on three nodes sharing
two cores). Submit to driver Running 1.6-2.1 s, the jars' init container within the
same second in every job (all 37 from the bucket, no GET of the repository); the result
byte for byte the local one.
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
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.aws import s3 as s3_mod  # noqa: E402
from sparkube.cli.app import run as cli_run  # noqa: E402
from sparkube.env import Environment  # noqa: E402
from sparkube.spark import cluster as cluster_mod  # noqa: E402
from sparkube.spark import jars as jars_mod  # noqa: E402
from sparkube.spark import jobs as jobs_mod  # noqa: E402
from sparkube.spark import local  # noqa: E402
from sparkube.spark.config import JOB_LABEL, ROLE_LABEL  # noqa: E402
from sparkube.spark.image import SPARK_IMAGE, maven_path  # noqa: E402
from sparkube.spark.podspec import JobSpec, job_manifests  # noqa: E402
from sparkube.spark.rbac import SPARK_NAMESPACE  # noqa: E402
from sparkube.spark.records import log_key, now_iso, output_prefix  # noqa: E402
from tests.fixtures.bedcluster import CLUSTER, BedCluster, start_bed_cluster  # noqa: E402
from tests.fixtures.moto_server import serve_moto  # noqa: E402
from tests.fixtures.nodebed import problem as bed_problem  # noqa: E402
from tests.fixtures.sparklayer import spark_dir, spark_layer  # noqa: E402
from tests.wordref import generate_text  # noqa: E402

TOP = "20"
POLL = 0.25  # the baseline's driver-phase polling interval (sparkube's own is 1 s)
JARS_INIT = "fetch-s3-jars"


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


def kube_client(env: Environment) -> Any:
    """A lightkube client of the cluster's admin kubeconfig, the one ``up`` wrote (the
    API server at the control plane's public IP, which the bed routes to the machine)."""
    from sparkube.kube.client import client_from_kubeconfig

    return client_from_kubeconfig(env.cluster_dir(CLUSTER) / "kubeconfig", timeout=30.0)


# --------------------------------------------------------------------------- observation


class DriverWatch:
    """A watch on the spark namespace in a thread (its own API client): per job, the
    monotonic time its driver pod (label sparkube.io/role=driver) was first seen, first
    seen in phase Running, and first seen Succeeded/Failed; also its first executor seen,
    and seen running."""

    def __init__(self, env: Environment) -> None:
        self.client = kube_client(env)
        self.first: dict[tuple[str, str], float] = {}  # (job id, event) -> time
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="driver-watch", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        from lightkube.resources.core_v1 import Pod

        try:
            # lightkube lists first, then watches from the list's resourceVersion and
            # starts over by itself when the server ends the watch
            for _op, pod in self.client.watch(Pod, namespace=SPARK_NAMESPACE, server_timeout=30):
                seen = time.monotonic()
                if self.stopping.is_set():
                    return
                self._record(pod.to_dict(), seen)
        except BaseException as exc:
            if not self.stopping.is_set():
                self.error = exc

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
        self.thread.join(timeout=1)  # a daemon: its stream ends with the cluster


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
    """Every GET the S3 jars' Maven repository on the bed's bridge serves (the fallback of
    the pods' ``fetch-s3-jars`` init container): (start, end, bytes), monotonic."""

    def __init__(self, cluster: BedCluster) -> None:
        self.requests: list[tuple[float, float, int]] = []
        self.lock = threading.Lock()
        server = cluster.pods._files
        handler: Any = server.RequestHandlerClass  # functools.partial(_QuietFiles, directory=)
        log = self

        class Timed(handler.func):  # type: ignore[misc]
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
    mb = sum(r[2] for r in requests) / 1e6
    return f"{len(requests)} GETs {mb:.1f} MB in {span:.2f} s"


def added_jars(log: str) -> int:
    return sum(1 for line in log.splitlines() if "SparkContext: Added JAR" in line)


def get_all(urls: list[str]) -> tuple[float, int]:
    """GET every URL from this machine: (seconds, bytes)."""
    total = 0
    started = time.monotonic()
    for url in urls:
        with urllib.request.urlopen(url, timeout=60) as resp:  # the bed's bridge only
            total += len(resp.read())
    return time.monotonic() - started, total


def http_jars(cluster: BedCluster, api: cluster_mod.ClusterJobs) -> dict[str, tuple[float, int]]:
    """Every S3 jar fetched from this machine: from the cluster's bucket (the presigned
    URLs a job's pods get) and from the Maven repository (the pods' fallback)."""
    bucket = jars_mod.presigned_urls(api._presigner(), api.config().bucket)
    repository = [
        f"{cluster.pods.jars_repository}/{maven_path(j.coord)}" for j in SPARK_IMAGE.s3_jars
    ]
    return {"bucket": get_all(bucket), "repository": get_all(repository)}


def init_seconds(pod: dict[str, Any], container: str = JARS_INIT) -> float | None:
    """How long the kubelet says an init container of ``pod`` ran (whole seconds)."""
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        done = (status.get("state") or {}).get("terminated")
        if status.get("name") == container and done:
            start = datetime.fromisoformat(done["startedAt"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(done["finishedAt"].replace("Z", "+00:00"))
            return (end - start).total_seconds()
    return None


def driver_pod(client: Any, job_id: str) -> dict[str, Any]:
    from lightkube.resources.core_v1 import Pod

    pods = client.list(
        Pod,
        namespace=SPARK_NAMESPACE,
        labels={JOB_LABEL: job_id, ROLE_LABEL: "driver"},
    )
    listed = [p.to_dict() for p in pods]
    return listed[0] if listed else {}


# --------------------------------------------------------------------------- the runs


def clear_jobs(cluster: BedCluster) -> None:
    """Delete every Job in the spark namespace and wait until its pods are gone (untimed),
    so each run starts on an empty cluster (the History Server is a Deployment: it stays)."""
    cluster.kubectl(f"-n {SPARK_NAMESPACE} delete jobs --all --wait=true --timeout=120s")
    deadline = time.monotonic() + 120
    selector = f"{JOB_LABEL}"
    while cluster.kubectl_json(f"-n {SPARK_NAMESPACE} get pods -l {selector}")["items"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the jobs' pods are still there after 120 s")
        time.sleep(1)


def others_running() -> list[str]:
    """Other test runs on this machine (they share its 2 cores and skew the timings)."""
    out = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True).stdout
    return out.split()


def run_sparkube(
    cluster: BedCluster,
    client: Any,
    watch: DriverWatch,
    jars: JarRequests,
    corpus: Path,
    out: Path,
    bucket: str,
) -> dict[str, Any]:
    marks = Marks()
    others = others_running()
    with instrumented(marks):
        t0 = time.monotonic()
        total, _, _ = cli(
            cluster.env, "wordcount", str(corpus), "--cluster", CLUSTER, "--top", TOP,
            "--output-dir", str(out),
        )  # fmt: skip
        t_end = t0 + total
    m, job = marks.times, marks.job_id
    running, ended = watch.get(job, "driver running"), watch.get(job, "driver ended")
    if running is None or ended is None:
        raise RuntimeError(f"the watch missed driver {job} (running {running}, ended {ended})")
    log = s3_mod.get_text(cluster.s3(), bucket, log_key(job)) or ""
    return {
        "job": job,
        "others": others + others_running(),
        "repository GETs": jars.between(t0, t_end),
        "jars init": init_seconds(driver_pod(client, job)),
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
    cluster: BedCluster,
    client: Any,
    watch: DriverWatch,
    jars: JarRequests,
    input_key: str,
    run: int,
) -> dict[str, Any]:
    """The same driver Job as sparkube's, created directly; the driver phase polled to
    the end."""
    from lightkube import codecs

    api = jobs_mod.open_cluster(cluster.env, CLUSTER)
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
    job, configmap = job_manifests(
        spec, config, api.endpoints, submitted=now_iso(),
        jar_urls=jars_mod.presigned_urls(api._presigner(), config.bucket),
    )  # fmt: skip
    others = others_running()
    t0 = time.monotonic()
    created = client.create(codecs.from_dict(job))
    configmap["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": job_id,
         "uid": created.metadata.uid, "blockOwnerDeletion": False}
    ]  # fmt: skip
    client.create(codecs.from_dict(configmap))
    phase = ""
    pod: dict[str, Any] = {}
    while phase not in ("Succeeded", "Failed"):
        time.sleep(POLL)
        pod = driver_pod(client, job_id)
        phase = (pod.get("status") or {}).get("phase", "")
        if time.monotonic() - t0 > 1800:
            raise TimeoutError(f"baseline driver {job_id} still {phase or 'absent'} after 30 min")
    total = time.monotonic() - t0
    t_end = time.monotonic()
    log = "".join(
        client.log(pod["metadata"]["name"], namespace=SPARK_NAMESPACE, container="driver")
    )
    keys = s3_mod.list_keys(cluster.s3(), config.bucket, output_prefix(job_id) + parts)
    if phase != "Succeeded" or not any("/part-" in k for k in keys):
        raise RuntimeError(f"baseline driver {job_id} {phase}:\n{log[-4000:]}")
    running, ended = watch.get(job_id, "driver running"), watch.get(job_id, "driver ended")
    if running is None or ended is None:
        raise RuntimeError(f"the watch missed driver {job_id} (running {running}, ended {ended})")
    return {
        "job": job_id,
        "others": others + others_running(),
        "repository GETs": jars.between(t0, t_end),
        "jars init": init_seconds(pod),
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
    reason = bed_problem()
    if reason:
        return f"{reason} (run: sudo .venv/bin/python bench/cluster_wordcount.py)"
    if spark_layer() is None or not (spark_dir() / "maven").is_dir():
        return "Spark image layer or its jars repository not built: run bash tools/spark/build.sh"
    return None


def med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def report(
    first: dict[str, Any],
    cached: list[dict[str, Any]],
    baseline: list[dict[str, Any]],
    local_s: list[float],
    jars_http: dict[str, tuple[float, int]],
    size_mb: float,
) -> dict[str, Any]:
    """Print the tables; return the JSON line's object."""
    n = len(cached)
    print(f"\n{'sparkube wordcount on the cluster (s)':<48} {'1st':>7} {'cached':>7} {'bare':>7}")
    print(f"{'':<48} {'upload':>7} {'med/' + str(n):>7} {'med/' + str(n):>7}")
    keys = [k for k in first if isinstance(first[k], float) and k not in ("total", "jars init")]
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

    l_med = statistics.median(local_s)
    print(f"\n{'summary (' + format(size_mb, '.0f') + ' MB)':<48} {'seconds':>8} {'MB/s':>7}")
    rows = [
        ("sparkube wordcount, cluster, 1st (uploads)", first["total"]),
        ("sparkube wordcount, cluster, input cached", c_total),
        ("bare in-cluster run (same Job)", b_total),
        ("sparkube wordcount --local", l_med),
    ]
    for name, secs in rows:
        print(f"{name:<48} {secs:8.1f} {size_mb / secs:7.2f}")
    c_out = med(cached, "outside the driver (total - Running->Succeeded)")
    b_out = med(baseline, "outside the driver (total - Running->Succeeded)")
    print(f"sparkube overhead, cached input:  {c_total - b_total:+.1f} s  "
          f"(ratio sparkube/bare {c_total / b_total:.2f}); outside the driver "
          f"{c_out - b_out:+.1f} s")  # fmt: skip
    print(f"sparkube overhead, with upload:   {first['total'] - b_total:+.1f} s  "
          f"(ratio {first['total'] / b_total:.2f})")  # fmt: skip
    print(f"ratio cluster/local: cached {c_total / l_med:.2f}, 1st {first['total'] / l_med:.2f}, "
          f"bare {b_total / l_med:.2f}")  # fmt: skip

    jar_mb = SPARK_IMAGE.s3_jars_bytes / 1e6
    got = ", ".join(f"{src} {s:.2f} s ({b / 1e6:.1f} MB)" for src, (s, b) in jars_http.items())
    print(f"\njar delivery: {len(SPARK_IMAGE.s3_jars)} S3 jars, {jar_mb:.1f} MB; a GET of all "
          f"from this machine over the bed's bridge: {got}")  # fmt: skip
    print("  per job: the driver's fetch-s3-jars init container (the kubelet's status, whole "
          "seconds), GETs of the Maven repository (the fallback) during the job:")  # fmt: skip
    labelled = (
        [("1st", first)]
        + [(f"cached {i + 1}", c) for i, c in enumerate(cached)]
        + [(f"bare {i + 1}", b) for i, b in enumerate(baseline)]
    )
    for label, r in labelled:
        gets = jar_summary(r["repository GETs"])
        print(f"  {label:<9} init {r['jars init']} s; repository {gets}; "
              f"{added_jars(r['log'])} 'Added JAR' lines in the driver's log")  # fmt: skip
    contended = {label: r["others"] for label, r in labelled if r["others"]}
    if contended:
        print(f"\nWARNING: other pytest processes ran during {sorted(contended)}: timings skewed")
    return {
        "mb": round(size_mb, 1),
        "cluster_first_s": round(first["total"], 1),
        "cluster_cached_s": round(c_total, 1),
        "bare_s": round(b_total, 1),
        "local_s": round(l_med, 1),
        "overhead_cached_s": round(c_total - b_total, 1),
        "overhead_outside_driver_s": round(c_out - b_out, 1),
        "ratio_sparkube_over_bare": round(c_total / b_total, 2),
        "ratio_sparkube_over_bare_first": round(first["total"] / b_total, 2),
        "ratio_cluster_over_local": round(c_total / l_med, 2),
        "ratio_bare_over_local": round(b_total / l_med, 2),
        "phases_first_s": {k.strip(): round(first[k], 1) for k in keys},
        "jars_init_s": {label: r["jars init"] for label, r in labelled},
        "jars_repository_gets": {label: len(r["repository GETs"]) for label, r in labelled},
        "jars_get_from_host_s": {src: round(s, 2) for src, (s, _) in jars_http.items()},
        "contended": sorted(contended),
    }


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

    ok = True
    line: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-cwc-") as tmp_name:
        tmp = Path(tmp_name)
        watch: DriverWatch | None = None
        try:
            t0 = time.monotonic()
            corpus = tmp / "corpus.txt"
            make_corpus(corpus, args.mb)
            size_mb = corpus.stat().st_size / 1e6
            print(f"input: {size_mb:.1f} MB generated in {time.monotonic() - t0:.1f} s; "
                  f"{os.cpu_count()} CPUs; {load()}", flush=True)  # fmt: skip
            (tmp / "no-maven").mkdir()
            (tmp / "cluster").mkdir()
            with (
                serve_moto(tmp / "no-maven") as moto_url,
                start_bed_cluster(moto_url, tmp / "cluster") as cluster,
            ):
                print(f"sparkube up of 1+2 real nodes in {cluster.up_seconds:.1f} s "
                      "(after the bed lock)", flush=True)  # fmt: skip
                api = jobs_mod.open_cluster(cluster.env, CLUSTER)
                bucket = api.config().bucket
                client = kube_client(cluster.env)
                watch = DriverWatch(cluster.env)
                jar_log = JarRequests(cluster)
                jars = http_jars(cluster, api)

                first = run_sparkube(cluster, client, watch, jar_log, corpus, tmp / "out-1", bucket)
                print(f"  cluster run 1 (upload): {first['total']:.1f} s", flush=True)
                input_key = first["uploads"][0].key
                clear_jobs(cluster)
                cached: list[dict[str, Any]] = []
                baseline: list[dict[str, Any]] = []
                local_s: list[float] = []
                for i in range(1, args.repeat + 1):
                    baseline.append(run_baseline(cluster, client, watch, jar_log, input_key, i))
                    print(f"  bare run {i}: {baseline[-1]['total']:.1f} s", flush=True)
                    clear_jobs(cluster)
                    cached.append(
                        run_sparkube(
                            cluster, client, watch, jar_log, corpus, tmp / f"out-c{i}", bucket
                        )
                    )
                    print(f"  cluster run {i + 1} (cached input): {cached[-1]['total']:.1f} s",
                          flush=True)  # fmt: skip
                    clear_jobs(cluster)
                    others = others_running()
                    secs, _, _ = cli(cluster.env, "wordcount", "--local", str(corpus), "--top",
                                     TOP, "--output-dir", str(tmp / f"out-l{i}"))  # fmt: skip
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
                line = report(first, cached, baseline, local_s, jars, size_mb)
                line["up_s"] = round(cluster.up_seconds, 1)
                line["identical_to_local"] = same
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    for r in [first, *cached, *baseline]:
                        (args.keep_logs / f"{r['job']}.log").write_text(r["log"])
                watch.stop()
                watch = None
        except Exception as exc:
            ok = False
            print(f"bench/cluster_wordcount.py failed: {exc}", file=sys.stderr)
        finally:
            if watch is not None:
                watch.stop()
    if line:
        print(json.dumps(line))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
