"""The fault matrix's worker rebooted mid-job, on the shared real-node cluster
(tests/fixtures/bedcluster.py): the worker holding a job's executors is stopped and
started in EC2 (moto; the bed powers its machine off at once, as a power cut, and boots
it again from the same disk) while their tasks run. Its executors are lost with it;
Spark asks for new ones, which run once the worker is back, the lost tasks run again,
and the job finishes: ``submit`` exits 0 with the program's output and ``jobs`` says
Succeeded. The driver runs on the other worker (the executors' worker is cordoned while
the driver is placed): a driver lost with its node is
tests/bed/test_4_jobs.py's deleted driver."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from tests.fixtures.bedcluster import BedLab, wait_for
from tests.fixtures.common import CliResult
from tests.fixtures.nodebed import REAL_NODES

pytestmark = REAL_NODES

#: 8 tasks of 15 s on 2 executors of 1 core: about a minute of tasks, so the worker
#: goes while some run and others wait.
APP = textwrap.dedent(
    """
    import time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    def slow(x):
        time.sleep(15)
        return x
    print("SUM", spark.sparkContext.parallelize(range(8), 8).map(slow).sum())
    """
)


def test_a_worker_stopped_and_started_mid_job_the_job_still_finishes(bed_lab: BedLab) -> None:
    lab = bed_lab
    c = lab.cluster
    victim, other = "worker-2", "worker-1"
    instance = c.machines.by_name()[victim].instance_id
    (lab.env.cwd / "slow.py").write_text(APP)
    c.kubectl(f"cordon {victim}")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sparkube", "submit", "slow.py", "--executors", "2",
             "--executor-cores", "1", "--conf",
             f"spark.kubernetes.executor.node.selector.kubernetes.io/hostname={victim}",
             # both on one worker of 2 CPUs: each asks for half a core
             "--conf", "spark.kubernetes.executor.request.cores=500m"],
            env=dict(lab.env.environ), cwd=lab.env.cwd, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

        def driver() -> dict[str, Any] | None:
            return next(
                (p for p in lab.pods("sparkube.io/role=driver")
                 if p["status"].get("phase") == "Running"), None,
            )  # fmt: skip

        pod = wait_for("the driver running", driver, timeout=240)
        assert pod["spec"]["nodeName"] == other, pod["spec"].get("nodeName")
    finally:
        c.kubectl(f"uncordon {victim}")
    job_id = pod["metadata"]["labels"]["sparkube.io/job"]
    try:

        def executors_running() -> list[dict[str, Any]]:
            return [
                p
                for p in lab.pods(f"sparkube.io/job={job_id},spark-role=executor")
                if p["status"].get("phase") == "Running"
            ]

        wait_for("two executors running", lambda: len(executors_running()) == 2, timeout=300)
        assert {p["spec"]["nodeName"] for p in executors_running()} == {victim}
        selector = f"sparkube.io/job={job_id},sparkube.io/role=driver"
        wait_for(
            "a task running",
            lambda: "Starting task" in c.kubectl(
                f"-n spark logs -l {selector} -c driver --tail=-1", check=False
            ).stdout,
            timeout=120,
        )  # fmt: skip
        time.sleep(5)
        t0 = time.monotonic()
        c.ec2.stop_instances(InstanceIds=[instance])
        c.machines.wait(lambda m: not c.bed.running(victim), timeout=60, what=f"{victim} off")
        time.sleep(10)
        c.ec2.start_instances(InstanceIds=[instance])
        c.machines.wait(lambda m: c.bed.running(victim), timeout=60, what=f"{victim} on")
        c.bed.wait_for(
            victim, "systemctl is-active kubelet", timeout=180, what="its kubelet running again"
        )
        back = time.monotonic() - t0
        try:
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            c.diagnose()
            pytest.fail(f"submit still waiting:\n{err[-4000:]}")
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    c.transcript += [out, err]
    c.kubectl(f"wait --for=condition=Ready node/{victim} --timeout=300s")
    res = CliResult(proc.returncode, out, err)
    assert res.exit_code == 0, res.stderr[-4000:]
    assert "SUM 28" in res.stdout.splitlines(), res.stdout[-2000:]
    listed = json.loads(lab.run("jobs", "--output", "json").stdout)
    record = next(r for r in listed if r["job_id"] == job_id)
    assert record["state"] == "Succeeded", record
    # the executors that ran the end were new ones: the first two went with the worker
    log = lab.run("logs", job_id, "--verbose").stdout
    registered = {line for line in log.splitlines() if "Registered executor" in line}
    assert len(registered) > 2, "\n".join(sorted(registered))
    print(json.dumps({"stop_to_kubelet_s": round(back, 1), "stop_to_job_end_s": round(took, 1)}))
