"""The user's journey on the shared real-node cluster (tests/fixtures/bedcluster.py),
after ``up``: ``status`` → ``wordcount`` on the cluster → ``submit`` of a PySpark script
with an input, its result written to ``$SPARKUBE_OUTPUT`` (s3a) → ``jobs`` → ``logs`` →
``usage --output json`` → ``dashboard`` (one page through its SSH tunnel), each step
checked as a user would check it; then nothing sparkube wrote holds a secret. ``down``
and the scan of everything sparkube printed come last in the package
(tests/bed/test_9_lifecycle.py).

Everything runs for real on the nodes: the Spark drivers and executors are pods of the
Spark image on the workers, reaching S3 (moto) through their node with the instance
role's credentials; the dashboard's page comes from kube-opex-analytics' pod, applied by
``up`` from sparkube's manifest, reading the API with its own service account and the
metrics API of sparkube's metrics-server. One stand-in remains, and says so on its page:
the kube-opex-analytics image is tools/nodes/opex/opex_standin.py under the real image's
name (the real one is on Docker Hub, out of reach here; what the stand-in keeps of its
contract: its docstring).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sparkube.monitoring import addons
from tests.fixtures.bedcluster import NAMES, BedCluster
from tests.fixtures.common import start_dashboard
from tests.fixtures.nodebed import REAL_NODES
from tests.wordref import reference_count

pytestmark = REAL_NODES

TEXT = (
    "Café café CAFÉ cafe\u0301 naïve don't DON'T l’homme 42 ß\n"
    "हिन्दी भाषा हिन्दी — שָׁלוֹם שָׁלוֹם ภาษาไทย İstanbul\n"
    "the the the a a b\n"
) * 20
LINES = TEXT.count("\n")
APP = """\
import os, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("journey-lines").getOrCreate()
lines = spark.read.text(sys.argv[1]).count()
print(f"journey app counted {lines} lines", flush=True)
# on the cluster $SPARKUBE_OUTPUT is an s3a:// folder: results are written with Spark
result = spark.createDataFrame([(lines,)], "lines long").coalesce(1)
result.write.mode("overwrite").csv(os.environ["SPARKUBE_OUTPUT"] + "/lines")
spark.stop()
"""
#: The jobs this module ran: name -> job id (later steps read what earlier ones made).
RAN: dict[str, str] = {}


def _status(c: BedCluster) -> dict[str, Any]:
    status = c.cli("status", "--cluster", c.name, "--output", "json")
    assert status.exit_code == 0, status.stderr[-2000:]
    value: dict[str, Any] = json.loads(status.stdout)
    return value


def _jobs(c: BedCluster) -> list[dict[str, Any]]:
    listed = c.cli("jobs", "--cluster", c.name, "--output", "json")
    assert listed.exit_code == 0, listed.stderr[-2000:]
    value: list[dict[str, Any]] = json.loads(listed.stdout)
    return value


def test_status_after_up(bed_cluster: BedCluster) -> None:
    """``up`` said where the cluster is and stocked the S3 jars in its bucket once;
    ``status`` has every phase done, every node running and a price."""
    c = bed_cluster
    assert "Ready in" in c.up.stdout, c.up.stdout
    cdir = c.env.cluster_dir(c.name)
    for private in (cdir / "id_ed25519", cdir / "kubeconfig"):
        assert private.stat().st_mode & 0o777 == 0o600, private
    stocked = re.search(r"37 checked jars in s3://(\S+)/jars/ \(37 uploaded", c.up.stderr)
    assert stocked, c.up.stderr[-3000:]
    assert c.s3().list_objects_v2(Bucket=stocked[1], Prefix="jars/")["KeyCount"] == 37
    st = _status(c)
    assert st["phases_pending"] == [] and "addons" in st["phases_done"], st
    assert sorted(n["name"] for n in st["nodes"]) == sorted(NAMES), st["nodes"]
    assert all(n["state"] == "running" for n in st["nodes"]), st["nodes"]
    assert st["usd_per_hour"] > 0


def test_wordcount_on_the_cluster_equals_the_reference(bed_cluster: BedCluster) -> None:
    c = bed_cluster
    (c.env.cwd / "book.txt").write_text(TEXT, encoding="utf-8")
    wc = c.cli("wordcount", "book.txt", "--cluster", c.name, "--top", "3", "--output-dir", "remote")
    if wc.exit_code != 0:
        c.diagnose()
    assert wc.exit_code == 0, wc.stderr[-4000:]
    assert f"Running on cluster {c.name}" in wc.stderr, wc.stderr[-2000:]
    counted = (c.env.cwd / "remote" / "wordcount.csv").read_text(encoding="utf-8")
    rows = [line.rsplit(",", 1) for line in counted.splitlines()[1:]]
    assert {w: int(n) for w, n in rows} == dict(reference_count([TEXT]))
    assert rows == sorted(rows, key=lambda r: (-int(r[1]), r[0]))
    assert "the" in wc.stdout  # the top-N table
    (record,) = [j for j in _jobs(c) if j["app"] == "wordcount"]
    RAN["wordcount"] = record["job_id"]
    # The driver (a pod of the Spark image on a worker) took the S3 jars from the
    # cluster's bucket (moto, through its node), not from Maven.
    (driver,) = c.kubectl_json(
        f"-n spark get pods -l 'sparkube.io/job={record['job_id']},sparkube.io/role=driver'"
    )["items"]
    assert driver["spec"]["nodeName"].startswith("worker-"), driver["spec"]
    said = c.kubectl(f"-n spark logs {driver['metadata']['name']} -c fetch-s3-jars").stdout
    assert f"(37 from {c.pods.s3_endpoint.split('/')[2]})" in said, said


def test_submit_writes_its_result_to_the_bucket(bed_cluster: BedCluster) -> None:
    """A user's script with an input: ``$SPARKUBE_OUTPUT`` is an s3a:// folder of the
    cluster's bucket, the executors write there, and ``submit`` downloads it; ``jobs``
    and ``logs`` tell the job afterwards."""
    c = bed_cluster
    (c.env.cwd / "book.txt").write_text(TEXT, encoding="utf-8")
    (c.env.cwd / "lines.py").write_text(APP)
    sub = c.cli(
        "submit", "lines.py", "--cluster", c.name, "--input", "book.txt",
        "--executors", "1", "--output-dir", "out",
    )  # fmt: skip
    if sub.exit_code != 0:
        c.diagnose()
    assert sub.exit_code == 0, sub.stderr[-4000:] + sub.stdout[-2000:]
    parts = sorted((c.env.cwd / "out" / "lines").glob("part-*.csv"))
    assert [p.read_text() for p in parts] == [f"{LINES}\n"], parts

    (record,) = [j for j in _jobs(c) if j["app"] == "lines.py"]
    assert record["state"] == "Succeeded" and record["exit_code"] == 0, record
    RAN["lines.py"] = record["job_id"]
    # What the executors wrote is in the cluster's bucket, where $SPARKUBE_OUTPUT
    # pointed (the job's record says where).
    where = re.fullmatch(r"s3a://([^/]+)/(\S+/)", record["output"])
    assert where, record
    s3 = c.s3()
    listed = s3.list_objects_v2(Bucket=where[1], Prefix=where[2] + "lines/").get("Contents", [])
    csvs = [o["Key"] for o in listed if o["Key"].endswith(".csv")]
    assert len(csvs) == 1, listed
    body = s3.get_object(Bucket=where[1], Key=csvs[0])["Body"].read().decode()
    assert body == f"{LINES}\n", body

    logs = c.cli("logs", record["job_id"], "--cluster", c.name)
    assert logs.exit_code == 0, logs.stderr[-2000:]
    assert f"journey app counted {LINES} lines" in logs.stdout, logs.stdout[-2000:]


def test_jobs_and_usage_agree_with_status(bed_cluster: BedCluster) -> None:
    """``jobs`` lists both runs as succeeded; ``usage`` has node metrics, a cost for every
    job and the cluster's price; what ``status`` says the cluster cost so far is
    ``usage``'s cluster total (one model over the same facts)."""
    c = bed_cluster
    jobs = _jobs(c)
    mine = [j for j in jobs if j["job_id"] in RAN.values()]
    assert sorted(j["app"] for j in mine) == sorted(RAN), (RAN, jobs)
    assert {j["state"] for j in mine} == {"Succeeded"}, mine
    usage = c.cli("usage", "--cluster", c.name, "--output", "json")
    assert usage.exit_code == 0, usage.stderr[-2000:]
    report = json.loads(usage.stdout)
    assert report["metrics"]["available"] is True, report["metrics"]
    assert {j["job_id"] for j in report["jobs"]} == {j["job_id"] for j in jobs}
    assert all(j["usd"] > 0 for j in report["jobs"]), report["jobs"]
    st = _status(c)
    assert report["cost"]["usd_per_hour"] == pytest.approx(st["usd_per_hour"], abs=1e-4)
    # so far: status and usage agree up to what the cluster costs between the two calls
    seen = datetime.now(UTC)
    again = _status(c)
    now = json.loads(
        c.cli("usage", "--cluster", c.name, "--since", "all", "--output", "json").stdout
    )
    drift = now["cost"]["usd_per_hour"] * (datetime.now(UTC) - seen).total_seconds() / 3600
    assert now["cost"]["cluster_total_usd"] == pytest.approx(again["usd_so_far"], abs=drift + 1e-4)
    assert now["cost"]["total_usd"] == pytest.approx(
        sum(now["cost"][k] for k in ("jobs_usd", "idle_usd", "control_plane_usd",
                                    "volumes_usd", "addresses_usd"))
    )  # fmt: skip


def test_dashboard_shows_the_opex_page_through_the_tunnel(bed_cluster: BedCluster) -> None:
    """``sparkube dashboard --no-browser`` as a user runs it (its own process, until
    Ctrl-C): a page of kube-opex-analytics' pod, through the SSH tunnel the command opens
    via the control plane (on 127.0.0.1 here), made with the reads the addon's
    ClusterRole allows (every node counted, node metrics included)."""
    c = bed_cluster
    (pod,) = c.kubectl_json(
        f"-n {addons.OPEX_NAMESPACE} get pods -l app.kubernetes.io/name={addons.OPEX_SERVICE}"
    )["items"]
    assert pod["spec"]["containers"][0]["image"] == (
        f"rchakode/kube-opex-analytics:{addons.OPEX_VERSION}"
    )
    assert pod["spec"]["nodeName"] in NAMES, pod["spec"]
    # the manifest runs unchanged on the image: its user, no command, the restricted
    # namespace's securityContext, the readiness probe passing, no restart
    (state,) = pod["status"]["containerStatuses"]
    assert state["ready"] and state["restartCount"] == 0, pod["status"]
    assert "command" not in pod["spec"]["containers"][0], pod["spec"]
    assert pod["spec"]["securityContext"]["runAsUser"] == 4583, pod["spec"]
    t0 = time.monotonic()
    # (the page's reads fail until node metrics exist: the fetch is retried until then)
    page = _tunnel_get(c, "dashboard", (), "/", until="test stand-in")
    assert "cost model CHARGE_BACK" in page, page
    node_rows = re.search(r"<td>nodes</td><td>(\d+)</td>", page)
    assert node_rows and int(node_rows.group(1)) == len(NAMES), page
    rate = re.search(r"hourly rate \$([\d.]+)", page)
    assert rate and float(rate[1]) == pytest.approx(_status(c)["usd_per_hour"], abs=1e-4), page
    # the page came from that pod: the stand-in logged the request
    said = c.kubectl(f"-n {addons.OPEX_NAMESPACE} logs {pod['metadata']['name']}").stdout
    assert '"GET / HTTP/1.1" 200' in said, said[-2000:]
    print(json.dumps({"dashboard_page_s": round(time.monotonic() - t0, 1)}))


def test_nothing_sparkube_wrote_holds_a_secret(bed_cluster: BedCluster) -> None:
    """sparkube's files (run records, logs, cost ledger; not the key and kubeconfig,
    which are the secrets' home) hold none of the cluster's secrets, before ``down``
    removes the cluster's folder (tests/bed/test_9_lifecycle.py scans what it printed)."""
    c = bed_cluster
    written = c.written()
    assert any(Path(p).parent == c.env.cluster_dir(c.name) for p in written), sorted(written)
    for path, text in written.items():
        for what, value in c.secrets.items():
            assert value not in text, f"{what} is in {path}"
        assert "PRIVATE KEY" not in text, path
        assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", text), f"a bearer token in {path}"


SLOW_APP = """\
import time
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("ui-probe").getOrCreate()
print("ui-probe counted", spark.range(1000).count(), flush=True)
time.sleep(300)  # stays up while the test looks at its UI; cancelled by the test
"""


def _tunnel_get(
    c: BedCluster,
    command: str,
    args: tuple[str, ...],
    path: str,
    *,
    until: str,
    timeout: float = 120,
) -> str:
    """``sparkube COMMAND ARGS --no-browser`` (``dashboard``, ``spark-ui``) in its own
    process, as a user runs it until Ctrl-C; GET ``path`` through its tunnel until the
    answer holds ``until``; Ctrl-C; the answer. Everything it printed joins the
    transcript."""
    environ = {**c.env.environ, "PYTHONPATH": os.getcwd()}
    proc, url = start_dashboard(environ, c.env.cwd, *args, "--cluster", c.name, command=command)
    body = ""
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), (url, proc.poll())
        deadline = time.monotonic() + timeout
        while until not in body:
            try:  # loopback: the tunnel's local end
                with urllib.request.urlopen(url + path.lstrip("/"), timeout=20) as resp:
                    body = resp.read().decode()
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {path} through the tunnel: {exc}") from None
            if until not in body:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{path} never held {until!r}: {body[-2000:]}")
                time.sleep(2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        c.transcript += [out, err]
    assert proc.returncode == 0, err[-2000:]
    assert "Tunnel closed." in err, err[-2000:]
    return body


def test_spark_ui_shows_a_running_jobs_ui_and_the_history_server(bed_cluster: BedCluster) -> None:
    """``sparkube spark-ui JOB``: the live UI of a running job's driver (port 4040 of its
    pod, through the control plane); ``sparkube spark-ui``: the History Server, listing
    the journey's finished jobs from their event logs in the bucket."""
    c = bed_cluster
    (c.env.cwd / "ui_probe.py").write_text(SLOW_APP)
    started = c.cli("submit", "ui_probe.py", "--cluster", c.name, "--executors", "1", "--no-wait")
    assert started.exit_code == 0, started.stderr[-3000:]
    (record,) = [r for r in _jobs(c) if r["app"] == "ui_probe.py"]
    job_id = record["job_id"]
    try:
        deadline = time.monotonic() + 180
        while True:
            logs = c.cli("logs", job_id, "--cluster", c.name)
            if "ui-probe counted 1000" in logs.stdout:
                break
            assert time.monotonic() < deadline, (logs.stdout[-2000:], logs.stderr[-2000:])
            time.sleep(3)
        live = json.loads(
            _tunnel_get(c, "spark-ui", (job_id,), "/api/v1/applications", until="ui-probe")
        )
        assert [a["name"] for a in live] == ["ui-probe"], live
        assert not live[0]["attempts"][0]["completed"]  # the live UI of the running job
    finally:
        cancelled = c.cli("cancel", job_id, "--cluster", c.name)
        assert cancelled.exit_code == 0, cancelled.stderr[-2000:]
    # The History Server, for finished jobs: the journey's earlier jobs are listed.
    history = json.loads(
        _tunnel_get(c, "spark-ui", (), "/api/v1/applications", until="journey-lines", timeout=180)
    )
    names = {a["name"] for a in history}
    assert "journey-lines" in names, names
    assert all(a["attempts"][0]["completed"] for a in history if a["name"] == "journey-lines")
