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
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkube.aws import workergroup
from tests.fixtures import spotrun
from tests.fixtures.bedcluster import (
    BedCluster,
    BedLab,
    approve_serving_csrs,
    open_lab,
    start_bed_cluster,
    wait_for,
)
from tests.fixtures.nodebed import REAL_NODES, approver_missing

pytestmark = REAL_NODES


@pytest.fixture(scope="module")
def spot_cluster(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedCluster]:
    base = tmp_path_factory.mktemp("spotcluster")
    with start_bed_cluster(moto_url, base, name=spotrun.CLUSTER, max_workers=3,
                           extra=["--spot"]) as cluster:  # fmt: skip
        yield cluster


@pytest.fixture
def spot_lab(spot_cluster: BedCluster, tmp_path: Path) -> Iterator[BedLab]:
    with open_lab(spot_cluster, tmp_path) as lab:
        yield lab


def test_spot_workers_one_on_demand_and_the_handler_on_spot_only(spot_cluster: BedCluster) -> None:
    c = spot_cluster
    assert "(spot above 1 on-demand)" in c.up.stderr, c.up.stderr[-2000:]
    markets = spotrun.markets(c)
    assert sorted(markets.values()) == ["on-demand", "spot"], markets
    for node, market in markets.items():
        found = c.ec2.describe_instances(InstanceIds=[spotrun.instance_of(c, node)])
        (inst,) = found["Reservations"][0]["Instances"]
        assert inst.get("InstanceLifecycle", "on-demand") == market, (node, inst)
    selector = f"app.kubernetes.io/name={spotrun.HANDLER}"
    pods = c.kubectl_json(f"-n kube-system get pods -l {selector}")["items"]
    assert [p["spec"]["nodeName"] for p in pods] == [
        n for n, m in markets.items() if m == "spot"
    ], pods


def test_a_notice_mid_shuffle_drains_the_worker_and_the_job_loses_nothing(
    spot_lab: BedLab,
) -> None:
    lab = spot_lab
    c = lab.cluster
    stop = threading.Event()
    if approver_missing():  # the replacement's serving certificate (see test_8_elastic)
        threading.Thread(target=approve_serving_csrs, args=(c, stop), daemon=True).start()
    try:
        got = spotrun.run_job(lab, [])
        spotrun.told(lab, got, "decommissioned")
        (new,) = got["new"]
        spotrun.wait_ready(c, new, "spot", 400)
        # the reclaimed worker's Node object went (the controller: no cloud controller)
        wait_for(f"{got['node']}'s node removed", lambda: got["node"] not in spotrun.markets(c),
                 180)  # fmt: skip
    finally:
        stop.set()
    said = lab.run("logs", got["job_id"], "--verbose").stdout
    lines = [line for line in said.splitlines()
             if re.search(r"decommission|migrat|fallback|map output for", line, re.I)]  # fmt: skip
    print("\n".join(lines)[-6000:])
    print("the decommissioned executor said:\n" + "\n".join(got["executor_said"]))
    # Spark decommissioned the executor, and nothing counted against the job: an
    # executor lost not by the app's fault, or a fetch from the decommissioned executor
    # (a block it could not hand over in time: recomputed; Spark says it ignored it for
    # the stage's attempts), never a task's own failure
    events = spotrun.event_log(lab, got["job_id"])
    removed = [e for e in events if e.get("Event") == "SparkListenerExecutorRemoved"]
    gone = {
        str(e.get("Executor ID"))
        for e in removed
        if "decommission" in str(e.get("Removed Reason", "")).lower()
    }
    assert gone, removed
    failed = [
        e["Task End Reason"]
        for e in events
        if e.get("Event") == "SparkListenerTaskEnd"
        and e.get("Task End Reason", {}).get("Reason") != "Success"
    ]
    counted = [
        r
        for r in failed
        if not (r.get("Reason") == "ExecutorLostFailure" and not r.get("Exit Caused By App"))
        and not (
            r.get("Reason") == "FetchFailed"
            and str((r.get("Block Manager Address") or {}).get("Executor ID")) in gone
        )
    ]
    assert counted == [], failed
    fetches = [r for r in failed if r.get("Reason") == "FetchFailed"]
    if fetches:
        assert any("Ignoring fetch failure" in line for line in lines), lines
    moved = sum("map output for" in line for line in lines)
    print(f"blocks handed over (map outputs moved): {moved}; fetches failed: {len(fetches)}")
    print(json.dumps({k: v for k, v in got.items() if k.endswith("_s")}))


def test_without_decommissioning_the_job_recomputes_and_still_ends_right(
    spot_lab: BedLab,
) -> None:
    lab = spot_lab
    stop = threading.Event()
    if approver_missing():
        threading.Thread(target=approve_serving_csrs, args=(lab.cluster, stop), daemon=True).start()
    try:
        got = spotrun.run_job(lab, ["--conf", "spark.decommission.enabled=false"])
        spotrun.told(lab, got, "lost")
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
