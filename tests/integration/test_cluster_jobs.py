"""`sparkube wordcount` / `submit` / `jobs` / `logs` / `cancel` on a cluster whose pods run.

The cluster is the session's process cluster (tests/fixtures/procnodes.py): real API
server, real drivers and executors of the Spark image's local layer, moto for S3 with
the credentials in pods coming only from the emulated instance metadata. sparkube is
driven through its CLI, in-process, with SPARKUBE_HOME holding the cluster's kubeconfig
as `up` would have left it. Pods reach moto and the jars repository at the host's
pod-network address, given by SPARKUBE_POD_S3_ENDPOINT and SPARKUBE_JARS_REPOSITORY.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from sparkube.kube.apply import apply_manifest
from sparkube.kube.client import client_from_kubeconfig
from sparkube.spark.rbac import SPARK_NAMESPACE
from tests.fixtures.common import CliResult
from tests.fixtures.joblab import CLUSTER, ClusterLab
from tests.fixtures.moto_server import REGION
from tests.wordref import reference_count

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRICKY = (
    "Café café CAFÉ cafe\u0301 naïve don't DON'T l’homme dogs' 'quoted' 42 x2 ß\n"
    "हिन्दी भाषा हिन्दी — שָׁלוֹם שָׁלוֹם ภาษาไทย İstanbul ǅemal\n"
    "the the the a a b\n"
)


def iso_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def spark_pods(lab: ClusterLab, selector: str) -> list[dict[str, Any]]:
    return list(
        lab.pc.kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods?labelSelector={selector}")[
            "items"
        ]
    )


def test_wordcount_on_the_cluster_equals_local_and_reference(
    lab: ClusterLab, tmp_path: Path
) -> None:
    text = TRICKY * 40
    book = lab.env.cwd / "book.txt"
    book.write_text(text, encoding="utf-8")
    res = lab.run("wordcount", "book.txt", "--top", "5", "--output-dir", "remote")
    assert res.exit_code == 0, res.stderr[-4000:]
    assert "Running on cluster sparkube (2 executors" in res.stderr
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
    keys = [o["Key"] for o in lab.s3.list_objects_v2(Bucket=lab.bucket)["Contents"]]
    assert any(k.endswith("/driver.log") for k in keys)
    # the executors were gone when the driver ended; the driver pods follow the Job's TTL
    assert not spark_pods(lab, "spark-role%3Dexecutor")
    # the driver's S3 jars came from the cluster's bucket (put there once, before any
    # job), every one checked against its pinned SHA-256
    (driver,) = spark_pods(lab, "sparkube.io%2Frole%3Ddriver")
    said = lab.pc.kube.pod_logs(SPARK_NAMESPACE, driver["metadata"]["name"], "fetch-s3-jars")
    pod_s3 = lab.env.environ["SPARKUBE_POD_S3_ENDPOINT"].split("/")[2]
    assert re.search(rf"37 jars \(12\.\d MiB\) checked in [\d.]+ s \(37 from {pod_s3}\)", said)
    (init,) = driver["status"]["initContainerStatuses"]
    term = init["state"]["terminated"]
    seconds = (iso_time(term["finishedAt"]) - iso_time(term["startedAt"])).total_seconds()
    print(f"fetch-s3-jars: {seconds:.0f} s from the pod status; {said.strip()}")


def test_second_run_of_the_same_input_uploads_nothing(lab: ClusterLab) -> None:
    from sparkube.aws.session import CallCounter, observe_calls

    book = lab.env.cwd / "same.txt"
    book.write_text("one two two three three three\n" * 1000)
    lab.s3.put_object(Bucket=lab.bucket, Key="spark-events/", Body=b"")  # as after a first job
    digest = hashlib.sha256(book.read_bytes()).hexdigest()
    counts, stored = [], []
    for _ in range(2):
        counter = CallCounter()
        with observe_calls(counter):
            res = lab.run("wordcount", "same.txt", "--top", "3")
        assert res.exit_code == 0, res.stderr[-3000:]
        counts.append(counter.calls)
        listed = lab.s3.list_objects_v2(Bucket=lab.bucket, Prefix=f"inputs/{digest}/")
        stored.append([(o["Key"], o["LastModified"]) for o in listed["Contents"]])
    # The input is uploaded once: the second run finds it and writes only the job's
    # record and driver log (their count depends on how long the job is watched).
    assert len(stored[0]) == 1 and stored[1] == stored[0]
    assert not any("Multipart" in k or "UploadPart" in k for k in counts[1])


def test_submit_passes_the_exit_code_and_the_exception(lab: ClusterLab) -> None:
    app = lab.env.cwd / "app.py"
    app.write_text(textwrap.dedent(
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
    assert err[start + 1].startswith('  File "/opt/sparkube/job/app.py", line 10'), err
    assert err[start + 3] == "ValueError: boom from the user script"
    assert not [line for line in err if " INFO " in line or line.startswith("\tat ")]
    job_id = re.search(r"job (job-[\w-]+)", raised.stderr).group(1)  # type: ignore[union-attr]
    shown = lab.run("logs", job_id)
    assert shown.exit_code == 0, shown.stderr
    assert "rows 100" in shown.stdout.splitlines()
    assert " INFO " not in shown.stdout
    assert "ValueError: boom from the user script" in shown.stderr
    everything = lab.run("logs", job_id, "--verbose")
    assert "INFO SparkContext: Running Spark version" in everything.stdout


def test_submit_with_input_output_and_jobs_logs_from_the_bucket(lab: ClusterLab) -> None:
    data = lab.env.cwd / "data"
    data.mkdir()
    (data / "a.txt").write_text("x y\n")
    (data / "b.txt").write_text("y z\n")
    app = lab.env.cwd / "lines.py"
    app.write_text(textwrap.dedent(
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
    records = json.loads(listed.stdout)
    job = next(r for r in records if r["app"] == "lines.py")
    assert job["state"] == "Succeeded" and job["exit_code"] == 0

    # pods gone, local state gone: jobs and logs still work from the bucket
    lab.pc.kube.kubectl("delete", "jobs", "-n", SPARK_NAMESPACE, "--all", "--wait=true")
    shutil.rmtree(lab.env.cwd / "out")
    logged = lab.run("logs", job["job_id"])
    assert logged.exit_code == 0, logged.stderr
    assert "LINES 2" in logged.stdout
    again = lab.run("jobs", "--output", "json")
    assert any(r["job_id"] == job["job_id"] for r in json.loads(again.stdout))


def test_a_jobs_ledger_facts_are_its_pods_and_cost_what_the_model_says(lab: ClusterLab) -> None:
    """The job's facts in the ledger (each pod's requests, start and end) are what its
    pods asked and did; its cost is the model's answer for those facts."""
    from datetime import timedelta

    from sparkube.cost import model
    from sparkube.cost.ledger import Instance, Interval, Ledger, PriceFact, parse_iso
    from sparkube.spark.diagnose import parse_cpu, parse_memory

    app = lab.env.cwd / "tiny.py"
    app.write_text(textwrap.dedent(
        """
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        print("SUM", spark.sparkContext.parallelize(range(100), 2).sum())
        """
    ))  # fmt: skip
    res = lab.run("submit", "tiny.py", "--executors", "1", "--executor-cores", "1",
                  "--conf", "spark.kubernetes.executor.deleteOnTermination=false")  # fmt: skip
    assert res.exit_code == 0, res.stderr[-3000:]
    job_id = json.loads(lab.run("jobs", "-o", "json").stdout)[0]["job_id"]
    pods = spark_pods(lab, f"sparkube.io/job%3D{job_id}")
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

    # priced on two hand-made workers (this cluster has no EC2 instances): the model
    # gives what the shares of those workers come to, worked out here
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


def test_cancel_removes_every_pod_of_the_job(lab: ClusterLab) -> None:
    app = lab.env.cwd / "slow.py"
    app.write_text(textwrap.dedent(
        """
        import time
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(600)).count()
        """
    ))  # fmt: skip
    res = lab.run("submit", "slow.py", "--executors", "1", "--no-wait")
    assert res.exit_code == 0, res.stderr
    job_id = res.stdout.strip()
    lab.pc.kube.wait_for(
        "an executor running",
        lambda: any(
            p["status"].get("phase") == "Running"
            for p in spark_pods(lab, f"sparkube.io/job%3D{job_id}")
            if p["metadata"]["labels"].get("spark-role") == "executor"
        ),
        timeout=240,
    )
    cancelled = lab.run("cancel", job_id)
    assert cancelled.exit_code == 0, cancelled.stderr
    assert spark_pods(lab, f"sparkube.io/job%3D{job_id}") == []
    listed = json.loads(lab.run("jobs", "--output", "json").stdout)
    assert next(r for r in listed if r["job_id"] == job_id)["state"] == "Cancelled"


# --------------------------------------------------------------------------- diagnosis


def _error_line(res: CliResult) -> str:
    return next((line for line in res.stderr.splitlines() if line.startswith("Error:")), "")


def test_diagnosis_rbac_without_the_binding(lab: ClusterLab) -> None:
    lab.pc.kube.kubectl("delete", "rolebinding", "-n", SPARK_NAMESPACE, "--all")
    (lab.env.cwd / "w.txt").write_text("a b\n")
    res = lab.run("wordcount", "w.txt")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "not allowed to create its executors" in line, res.stderr[-3000:]
    assert "system:serviceaccount:spark:spark cannot" in line
    assert "sparkube up" in line


def test_diagnosis_unknown_image(lab: ClusterLab) -> None:
    lab.pc.kube.kubectl(
        "patch", "configmap", "sparkube-cluster", "-n", SPARK_NAMESPACE, "--type=merge",
        "-p", json.dumps({"data": {"image": "apache/spark:9.9.9-no-such-tag"}}),
    )  # fmt: skip
    (lab.env.cwd / "w.txt").write_text("a b\n")
    res = lab.run("wordcount", "w.txt")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "image apache/spark:9.9.9-no-such-tag cannot be pulled" in line, res.stderr[-2000:]
    assert spark_pods(lab, "sparkube.io/role%3Ddriver") == []  # cancelled, nothing left


def test_diagnosis_executors_larger_than_any_node(lab: ClusterLab) -> None:
    app = lab.env.cwd / "tiny.py"
    app.write_text("from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate()"
                   ".range(3).count()\n")  # fmt: skip
    res = lab.run("submit", "tiny.py", "--executors", "1", "--executor-cores", "8")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "executor pod asks for 8 CPU" in line, res.stderr[-2000:]
    assert "the largest node offers 2 CPU and 4Gi" in line
    assert "--executor-cores" in line
    assert spark_pods(lab, "spark-role%3Dexecutor") == []


def test_diagnosis_driver_over_its_memory_limit(lab: ClusterLab) -> None:
    app = lab.env.cwd / "hog.py"
    app.write_text("blob = b'x' * (3 << 30)\nprint(len(blob))\n")
    res = lab.run("submit", "hog.py", "--executors", "1")
    assert res.exit_code == 137, res.stderr[-2000:]
    line = _error_line(res)
    assert "driver pod" in line and "exceeding its memory limit of 1.4Gi" in line, line


def test_diagnosis_missing_s3_input(lab: ClusterLab) -> None:
    app = lab.env.cwd / "read.py"
    app.write_text(textwrap.dedent(
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


def test_usage_while_a_job_runs(lab: ClusterLab) -> None:
    app = lab.env.cwd / "busy.py"
    app.write_text(textwrap.dedent(
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
    # the EC2 side of this cluster, as up leaves it: 1 control plane + 2 t3.medium workers
    # (moto; the pods run on the process nodes)
    ec2 = boto3.client("ec2", endpoint_url=lab.s3.meta.endpoint_url, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    for role, count in (("control-plane", 1), ("worker", 2)):
        ec2.run_instances(
            ImageId=image, InstanceType="t3.medium", MinCount=count, MaxCount=count,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "sparkube:cluster", "Value": CLUSTER},
                {"Key": "sparkube:role", "Value": role}]}],
        )  # fmt: skip
    res = lab.run("submit", "busy.py", "--executors", "1", "--executor-cores", "1", "--no-wait")
    assert res.exit_code == 0, res.stderr
    job_id = res.stdout.strip()

    seen: list[str] = []

    def spark_usage() -> dict[str, Any] | None:
        out = lab.run("usage", "--output", "json")
        assert out.exit_code == 0, out.stderr
        seen[:] = [out.stdout]
        report = json.loads(out.stdout)
        spark = next((n for n in report["namespaces"] if n["namespace"] == SPARK_NAMESPACE), None)
        executors = [p for p in spark_pods(lab, f"sparkube.io/job%3D{job_id}")
                     if p["metadata"]["labels"].get("spark-role") == "executor"
                     and p["status"].get("phase") == "Running"]  # fmt: skip
        if spark and executors and (spark["cpu_used"] or 0) > 0.05:
            return report
        return None

    try:
        report = lab.pc.kube.wait_for("spark CPU in usage", spark_usage, timeout=180, interval=5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last report: {seen}") from None
    spark = next(n for n in report["namespaces"] if n["namespace"] == SPARK_NAMESPACE)
    # requested = the driver's 500m + one executor of 1 core, as the job asked
    assert spark["cpu_requested"] == pytest.approx(1.5)
    assert report["schema"] == 2 and report["metrics"]["available"] is True
    job = next(j for j in report["jobs"] if j["job_id"] == job_id)
    assert job["state"] in ("Pending", "Running") and job["usd"] > 0
    cost = report["cost"]
    assert cost["per_hour"]["instances"] == pytest.approx(3 * 0.0416)
    assert cost["total_usd"] == pytest.approx(
        cost["jobs_usd"] + cost["idle_usd"] + cost["control_plane_usd"] + cost["volumes_usd"]
        + cost["addresses_usd"]
    )  # fmt: skip
    # the job's facts are its pods' requests: the driver's 500m and one 1-core executor
    exported = lab.run("usage", "--export-ledger", "ledger.json", "-o", "json")
    assert exported.exit_code == 0, exported.stderr
    ledger = json.loads((lab.env.cwd / "ledger.json").read_text())
    pods = next(j for j in ledger["jobs"] if j["job_id"] == job_id)["pods"]
    assert sorted((p["role"], p["cpu"]) for p in pods) == [("driver", 0.5), ("executor", 1.0)]
    chart = lab.run("usage", "--chart", "usage.png")
    assert chart.exit_code == 0, chart.stderr
    png = (lab.env.cwd / "usage.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert lab.run("cancel", job_id).exit_code == 0


def test_history_server_lists_a_finished_job(lab: ClusterLab) -> None:
    from sparkube.monitoring.addons import render_history
    from sparkube.spark.config import ClusterConfig
    from sparkube.spark.podspec import Endpoints

    (lab.env.cwd / "h.txt").write_text("history of words\n")
    res = lab.run("wordcount", "h.txt", "--top", "2")
    assert res.exit_code == 0, res.stderr[-2000:]
    client = client_from_kubeconfig(lab.env.cluster_dir(CLUSTER) / "kubeconfig")
    from lightkube.resources.core_v1 import ConfigMap

    cm = client.get(ConfigMap, "sparkube-cluster", namespace=SPARK_NAMESPACE)
    config = ClusterConfig.from_data(cm.data or {})
    apply_manifest(client, render_history(config, Endpoints.from_environ(lab.env.environ)))

    def history_pod() -> dict[str, Any] | None:
        pods = spark_pods(lab, "app.kubernetes.io/name%3Dspark-history")
        ready = [p for p in pods if p["status"].get("phase") == "Running"]
        return ready[0] if ready else None

    pod = lab.pc.kube.wait_for("history server running", history_pod, timeout=120, interval=2)
    # its S3 jars came from the bucket, read with the node's instance role (IMDS), checked
    said = lab.pc.kube.pod_logs(SPARK_NAMESPACE, pod["metadata"]["name"], "fetch-s3-jars")
    assert f"(37 from {lab.bucket})" in said, said
    url = f"http://{pod['status']['podIP']}:18080/api/v1/applications"

    def listed() -> list[dict[str, Any]] | None:
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # the pod network (ours)
                apps = json.loads(resp.read())
        except OSError:
            return None
        # the built-in WordCount names its session itself
        return [a for a in apps if a.get("name") == "sparkube-wordcount"] or None

    try:
        apps = lab.pc.kube.wait_for(
            "the job in the History Server", listed, timeout=180, interval=3
        )
    except TimeoutError as exc:
        log = lab.pc.logs(SPARK_NAMESPACE, pod["metadata"]["name"], "history")
        raise AssertionError(f"{exc}\n{log[-3000:]}") from None
    assert apps[0]["attempts"][0]["completed"] is True


# --------------------------------------------------------------------------- jobs tell the truth

SLOW_APP = textwrap.dedent(
    """
    import time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    print("STARTED", flush=True)
    spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(600)).count()
    """
)


def submit_process(lab: ClusterLab, *args: str) -> subprocess.Popen[str]:
    """``sparkube submit ARGS`` in its own process, as a user runs it in a terminal while
    another command (or someone with kubectl) acts on the job."""
    return subprocess.Popen(
        [sys.executable, "-m", "sparkube", "submit", *args],
        env=lab.env.environ, cwd=lab.env.cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def ended(proc: subprocess.Popen[str], timeout: float) -> CliResult:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"submit still waiting after {timeout:.0f} s:\n{err[-3000:]}")
    return CliResult(proc.returncode, out, err)


def job_of(lab: ClusterLab, job_id: str) -> dict[str, Any]:
    listed = lab.run("jobs", "--output", "json")
    assert listed.exit_code == 0, listed.stderr
    return next(r for r in json.loads(listed.stdout) if r["job_id"] == job_id)


def only_driver_running(lab: ClusterLab) -> str:
    """The one driver pod of the namespace, once it runs; its job id."""
    pod = lab.pc.kube.wait_for(
        "the driver running",
        lambda: next(
            (p for p in spark_pods(lab, "sparkube.io/role%3Ddriver")
             if p["status"].get("phase") == "Running"),
            None,
        ),
        timeout=240,
    )  # fmt: skip
    return str(pod["metadata"]["labels"]["sparkube.io/job"])


def test_a_driver_refused_its_executors_is_stopped_while_waiting(lab: ClusterLab) -> None:
    """Without `create` on pods the driver retries its 403s for ever: submit used to wait
    without end and `jobs` said Running with 0 executors. Now the watcher reads the
    driver's log while no executor exists and stops the job with the refusal."""
    role = json.loads(lab.pc.kube.kubectl(
        "get", "role", "spark-driver", "-n", SPARK_NAMESPACE, "-o", "json").stdout)  # fmt: skip
    for rule in role["rules"]:
        if "pods" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    lab.pc.kube.kubectl("replace", "-f", "-", input=json.dumps(role))
    (lab.env.cwd / "tiny.py").write_text(
        "from pyspark.sql import SparkSession\n"
        "print(SparkSession.builder.getOrCreate().range(3).count())\n"
    )
    proc = submit_process(lab, "tiny.py", "--executors", "1")
    res = ended(proc, timeout=300)
    assert res.exit_code == 1, res.stderr[-3000:]
    line = _error_line(res)
    assert "not allowed to create its executors" in line, res.stderr[-3000:]
    assert "system:serviceaccount:spark:spark cannot create pods" in line
    lab.pc.kube.wait_for(  # stopped: its pods go
        "the driver pod gone", lambda: spark_pods(lab, "sparkube.io/role%3Ddriver") == [],
        timeout=60,
    )  # fmt: skip
    job_id = next(r["job_id"] for r in json.loads(lab.run("jobs", "--output", "json").stdout))
    record = job_of(lab, job_id)
    assert record["state"] == "Failed"
    assert "not allowed to create its executors" in record["message"]


def test_a_job_cancelled_elsewhere_ends_the_waiting_submit(lab: ClusterLab) -> None:
    (lab.env.cwd / "slow.py").write_text(SLOW_APP)
    proc = submit_process(lab, "slow.py", "--executors", "1")
    try:
        job_id = only_driver_running(lab)
        cancelled = lab.run("cancel", job_id)  # another terminal, the same user
        assert cancelled.exit_code == 0, cancelled.stderr
        res = ended(proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert res.exit_code == 1, res.stderr[-3000:]
    assert f"Job {job_id} was cancelled by the user." in _error_line(res), res.stderr[-2000:]
    assert "No driver pod appeared" not in res.stderr
    assert job_of(lab, job_id)["state"] == "Cancelled"


def test_a_driver_deleted_from_outside_shows_failed_and_keeps_its_log(lab: ClusterLab) -> None:
    """A driver pod deleted with kubectl (or lost with its node) used to leave `jobs` at
    Pending for ever and `logs` saying the job had not started."""
    (lab.env.cwd / "slow.py").write_text(SLOW_APP)
    proc = submit_process(lab, "slow.py", "--executors", "1")
    try:
        job_id = only_driver_running(lab)
        lab.pc.kube.wait_for(
            "an executor running",
            lambda: any(p["status"].get("phase") == "Running"
                        for p in spark_pods(lab, "spark-role%3Dexecutor")),
            timeout=240,
        )  # fmt: skip
        selector = f"sparkube.io/job={job_id},sparkube.io/role=driver"
        lab.pc.kube.wait_for(
            "the app's first line",
            lambda: "STARTED" in lab.pc.kube.kubectl(
                "logs", "-n", SPARK_NAMESPACE, "-l", selector, "-c", "driver", "--tail=-1",
                check=False,
            ).stdout,
            timeout=120, interval=1,
        )  # fmt: skip
        lab.pc.kube.kubectl("delete", "pod", "-n", SPARK_NAMESPACE, "-l", selector, "--wait=false")
        res = ended(proc, timeout=180)
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


def test_a_job_nobody_watched_gets_the_driver_end_time(lab: ClusterLab) -> None:
    (lab.env.cwd / "tiny.py").write_text(
        "from pyspark.sql import SparkSession\n"
        "print(SparkSession.builder.getOrCreate().range(3).count())\n"
    )
    res = lab.run("submit", "tiny.py", "--executors", "1", "--no-wait")
    assert res.exit_code == 0, res.stderr
    job_id = res.stdout.strip()
    pod = lab.pc.kube.wait_for(
        "the driver ended",
        lambda: next((p for p in spark_pods(lab, f"sparkube.io/job%3D{job_id}")
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
    lab: ClusterLab, tmp_path: Path
) -> None:
    """An unmodified-style program that opens a data file by its relative path, imports
    its own module and a pip package, on the driver and in executor tasks: the same
    output on the cluster as locally (issue 18)."""
    from tests.fixtures.wheels import local_index, make_wheel

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
    on_cluster = lab.run_env(env, "submit", "app.py", *flags, "--executors", "1")
    assert on_cluster.exit_code == 0, on_cluster.stderr[-3000:]
    assert on_cluster.stdout.splitlines() == expected
    envs = lab.keys("envs/")
    assert len(envs) == 1 and envs[0].endswith("/pyenv.zip")
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
    lab: ClusterLab, tmp_path: Path
) -> None:
    from tests.fixtures.wheels import local_index

    (tmp_path / "wheels").mkdir()
    env = dataclasses.replace(
        lab.env, environ={**lab.env.environ, **local_index(tmp_path / "wheels")}
    )
    (env.cwd / "app.py").write_text("print('never')\n")
    res = lab.run_env(env, "submit", "app.py", "--pip", "no-such-pkg")
    assert res.exit_code == 2, res.stderr
    assert "no-such-pkg has no wheel for Python" in _error_line(res)
    assert spark_pods(lab, "sparkube.io/role%3Ddriver") == []
