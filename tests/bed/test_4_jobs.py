"""``sparkube wordcount`` / ``submit`` / ``jobs`` / ``logs`` / ``cancel`` / ``usage`` on the
shared real-node cluster (tests/fixtures/bedcluster.py): drivers and executors are pods
that containerd runs on the workers from the bed's Spark image, reaching S3 (moto) and
the instance metadata through their node, with the credentials of the instance role
only. sparkube is driven through its CLI, in-process, in the environment ``up`` left
(the ``bed_lab`` fixture: each test has its own working directory; what its jobs made is
removed afterwards, and up's Spark RBAC and job settings are put back if it changed
them).

Moved from the process cluster (tests/integration/test_cluster_jobs.py and the seed's
RBAC failure of tests/integration/test_spark_procnodes.py); what no longer applies on
real nodes is said at the test."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.bedcluster import BedLab, wait_for
from tests.fixtures.common import CliResult
from tests.fixtures.nodebed import REAL_NODES
from tests.wordref import reference_count

pytestmark = REAL_NODES

DRIVER_FORBIDDEN = Path(__file__).resolve().parents[1] / "data" / "spark_driver_forbidden.txt"


TRICKY = (
    "Café café CAFÉ cafe\u0301 naïve don't DON'T l’homme dogs' 'quoted' 42 x2 ß\n"
    "हिन्दी भाषा हिन्दी — שָׁלוֹם שָׁלוֹם ภาษาไทย İstanbul ǅemal\n"
    "the the the a a b\n"
)


def iso_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _error_line(res: CliResult) -> str:
    return next((line for line in res.stderr.splitlines() if line.startswith("Error:")), "")


def job_id_in(res: CliResult) -> str:
    found = re.search(r"job (job-[\w-]+)", res.stderr + res.stdout)
    assert found, res.stderr[-3000:]
    return found.group(1)


def jobs(lab: BedLab) -> list[dict[str, Any]]:
    listed = lab.run("jobs", "--output", "json")
    assert listed.exit_code == 0, listed.stderr
    return list(json.loads(listed.stdout))


def job_of(lab: BedLab, job_id: str) -> dict[str, Any]:
    return next(r for r in jobs(lab) if r["job_id"] == job_id)


def new_job(lab: BedLab, before: list[dict[str, Any]]) -> dict[str, Any]:
    """The one job listed now that was not in ``before`` (earlier tests' jobs stay in
    the cluster's bucket)."""
    known = {r["job_id"] for r in before}
    (record,) = [r for r in jobs(lab) if r["job_id"] not in known]
    return record


def test_wordcount_on_the_cluster_equals_local_and_reference(bed_lab: BedLab) -> None:
    lab = bed_lab
    text = TRICKY * 40
    (lab.env.cwd / "book.txt").write_text(text, encoding="utf-8")
    res = lab.run("wordcount", "book.txt", "--top", "5", "--output-dir", "remote")
    assert res.exit_code == 0, res.stderr[-4000:]
    # no --executors: dynamic allocation, starting with one executor per worker
    assert re.search(
        rf"Running on cluster {lab.cluster.name} \(1-[2-9] executors × .*, dynamic from 2\)",
        res.stderr,
    ), res.stderr[-2000:]
    remote = (lab.env.cwd / "remote" / "wordcount.csv").read_bytes()

    local = lab.run("wordcount", "book.txt", "--local", "--top", "5", "--output-dir", "local")
    assert local.exit_code == 0, local.stderr[-3000:]
    assert remote == (lab.env.cwd / "local" / "wordcount.csv").read_bytes()
    assert (
        res.stdout.splitlines()[-1].split(" · ")[:2]
        == local.stdout.splitlines()[-1].split(" · ")[:2]
    )

    expected = dict(reference_count([text]))
    rows = [line.rsplit(",", 1) for line in remote.decode().splitlines()[1:]]
    assert {w: int(c) for w, c in rows} == expected
    # the run is recorded in the bucket, with its driver log
    assert any(k.endswith("/driver.log") for k in lab.keys("jobs/"))
    # the executors were gone when the driver ended; the driver pods follow the Job's TTL
    assert not lab.pods("spark-role=executor")
    # the driver's S3 jars came from the cluster's bucket (put there once, by up), every
    # one checked against its pinned SHA-256, fetched by the pod through its node
    # (the newest driver pod: earlier jobs' drivers on the shared cluster follow their TTL)
    driver = max(
        lab.pods("sparkube.io/role=driver"), key=lambda p: p["metadata"]["creationTimestamp"]
    )
    said = lab.logs(driver["metadata"]["name"], "fetch-s3-jars")
    pod_s3 = lab.env.environ["SPARKUBE_POD_S3_ENDPOINT"].split("/")[2]
    assert re.search(rf"37 jars \(12\.\d MiB\) checked in [\d.]+ s \(37 from {pod_s3}\)", said), (
        said
    )
    (init,) = driver["status"]["initContainerStatuses"]
    term = init["state"]["terminated"]
    seconds = (iso_time(term["finishedAt"]) - iso_time(term["startedAt"])).total_seconds()
    print(f"fetch-s3-jars: {seconds:.0f} s from the pod status; {said.strip()}")

    # A second run of the same input uploads nothing: it finds the input in the bucket
    # and writes only the job's record and driver log.
    from sparkube.aws.session import CallCounter, observe_calls

    digest = hashlib.sha256(text.encode()).hexdigest()
    before = lab.s3.list_objects_v2(Bucket=lab.bucket, Prefix=f"inputs/{digest}/")["Contents"]
    counter = CallCounter()
    with observe_calls(counter):
        again = lab.run("wordcount", "book.txt", "--top", "5", "--output-dir", "again")
    assert again.exit_code == 0, again.stderr[-3000:]
    assert (lab.env.cwd / "again" / "wordcount.csv").read_bytes() == remote
    after = lab.s3.list_objects_v2(Bucket=lab.bucket, Prefix=f"inputs/{digest}/")["Contents"]
    assert len(before) == 1
    assert [(o["Key"], o["LastModified"]) for o in after] == [
        (o["Key"], o["LastModified"]) for o in before
    ]
    assert not any("Multipart" in k or "UploadPart" in k for k in counter.calls)


def test_submit_passes_the_exit_code_and_the_exception(bed_lab: BedLab) -> None:
    lab = bed_lab
    (lab.env.cwd / "app.py").write_text(textwrap.dedent(
        """
        import sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        n = spark.range(100).count()
        print("rows", n)
        if sys.argv[1] == "exit3":
            spark.stop()
            sys.exit(3)
        raise ValueError("boom from the user script")
        """
    ))  # fmt: skip
    three = lab.run("submit", "app.py", "exit3", "--executors", "1")
    assert three.exit_code == 3, three.stderr[-3000:]
    raised = lab.run("submit", "app.py", "raise", "--executors", "1")
    assert raised.exit_code == 1, raised.stderr[-3000:]
    # failures read in one glance: the program's own output, its traceback, one line
    assert raised.stdout.splitlines() == ["rows 100"], raised.stdout[-3000:]
    assert _error_line(raised) == "Error: app.py failed: ValueError: boom from the user script"
    err = raised.stderr.splitlines()
    start = err.index("Traceback (most recent call last):")
    trace = err[start : start + 1 + err[start:].index("ValueError: boom from the user script")]
    # The program's file in the job's ConfigMap volume: a real kubelet writes it into a
    # timestamped folder (its atomic writer) that app.py links to, and that is the path
    # Python shows (the process nodes mounted the file itself).
    frame = re.compile(r'  File "/opt/sparkube/job/(\.\.[\d_.]+/)?app\.py", line 10, in <module>')
    assert [line for line in trace if frame.fullmatch(line)], "\n".join(trace)
    assert not [line for line in err if " INFO " in line or line.startswith("\tat ")]
    job_id = job_id_in(raised)
    shown = lab.run("logs", job_id)
    assert shown.exit_code == 0, shown.stderr
    assert "rows 100" in shown.stdout.splitlines()
    assert " INFO " not in shown.stdout
    assert "ValueError: boom from the user script" in shown.stderr
    everything = lab.run("logs", job_id, "--verbose")
    assert "INFO SparkContext: Running Spark version" in everything.stdout


def test_submit_with_input_output_and_jobs_logs_from_the_bucket(bed_lab: BedLab) -> None:
    """Also the s3a read and write of tests/integration/test_spark_procnodes.py's IMDS
    test: the input goes to the bucket, the job reads and writes it with s3a, with the
    credentials the instance metadata gave the node (none in the pod)."""
    lab = bed_lab
    data = lab.env.cwd / "data"
    data.mkdir()
    (data / "a.txt").write_text("x y\n")
    (data / "b.txt").write_text("y z\n")
    (lab.env.cwd / "lines.py").write_text(textwrap.dedent(
        """
        import os, sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        df = spark.read.text(sys.argv[1])
        df.coalesce(1).write.text(os.environ["SPARKUBE_OUTPUT"] + "lines")
        print("LINES", df.count())
        """
    ))  # fmt: skip
    res = lab.run(
        "submit", "lines.py", "--input", "data", "--output-dir", "out", "--executors", "1"
    )
    assert res.exit_code == 0, res.stderr[-3000:]
    parts = sorted((lab.env.cwd / "out" / "lines").glob("part-*"))
    assert parts and sorted(parts[0].read_text().split("\n")[:-1]) == ["x y", "y z"]

    listed = lab.run("jobs", "--output", "json")
    assert listed.exit_code == 0, listed.stderr
    job = next(r for r in json.loads(listed.stdout) if r["app"] == "lines.py")
    assert job["state"] == "Succeeded" and job["exit_code"] == 0
    # no keys anywhere in the pods: the credentials came from the instance metadata. (The
    # presigned URLs of the job's files and jars name the user's access key id, as every
    # presigned URL does, never the secret: moto's are both "testing", so the key id in
    # X-Amz-Credential is taken out before the search.)
    pods = lab.pods(f"sparkube.io/job={job['job_id']}")
    assert pods
    for pod in pods:
        spec = pod["spec"]
        names = {
            e["name"]
            for c in spec["containers"] + spec.get("initContainers", [])
            for e in c.get("env") or []
        }
        assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
        text = json.dumps(spec).replace("X-Amz-Credential=testing", "")
        assert "testing" not in text, text

    # pods gone, local state gone: jobs and logs still work from the bucket
    lab.kubectl("-n spark delete jobs -l sparkube.io/job --wait=true")
    shutil.rmtree(lab.env.cwd / "out")
    logged = lab.run("logs", job["job_id"])
    assert logged.exit_code == 0, logged.stderr
    assert "LINES 2" in logged.stdout
    again = lab.run("jobs", "--output", "json")
    assert any(r["job_id"] == job["job_id"] for r in json.loads(again.stdout))


def test_a_jobs_ledger_facts_are_its_pods_and_cost_what_the_model_says(bed_lab: BedLab) -> None:
    """The job's facts in the ledger (each pod's requests, start and end) are what its
    pods asked and did; its cost is the model's answer for those facts."""
    from datetime import timedelta

    from sparkube.cost import model
    from sparkube.cost.ledger import Instance, Interval, Ledger, PriceFact, parse_iso
    from sparkube.spark.diagnose import parse_cpu, parse_memory

    lab = bed_lab
    (lab.env.cwd / "tiny.py").write_text(textwrap.dedent(
        """
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        print("SUM", spark.sparkContext.parallelize(range(100), 2).sum())
        """
    ))  # fmt: skip
    before = jobs(lab)
    res = lab.run("submit", "tiny.py", "--executors", "1", "--executor-cores", "1",
                  "--conf", "spark.kubernetes.executor.deleteOnTermination=false")  # fmt: skip
    assert res.exit_code == 0, res.stderr[-3000:]
    job_id = new_job(lab, before)["job_id"]
    pods = lab.pods(f"sparkube.io/job={job_id}")
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    out = lab.run("usage", "--since", "all", "--export-ledger", "ledger.json", "-o", "json")
    assert out.exit_code == 0, out.stderr
    ledger = Ledger.loads((lab.env.cwd / "ledger.json").read_text())
    job = next(j for j in ledger.jobs if j.job_id == job_id)
    assert job.state == "Succeeded"

    def requests(pod: dict[str, Any]) -> tuple[float, int]:
        req = pod["spec"]["containers"][0]["resources"]["requests"]
        return parse_cpu(req["cpu"]), parse_memory(req["memory"])

    real = {p["metadata"]["labels"]["sparkube.io/role"]: p for p in pods}
    facts = {p.role: p for p in job.pods}
    assert set(facts) == {"driver", "executor"}, job.pods
    for role in ("driver", "executor"):
        assert (facts[role].cpu, facts[role].memory_bytes) == requests(real[role]), role
    state = real["driver"]["status"]["containerStatuses"][0]["state"]["terminated"]
    started, finished = parse_iso(state["startedAt"], "s"), parse_iso(state["finishedAt"], "f")
    driver = facts["driver"].ran
    # the driver's own event log: after its JVM started, before its container ended
    assert started - timedelta(seconds=1) <= driver.start <= finished
    assert driver.end is not None and driver.start < driver.end <= finished + timedelta(seconds=1)
    ex = facts["executor"].ran
    assert driver.start <= ex.start and ex.end is not None and ex.end <= driver.end

    # priced on two hand-made workers: the model gives what the shares of those workers
    # come to, worked out here
    t0 = driver.start - timedelta(hours=1)
    workers = tuple(
        Instance(f"i-{n}", f"worker-{n}", "worker", "t3.large", "on-demand", "us-east-1a",
                 2, 8 * 2**30, (Interval(t0, None),))
        for n in (1, 2)
    )  # fmt: skip
    priced = Ledger(ledger.cluster, ledger.region, ledger.generated, workers,
                    (PriceFact("instance", 0.0832, "test", instance_type="t3.large"),),
                    ledger.jobs)  # fmt: skip
    line = next(j for j in model.compute(priced).jobs if j.job_id == job_id)
    expected = sum(
        (p.cpu / 4 + p.memory_bytes / (16 * 2**30)) / 2 * (2 * 0.0832)
        * ((p.ran.end or ledger.generated) - p.ran.start).total_seconds() / 3600
        for p in job.pods
    )  # fmt: skip
    assert line.usd == pytest.approx(expected, rel=1e-9) and line.usd > 0


SLOW_APP = textwrap.dedent(
    """
    import time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    print("STARTED", flush=True)
    spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(600)).count()
    """
)


def executor_running(lab: BedLab, job_id: str) -> bool:
    return any(
        p["status"].get("phase") == "Running"
        for p in lab.pods(f"sparkube.io/job={job_id},spark-role=executor")
    )


def test_cancel_removes_every_pod_of_the_job(bed_lab: BedLab) -> None:
    lab = bed_lab
    (lab.env.cwd / "slow.py").write_text(SLOW_APP)
    res = lab.run("submit", "slow.py", "--executors", "1", "--no-wait")
    assert res.exit_code == 0, res.stderr
    job_id = res.stdout.strip()
    wait_for("an executor running", lambda: executor_running(lab, job_id), timeout=240)
    cancelled = lab.run("cancel", job_id)
    assert cancelled.exit_code == 0, cancelled.stderr
    assert lab.pods(f"sparkube.io/job={job_id}") == []
    assert job_of(lab, job_id)["state"] == "Cancelled"


# --------------------------------------------------------------------------- diagnosis


def test_diagnosis_rbac_without_the_binding(bed_lab: BedLab) -> None:
    """Also the seed's failure (tests/integration/test_spark_procnodes.py, where
    spark-submit itself ran the driver): without the binding the driver runs and cannot
    make its scheduler; its log says so. (The fixture puts up's binding back.)"""
    lab = bed_lab
    lab.kubectl("-n spark delete rolebinding spark-driver")  # (not the controller's)
    (lab.env.cwd / "w.txt").write_text("a b\n")
    before = jobs(lab)
    res = lab.run("wordcount", "w.txt")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "not allowed to create its executors" in line, res.stderr[-3000:]
    assert "system:serviceaccount:spark:spark cannot" in line
    assert "sparkube up" in line
    record = new_job(lab, before)
    assert record["state"] == "Failed", record
    log = lab.run("logs", record["job_id"], "--verbose")
    said = log.stdout + log.stderr
    assert "External scheduler cannot be instantiated" in said, said[-3000:]
    assert 'User "system:serviceaccount:spark:spark" cannot' in said
    assert not lab.pods("spark-role=executor")
    if os.environ.get("SPARKUBE_UPDATE_TEST_DATA") == "1":
        DRIVER_FORBIDDEN.write_text(log.stdout)


def test_diagnosis_unknown_image(bed_lab: BedLab) -> None:
    """The kubelet really tries to pull it (through the bed's registry mirror, which has
    no such tag)."""
    lab = bed_lab
    lab.kubectl(
        "-n spark patch configmap sparkube-cluster --type=merge -p "
        + "'"
        + json.dumps({"data": {"image": "apache/spark:9.9.9-no-such-tag"}})
        + "'"
    )
    (lab.env.cwd / "w.txt").write_text("a b\n")
    res = lab.run("wordcount", "w.txt")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "image apache/spark:9.9.9-no-such-tag cannot be pulled" in line, res.stderr[-2000:]
    assert lab.pods("sparkube.io/role=driver") == []  # cancelled, nothing left


def test_a_job_larger_than_any_worker_is_refused_before_anything_is_made(
    bed_lab: BedLab,
) -> None:
    """Refused at once (exit 2), with what it asks and what the largest worker has for
    jobs: the real nodes' allocatable (the bed's machines see this host's CPUs and
    memory) less what runs there that is not a job's (Flannel, CoreDNS, ...). Before,
    the job was submitted and stopped after 20 s of an Unschedulable executor."""
    from sparkube.spark.diagnose import parse_cpu

    lab = bed_lab
    nodes = [
        n["status"]["allocatable"]
        for n in lab.cluster.kubectl_json("get nodes")["items"]
        if not any(t["effect"] == "NoSchedule" for t in n["spec"].get("taints") or [])
    ]
    cpu = max(parse_cpu(a["cpu"]) for a in nodes)
    assert cpu < 8
    (lab.env.cwd / "tiny.py").write_text(
        "from pyspark.sql import SparkSession\n"
        "SparkSession.builder.getOrCreate().range(3).count()\n"
    )
    jobs_before = lab.kubectl("-n spark get jobs -o name").stdout
    res = lab.run("submit", "tiny.py", "--executors", "1", "--executor-cores", "8")
    assert res.exit_code == 2, res.stderr[-2000:]
    line = _error_line(res)
    found = re.search(
        r"could never start on this cluster: its executor pod asks for 8 CPU and \S+ but "
        r"the largest worker has ([\d.]+) CPU and \S+ for jobs; lower --executors, "
        r"--executor-cores",
        line,
    )
    assert found, line
    assert 0 < float(found.group(1)) <= cpu
    assert lab.kubectl("-n spark get jobs -o name").stdout == jobs_before


def test_diagnosis_driver_over_its_memory_limit(bed_lab: BedLab) -> None:
    """The kernel's OOM killer ends the driver's container at its cgroup's limit, and the
    kubelet reports OOMKilled."""
    lab = bed_lab
    (lab.env.cwd / "hog.py").write_text("blob = b'x' * (3 << 30)\nprint(len(blob))\n")
    res = lab.run("submit", "hog.py", "--executors", "1")
    assert res.exit_code == 137, res.stderr[-2000:]
    line = _error_line(res)
    assert "driver pod" in line and "exceeding its memory limit of 1.4Gi" in line, line


def test_diagnosis_missing_s3_input(bed_lab: BedLab) -> None:
    lab = bed_lab
    (lab.env.cwd / "read.py").write_text(textwrap.dedent(
        """
        import sys
        from pyspark.sql import SparkSession
        SparkSession.builder.getOrCreate().read.text(sys.argv[1]).count()
        """
    ))  # fmt: skip
    missing = f"s3a://{lab.bucket}/nowhere/data.txt"
    res = lab.run("submit", "read.py", missing, "--executors", "1")
    assert res.exit_code == 1, res.stderr[-2000:]
    line = _error_line(res)
    assert f"The input {missing} does not exist" in line, res.stderr[-3000:]


# --------------------------------------------------------------------------- usage


def test_usage_while_a_job_runs(bed_lab: BedLab) -> None:
    """The metrics come from sparkube's own metrics-server on the real nodes; the
    instances are the cluster's own in moto (the process-node test had to add three)."""
    from sparkube.cost.ledger import Ledger
    from sparkube.spark.diagnose import parse_cpu

    lab = bed_lab
    (lab.env.cwd / "busy.py").write_text(textwrap.dedent(
        """
        import time
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        def spin(x):
            t = time.time()
            while time.time() - t < 120:
                pass
            return x
        spark.sparkContext.parallelize(range(1), 1).map(spin).count()
        """
    ))  # fmt: skip
    res = lab.run("submit", "busy.py", "--executors", "1", "--executor-cores", "1", "--no-wait")
    assert res.exit_code == 0, res.stderr
    job_id = res.stdout.strip()

    seen: list[str] = []

    def spark_usage() -> dict[str, Any] | None:
        out = lab.run("usage", "--output", "json")
        assert out.exit_code == 0, out.stderr
        seen[:] = [out.stdout]
        report = json.loads(out.stdout)
        spark = next((n for n in report["namespaces"] if n["namespace"] == "spark"), None)
        running = executor_running(lab, job_id)
        if spark and running and (spark["cpu_used"] or 0) > 0.05:
            return dict(report)
        return None

    try:
        report = wait_for("spark CPU in usage", spark_usage, timeout=240, interval=5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last report: {seen}") from None
    spark = next(n for n in report["namespaces"] if n["namespace"] == "spark")
    # requested = the History Server's requests + the driver's 500m + one executor of
    # 1 core, as the job asked
    history = sum(
        parse_cpu(c.get("resources", {}).get("requests", {}).get("cpu", "0"))
        for p in lab.pods("app.kubernetes.io/name=spark-history")
        for c in p["spec"]["containers"]
    )
    assert spark["cpu_requested"] == pytest.approx(history + 1.5)
    assert report["schema"] == 2 and report["metrics"]["available"] is True
    job = next(j for j in report["jobs"] if j["job_id"] == job_id)
    assert job["state"] in ("Pending", "Running") and job["usd"] > 0
    cost = report["cost"]
    assert cost["total_usd"] == pytest.approx(
        cost["jobs_usd"] + cost["idle_usd"] + cost["control_plane_usd"] + cost["volumes_usd"]
        + cost["addresses_usd"]
    )  # fmt: skip
    # the job's facts are its pods' requests: the driver's 500m and one 1-core executor
    exported = lab.run("usage", "--export-ledger", "ledger.json", "-o", "json")
    assert exported.exit_code == 0, exported.stderr
    ledger = Ledger.loads((lab.env.cwd / "ledger.json").read_text())
    pods = next(j for j in ledger.jobs if j.job_id == job_id).pods
    assert sorted((p.role, p.cpu) for p in pods) == [("driver", 0.5), ("executor", 1.0)]
    # the hourly rate is the cluster's three running instances at their prices
    running = [i for i in ledger.instances if i.running and i.running[-1].end is None]
    assert len(running) == 3, ledger.instances
    prices = {p.instance_type: p.usd for p in ledger.prices if p.kind == "instance"}
    assert cost["per_hour"]["instances"] == pytest.approx(
        sum(prices[i.instance_type] or 0 for i in running)
    )
    assert cost["per_hour"]["instances"] > 0
    chart = lab.run("usage", "--chart", "usage.png")
    assert chart.exit_code == 0, chart.stderr
    png = (lab.env.cwd / "usage.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert lab.run("cancel", job_id).exit_code == 0


# --------------------------------------------------------------------------- jobs tell the truth


def submit_process(lab: BedLab, *args: str) -> subprocess.Popen[str]:
    """``sparkube submit ARGS`` in its own process, as a user runs it in a terminal while
    another command (or someone with kubectl) acts on the job."""
    return subprocess.Popen(
        [sys.executable, "-m", "sparkube", "submit", *args],
        env=dict(lab.env.environ), cwd=lab.env.cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def ended(lab: BedLab, proc: subprocess.Popen[str], timeout: float) -> CliResult:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"submit still waiting after {timeout:.0f} s:\n{err[-3000:]}")
    lab.cluster.transcript += [out, err]
    return CliResult(proc.returncode, out, err)


def only_driver_running(lab: BedLab) -> str:
    """The one driver pod of the namespace, once it runs; its job id."""
    pod = wait_for(
        "the driver running",
        lambda: next(
            (p for p in lab.pods("sparkube.io/role=driver")
             if p["status"].get("phase") == "Running"),
            None,
        ),
        timeout=240,
    )  # fmt: skip
    return str(pod["metadata"]["labels"]["sparkube.io/job"])


def test_a_driver_refused_its_executors_is_stopped_while_waiting(bed_lab: BedLab) -> None:
    """Without `create` on pods the driver retries its 403s for ever: submit used to wait
    without end and `jobs` said Running with 0 executors. Now the watcher reads the
    driver's log while no executor exists and stops the job with the refusal. (The
    fixture puts up's Role back.)"""
    lab = bed_lab
    role = lab.cluster.kubectl_json("-n spark get role spark-driver")
    for rule in role["rules"]:
        if "pods" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    lab.cluster.bed.run(
        "control-plane",
        "kubectl --kubeconfig /etc/kubernetes/admin.conf replace -f -",
        input=json.dumps(role),
    )
    (lab.env.cwd / "tiny.py").write_text(
        "from pyspark.sql import SparkSession\n"
        "print(SparkSession.builder.getOrCreate().range(3).count())\n"
    )
    before = jobs(lab)
    res = ended(lab, submit_process(lab, "tiny.py", "--executors", "1"), timeout=300)
    assert res.exit_code == 1, res.stderr[-3000:]
    line = _error_line(res)
    assert "not allowed to create its executors" in line, res.stderr[-3000:]
    assert "system:serviceaccount:spark:spark cannot create pods" in line
    wait_for(  # stopped: its pods go
        "the driver pod gone", lambda: lab.pods("sparkube.io/role=driver") == [], timeout=60
    )
    record = new_job(lab, before)
    assert record["state"] == "Failed"
    assert "not allowed to create its executors" in record["message"]


def test_a_job_cancelled_elsewhere_ends_the_waiting_submit(bed_lab: BedLab) -> None:
    lab = bed_lab
    (lab.env.cwd / "slow.py").write_text(SLOW_APP)
    proc = submit_process(lab, "slow.py", "--executors", "1")
    try:
        job_id = only_driver_running(lab)
        cancelled = lab.run("cancel", job_id)  # another terminal, the same user
        assert cancelled.exit_code == 0, cancelled.stderr
        res = ended(lab, proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert res.exit_code == 1, res.stderr[-3000:]
    assert f"Job {job_id} was cancelled by the user." in _error_line(res), res.stderr[-2000:]
    assert "No driver pod appeared" not in res.stderr
    assert job_of(lab, job_id)["state"] == "Cancelled"


def test_a_driver_deleted_from_outside_shows_failed_and_keeps_its_log(bed_lab: BedLab) -> None:
    """A driver pod deleted with kubectl (or lost with its node) used to leave `jobs` at
    Pending for ever and `logs` saying the job had not started. Here the kubelet really
    stops the container (and its executor goes with the driver)."""
    lab = bed_lab
    (lab.env.cwd / "slow.py").write_text(SLOW_APP)
    proc = submit_process(lab, "slow.py", "--executors", "1")
    try:
        job_id = only_driver_running(lab)
        wait_for("an executor running", lambda: executor_running(lab, job_id), timeout=240)
        selector = f"sparkube.io/job={job_id},sparkube.io/role=driver"
        wait_for(
            "the app's first line",
            lambda: "STARTED" in lab.kubectl(
                f"-n spark logs -l {selector} -c driver --tail=-1", check=False
            ).stdout,
            timeout=120, interval=1,
        )  # fmt: skip
        lab.kubectl(f"-n spark delete pod -l {selector} --wait=false")
        res = ended(lab, proc, timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert res.exit_code == 1, res.stderr[-3000:]
    line = _error_line(res)
    assert f"of {job_id} was deleted before it ended, not by sparkube cancel" in line, line
    record = job_of(lab, job_id)
    assert record["state"] == "Failed"
    assert "was deleted before it ended" in record["message"]
    logs = lab.run("logs", job_id)
    assert logs.exit_code == 0, logs.stderr
    assert "STARTED" in logs.stdout  # what it printed before it was deleted
    wait_for("its executor gone", lambda: not executor_running(lab, job_id), timeout=120)


def test_a_job_nobody_watched_gets_the_driver_end_time(bed_lab: BedLab) -> None:
    lab = bed_lab
    (lab.env.cwd / "tiny.py").write_text(
        "from pyspark.sql import SparkSession\n"
        "print(SparkSession.builder.getOrCreate().range(3).count())\n"
    )
    res = lab.run("submit", "tiny.py", "--executors", "1", "--no-wait")
    assert res.exit_code == 0, res.stderr
    job_id = res.stdout.strip()
    pod = wait_for(
        "the driver ended",
        lambda: next((p for p in lab.pods(f"sparkube.io/job={job_id},sparkube.io/role=driver")
                      if p["status"].get("phase") in ("Succeeded", "Failed")), None),
        timeout=300,
    )  # fmt: skip
    (term,) = [s["state"]["terminated"] for s in pod["status"]["containerStatuses"]]
    time.sleep(3)  # a watcher's clock would now be later than the driver's end
    record = job_of(lab, job_id)
    assert record["state"] == "Succeeded"
    assert record["finished"] == term["finishedAt"]
    assert record["started"] == term["startedAt"]


# --------------------------------------------------------------------------- files and packages

BUNDLED_APP = textwrap.dedent(
    """
    import helpers
    import sparkube_tinypkg
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    people = spark.read.json("examples/src/main/resources/people.json")
    rows = people.rdd.map(
        lambda r: (r.name, helpers.greet(r.name), __import__("sparkube_tinypkg").ANSWER)
    ).collect()
    for row in sorted(rows):
        print(*row)
    print("driver reads", open("config.ini").read().strip(), sparkube_tinypkg.ANSWER)
    seen = spark.sparkContext.parallelize([0], 1).map(
        lambda _: open("config.ini").read().strip()
    ).collect()
    print("executor reads", *seen)
    """
)


def test_files_modules_and_packages_reach_driver_and_executors(
    bed_lab: BedLab, tmp_path: Path
) -> None:
    """An unmodified-style program that opens a data file by its relative path, imports
    its own module and a pip package, on the driver and in executor tasks: the same
    output on the cluster as locally (issue 18)."""
    from tests.fixtures.wheels import local_index, make_wheel

    lab = bed_lab
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "sparkube_tinypkg", "1.0", "ANSWER = 42\n")
    env = dataclasses.replace(lab.env, environ={**lab.env.environ, **local_index(wheels)})
    work = env.cwd
    (work / "app.py").write_text(BUNDLED_APP)
    (work / "helpers.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    (work / "config.ini").write_text("mode=test\n")
    data = work / "examples/src/main/resources"
    data.mkdir(parents=True)
    (data / "people.json").write_text('{"name":"Michael"}\n{"name":"Andy","age":30}\n')
    flags = ("--files", "examples/src/main/resources/people.json", "--files", "config.ini",
             "--py-files", "helpers.py", "--pip", "sparkube-tinypkg==1.0")  # fmt: skip
    expected = [
        "Andy hello Andy 42",
        "Michael hello Michael 42",
        "driver reads mode=test 42",
        "executor reads mode=test",
    ]
    envs_before = set(lab.keys("envs/"))
    on_cluster = lab.run_env(env, "submit", "app.py", *flags, "--executors", "1")
    assert on_cluster.exit_code == 0, on_cluster.stderr[-3000:]
    assert on_cluster.stdout.splitlines() == expected
    envs = sorted(set(lab.keys("envs/")) - envs_before)
    assert len(envs) == 1 and envs[0].endswith("/pyenv.zip"), envs
    locally = lab.run_env(env, "submit", "app.py", *flags, "--local")
    assert locally.exit_code == 0, locally.stderr[-3000:]
    assert locally.stdout.splitlines() == expected
    # the same requirements again: nothing is built (no wheel left to build from)
    # and nothing uploaded
    shutil.rmtree(wheels)
    shutil.rmtree(Path(env.environ["HOME"]) / ".cache/sparkube/envs")
    before = set(lab.keys(""))
    again = lab.run_env(env, "submit", "app.py", *flags, "--executors", "1")
    assert again.exit_code == 0, again.stderr[-3000:]
    assert again.stdout.splitlines() == expected
    added = set(lab.keys("")) - before
    assert all(k.startswith(("jobs/", "spark-events/")) for k in added), sorted(added)


def test_a_package_without_a_wheel_for_the_image_is_refused_first(
    bed_lab: BedLab, tmp_path: Path
) -> None:
    from tests.fixtures.wheels import local_index

    lab = bed_lab
    (tmp_path / "wheels").mkdir()
    env = dataclasses.replace(
        lab.env, environ={**lab.env.environ, **local_index(tmp_path / "wheels")}
    )
    (env.cwd / "app.py").write_text("print('never')\n")
    res = lab.run_env(env, "submit", "app.py", "--pip", "no-such-pkg")
    assert res.exit_code == 2, res.stderr
    assert "no-such-pkg has no wheel for Python" in _error_line(res)
    assert lab.pods("sparkube.io/role=driver") == []
