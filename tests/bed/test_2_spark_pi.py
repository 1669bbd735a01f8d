"""A Spark job on the real nodes: SparkPi in cluster mode through ``sparkube submit``,
driver and executors as pods on the workers, ``jobs`` and ``logs``, the event log in the
cluster's bucket with the instance role's credentials from the metadata address, and the
History Server (up's addon, on a worker, reading the bucket with the instance role)
listing it."""

from __future__ import annotations

import json
import re
import shutil
import time
from typing import Any

from sparkube.spark.image import SPARK_IMAGE
from tests.fixtures.bedcluster import SPARK_LAYER, BedCluster
from tests.fixtures.nodebed import REAL_NODES

pytestmark = REAL_NODES


def _json_list(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def test_spark_pi_runs_in_cluster_mode_and_the_history_server_lists_it(
    bed_cluster: BedCluster,
) -> None:
    c = bed_cluster
    shutil.copy(SPARK_LAYER / "layer" / SPARK_IMAGE.examples_jar.lstrip("/"), c.env.cwd / "pi.jar")
    t0 = time.monotonic()
    submitted = c.cli(
        "submit", "pi.jar", "--cluster", c.name, "--class",
        "org.apache.spark.examples.SparkPi", "--executors", "2", "20",
    )  # fmt: skip
    seconds = round(time.monotonic() - t0, 1)
    if submitted.exit_code != 0:
        c.diagnose()
    assert submitted.exit_code == 0, submitted.stderr[-4000:] + submitted.stdout[-2000:]
    assert "Pi is roughly 3.1" in submitted.stdout, submitted.stdout[-2000:]
    listed = c.cli("jobs", "--cluster", c.name, "--output", "json")
    assert listed.exit_code == 0, listed.stderr[-2000:]
    record = next(r for r in json.loads(listed.stdout) if r["app"] == "pi.jar")
    assert record["state"] == "Succeeded" and record["exit_code"] == 0, record
    logs = c.cli("logs", record["job_id"], "--cluster", c.name, "--verbose")
    assert logs.exit_code == 0, logs.stderr[-2000:]
    assert "Pi is roughly 3.1" in logs.stdout, logs.stdout[-2000:]
    # The driver ran on a worker and its two executors registered with it (pods the
    # driver created on the workers, through the API with its own token).
    registered = re.findall(r"Registered executor .*? with ID (\d+)", logs.stdout)
    assert sorted(set(registered)) == ["1", "2"], logs.stdout[-3000:]
    driver = c.kubectl(
        f"-n spark get pods -l 'sparkube.io/job={record['job_id']},spark-role!=executor' "
        "-o jsonpath='{.items[*].spec.nodeName}'"
    ).stdout.split()
    assert driver and all(n.startswith("worker-") for n in driver), driver
    # Its event log reached the cluster's bucket from the pod (s3a through the node,
    # with the credentials the instance metadata gave).
    s3 = c.s3()
    events = [
        o["Key"]
        for b in s3.list_buckets()["Buckets"]
        for o in s3.list_objects_v2(Bucket=b["Name"], Prefix="spark-events/").get("Contents", [])
    ]
    assert events, "no event log in the bucket"
    # The History Server lists the job from its event log.
    url = "/api/v1/namespaces/spark/services/spark-history:18080/proxy/api/v1/applications"
    deadline = time.monotonic() + 180
    apps = c.kubectl(f"get --raw {url}", check=False)
    while apps.returncode != 0 or not any(
        a.get("id") and any(a["id"] in key for key in events) for a in _json_list(apps.stdout)
    ):
        if time.monotonic() > deadline:
            print(
                c.kubectl(
                    "-n spark logs deploy/spark-history --all-containers --tail 40", check=False
                ).stdout
            )
            raise AssertionError(f"the History Server does not list the job: {apps.stdout}")
        time.sleep(3)
        apps = c.kubectl(f"get --raw {url}", check=False)
    listed_apps = [a for a in _json_list(apps.stdout) if any(a["id"] in key for key in events)]
    assert all(a["attempts"][0]["completed"] is True for a in listed_apps), listed_apps
    # The History Server is up's: its S3 jars came from the cluster's bucket with the
    # node's instance role, each checked against its pinned SHA-256.
    said = c.kubectl("-n spark logs deploy/spark-history -c fetch-s3-jars", check=False).stdout
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert any(f"(37 from {b})" in said for b in buckets), (said, buckets)
    print(json.dumps({"spark_pi_submit_s": seconds}))
