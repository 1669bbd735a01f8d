"""Spot workers without losing jobs (issue 20), on a real-node cluster of its own.

``sparkube up --spot`` on the bed: the workers' group keeps one on-demand worker and
launches spot above it (moto marks them so, as EC2 Auto Scaling does); each worker
labels its market at join; aws-node-termination-handler (the real one, built from its
Go module) runs on the spot workers in instance-metadata mode.

A WordCount whose reduce tasks take a while runs with two executors. Once its shuffle
is written and its reduce stage runs, the bed's metadata service gives the spot worker
holding an executor EC2's two-minute notice. The handler cordons and drains the node;
the executor pod's preStop (the image's ``/opt/decom.sh``) makes Spark decommission the
executor: it finishes its running tasks, its shuffle blocks move to the other executor
or to the fallback storage in the cluster's bucket, and it exits. Then EC2 reclaims the
instance (the test terminates it in moto), Auto Scaling's health check replaces it (a
stand-in: moto has none), and the new spot worker joins by itself. The job's output
equals the reference byte for byte, and the driver never ran on a spot worker.

The second run turns decommissioning off (``--conf spark.decommission.enabled=false``):
the node is drained the same way, the executor dies with its shuffle files, and Spark
recomputes them; the job still ends with the same bytes, later.

Lives in its own package, after ``tests/bed`` (pytest collects folders in name order),
so its machines never share the host's two cores with the shared cluster's.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkube.aws import workergroup
from sparkube.model import MARKET_LABEL
from tests.fixtures.bedcluster import (
    BedCluster,
    BedLab,
    approve_serving_csrs,
    open_lab,
    start_bed_cluster,
    wait_for,
)
from tests.fixtures.moto_server import replace_lost_members
from tests.fixtures.nodebed import REAL_NODES, approver_missing

pytestmark = REAL_NODES

CLUSTER = "spotty"
#: Seconds each reduce task sleeps: the reduce stage outlasts the notice's handling.
PAUSE_S = 25
HANDLER = "aws-node-termination-handler"

#: WordCount over the input, its reduce tasks slowed down; the counts as CSV, most
#: frequent first, in $SPARKUBE_OUTPUT/counts.
APP = """
import os, sys, time
from operator import add
from pyspark.sql import SparkSession

pause = float(sys.argv[1])
spark = SparkSession.builder.appName("spot-wordcount").getOrCreate()
sc = spark.sparkContext


def slow(rows):
    print("SPOT-TEST reduce task started", flush=True)
    time.sleep(pause)
    return rows


counts = (
    sc.textFile(sys.argv[2], 8)
    .flatMap(lambda line: line.lower().split())
    .map(lambda word: (word, 1))
    .reduceByKey(add, 6)
    .mapPartitions(slow)
    .collect()
)
rows = sorted(counts, key=lambda wc: (-wc[1], wc[0]))
body = "word,count\\n" + "".join(f"{w},{c}\\n" for w, c in rows)
sc.parallelize([body], 1).saveAsTextFile(os.environ["SPARKUBE_OUTPUT"] + "counts")
print(f"SPOT-TEST {len(rows)} words", flush=True)
spark.stop()
"""

WORDS = [f"w{n:03d}" for n in range(300)]


def text() -> str:
    rng = random.Random(20)
    lines = (" ".join(rng.choices(WORDS, k=12)) for _ in range(20000))
    return "\n".join(lines) + "\n"


def reference(body: str) -> str:
    counts = Counter(body.lower().split())
    rows = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    return "word,count\n" + "".join(f"{w},{c}\n" for w, c in rows)


@pytest.fixture(scope="module")
def spot_cluster(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedCluster]:
    base = tmp_path_factory.mktemp("spotcluster")
    with start_bed_cluster(moto_url, base, name=CLUSTER, max_workers=3,
                           extra=["--spot"]) as cluster:  # fmt: skip
        yield cluster


@pytest.fixture
def spot_lab(spot_cluster: BedCluster, tmp_path: Path) -> Iterator[BedLab]:
    with open_lab(spot_cluster, tmp_path) as lab:
        yield lab


def _markets(c: BedCluster) -> dict[str, str]:
    nodes = c.kubectl_json("get nodes")["items"]
    return {
        n["metadata"]["name"]: n["metadata"].get("labels", {}).get(MARKET_LABEL, "")
        for n in nodes
        if n["metadata"]["name"] != "control-plane"
    }


def _instance_of(c: BedCluster, node: str) -> str:
    provider = c.kubectl_json(f"get node {node}")["spec"]["providerID"]
    return str(provider.rsplit("/", 1)[-1])


def test_spot_workers_one_on_demand_and_the_handler_on_spot_only(spot_cluster: BedCluster) -> None:
    c = spot_cluster
    assert "(spot above 1 on-demand)" in c.up.stderr, c.up.stderr[-2000:]
    markets = _markets(c)
    assert sorted(markets.values()) == ["on-demand", "spot"], markets
    for node, market in markets.items():
        (inst,) = c.ec2.describe_instances(InstanceIds=[_instance_of(c, node)])["Reservations"][0][
            "Instances"
        ]
        assert inst.get("InstanceLifecycle", "on-demand") == market, (node, inst)
    pods = c.kubectl_json(f"-n kube-system get pods -l app.kubernetes.io/name={HANDLER}")["items"]
    assert [p["spec"]["nodeName"] for p in pods] == [
        n for n, m in markets.items() if m == "spot"
    ], pods


def _interrupt_mid_shuffle(lab: BedLab, conf: list[str]) -> dict[str, Any]:
    """Run the slow WordCount; once a reduce task started on an executor of a spot
    worker, give that worker EC2's notice, wait for the handler's drain, reclaim and
    replace the instance; return what happened, the output checked."""
    c = lab.cluster
    body = text()
    (lab.env.cwd / "book.txt").write_text(body, encoding="utf-8")
    (lab.env.cwd / "spotcount.py").write_text(APP, encoding="utf-8")
    result: dict[str, Any] = {}

    def submit() -> None:
        t0 = time.monotonic()
        result["run"] = lab.run(
            "submit", "spotcount.py", "--input", "book.txt", "--output-dir", "out",
            "--executors", "2", *conf, "--", str(PAUSE_S),
        )  # fmt: skip
        result["took"] = time.monotonic() - t0

    runner = threading.Thread(target=submit, daemon=True)
    t0 = time.monotonic()
    runner.start()
    markets = _markets(c)

    def executor_in_reduce() -> dict[str, Any] | None:
        for pod in lab.pods("spark-role=executor"):
            node = pod["spec"].get("nodeName")
            if not node or markets.get(node) != "spot":
                continue
            logs = c.kubectl(f"-n spark logs {pod['metadata']['name']}", check=False).stdout
            if "SPOT-TEST reduce task started" in logs:
                return dict(pod)
        return None

    pod = wait_for("a reduce task on a spot worker's executor", executor_in_reduce, 300)
    node = pod["spec"]["nodeName"]
    instance = _instance_of(c, node)
    noticed = time.monotonic()
    c.pods.metadata.notify(instance, spot_action="terminate")
    # the handler cordons the node and evicts the executor; Spark decommissions it
    wait_for(
        f"{node} cordoned",
        lambda: c.kubectl_json(f"get node {node}")["spec"].get("unschedulable"),
        60,
    )
    cordoned = time.monotonic()
    wait_for(
        f"the executors on {node} gone",
        lambda: (
            not [p for p in lab.pods("spark-role=executor") if p["spec"].get("nodeName") == node]
        ),
        150,
    )
    drained = time.monotonic()
    # EC2 reclaims the instance at the notice's time; Auto Scaling replaces it
    c.ec2.terminate_instances(InstanceIds=[instance])
    group = workergroup.group_name(c.name)
    new = wait_for("the lost worker replaced", lambda: replace_lost_members(group) or None, 60)
    runner.join(timeout=900)
    assert not runner.is_alive(), "the job did not end"
    ran = result["run"]
    assert ran.exit_code == 0, ran.stderr[-3000:] + ran.stdout[-2000:]
    (part,) = sorted((lab.env.cwd / "out" / "counts").glob("part-*"))
    assert part.read_text(encoding="utf-8") == reference(body)  # byte for byte
    (job_id,) = set(re.findall(r"\bjob (job-[\w-]+)", ran.stderr))
    # the driver ran on the on-demand worker
    (driver,) = lab.pods(f"sparkube.io/job={job_id},sparkube.io/role=driver")
    assert markets[driver["spec"]["nodeName"]] == "on-demand", driver["spec"]["nodeName"]
    return {
        "job_id": job_id,
        "node": node,
        "instance": instance,
        "new": new,
        "took": result["took"],
        "notice_after_s": round(noticed - t0, 1),
        "cordon_s": round(cordoned - noticed, 1),
        "drain_s": round(drained - noticed, 1),
        "job_s": round(result["took"], 1),
    }


def _event_log(lab: BedLab, job_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for key in lab.keys(f"spark-events/eventlog_v2_{job_id}/") or lab.keys(
        f"spark-events/{job_id}"
    ):
        if "/appstatus_" in key:
            continue
        got = lab.s3.get_object(Bucket=lab.bucket, Key=key)["Body"].read().decode()
        events += [json.loads(line) for line in got.splitlines() if line.strip()]
    return events


def test_a_notice_mid_shuffle_drains_the_worker_and_the_job_loses_nothing(
    spot_lab: BedLab,
) -> None:
    lab = spot_lab
    c = lab.cluster
    stop = threading.Event()
    if approver_missing():  # the replacement's serving certificate (see test_8_elastic)
        threading.Thread(target=approve_serving_csrs, args=(c, stop), daemon=True).start()
    try:
        got = _interrupt_mid_shuffle(lab, [])
        (new,) = got["new"]
        wait_for(
            f"the replacement {new} a Ready spot node",
            lambda: (
                _markets(c).get(new) == "spot"
                and any(
                    x["type"] == "Ready" and x["status"] == "True"
                    for x in c.kubectl_json(f"get node {new}")["status"]["conditions"]
                )
            ),
            400,
        )
    finally:
        stop.set()
    # Spark decommissioned the executor: no task failed because of it
    events = _event_log(lab, got["job_id"])
    removed = [e for e in events if e.get("Event") == "SparkListenerExecutorRemoved"]
    assert any("decommission" in str(e.get("Removed Reason", "")).lower() for e in removed), removed
    failed = [
        e["Task End Reason"]
        for e in events
        if e.get("Event") == "SparkListenerTaskEnd"
        and e.get("Task End Reason", {}).get("Reason") != "Success"
    ]
    counted = [r for r in failed if r.get("Exit Caused By App", True)]
    assert counted == [], failed
    print(json.dumps({k: v for k, v in got.items() if k.endswith("_s")}))


def test_without_decommissioning_the_job_recomputes_and_still_ends_right(
    spot_lab: BedLab,
) -> None:
    lab = spot_lab
    stop = threading.Event()
    if approver_missing():
        threading.Thread(target=approve_serving_csrs, args=(lab.cluster, stop), daemon=True).start()
    try:
        got = _interrupt_mid_shuffle(lab, ["--conf", "spark.decommission.enabled=false"])
    finally:
        stop.set()
    print(json.dumps({"decommission": "off", **{k: v for k, v in got.items() if k.endswith("_s")}}))


def test_down_leaves_nothing(spot_cluster: BedCluster) -> None:
    c = spot_cluster
    res = c.cli("down", "--cluster", c.name, "--yes")
    c.down = True
    assert res.exit_code == 0, res.stderr[-3000:]
    live = [
        i["InstanceId"]
        for r in c.ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    assert live == [], live
    autoscaling = c.client("autoscaling")
    groups = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[workergroup.group_name(c.name)]
    )["AutoScalingGroups"]
    assert groups == []
