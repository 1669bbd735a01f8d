"""The whole journey through the real CLI, each step checked as a user would check it:

``up`` (infra → nodes → kubernetes → addons) → ``status`` → ``wordcount`` → ``submit`` →
``jobs`` → ``logs`` → ``usage --output json`` → ``dashboard`` (one page fetched through
the tunnel) → ``down``; then no secret in anything sparkube printed or logged.

What plays what (TESTING.md):
- AWS is the moto server. The instances moto launches are played by OpenSSH hosts in
  network namespaces (``SPARKUBE_NODE_ADDRESSES``; nothing connects to a moto address),
  booted with the user data ``up`` really gave the instances, while ``up`` waits for
  them — as EC2 instances boot while ``up`` waits.
- Node commands (apt-get, kubeadm, kubectl, ...) are the shims of sshshim.sh;
  ``kubeadm init`` leaves the real API server's admin kubeconfig on the control plane.
- Kubernetes is the session's process cluster: a real control plane whose workers
  ``worker-1``/``worker-2`` run pods as processes, so Spark drivers and executors, the
  History Server and the jobs' S3 traffic (credentials only from the instance metadata,
  served by moto) are real. Its metrics-server is the real one the fixture runs, so the
  addons phase leaves its own out (SPARKUBE_SKIP_ADDONS=metrics-server).
- CoreDNS, which ``up`` waits for, is a stand-in Deployment (the agent answers DNS).
- The kube-opex-analytics image is a stand-in (procnode/opex_standin.py) that makes the
  reads the real collector makes with its service account and serves HTTP on 5483.
- The control-plane host reaches the cluster's ClusterIPs as a kubeadm control plane
  does (kube-proxy): here by a route from its namespace to the process cluster's
  service range on this machine.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sparkube.monitoring import addons
from sparkube.spark.rbac import SPARK_NAMESPACE
from tests.fixtures.common import CliResult, coredns_deployment, start_dashboard
from tests.fixtures.moto_server import MotoAws
from tests.fixtures.procnodes import ProcessCluster, spark_layer_or_skip
from tests.fixtures.sshhosts import IP, SshLab
from tests.wordref import reference_count

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLUSTER = "sparkube"
CIDR = "203.0.113.7/32"
TEXT = (
    "Café café CAFÉ cafe\u0301 naïve don't DON'T l’homme 42 ß\n"
    "हिन्दी भाषा हिन्दी — שָׁלוֹם שָׁלוֹם ภาษาไทย İstanbul\n"
    "the the the a a b\n"
) * 20
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
COREDNS = coredns_deployment({"image": "busybox:1.37", "command": ["sleep", "3600"]})


@dataclasses.dataclass
class Transcript:
    """Everything sparkube printed during the journey (for the secret scan)."""

    texts: list[str] = dataclasses.field(default_factory=list)

    def add(self, *parts: str) -> None:
        self.texts.extend(parts)


def _boot_when_keyed(
    lab: SshLab, moto: MotoAws, key_file: Path, errors: list[BaseException]
) -> threading.Thread:
    """In the background, as EC2 would: once ``up`` has made the cluster key and launched
    the instances, authorize the key on the hosts and run the instances' user data."""

    def user_data() -> str | None:
        ec2: Any = moto.client("ec2")
        found = ec2.describe_instances(
            Filters=[
                {"Name": "tag:sparkube:cluster", "Values": [CLUSTER]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
        ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
        if len(ids) < len(lab.hosts):
            return None
        scripts = set()
        for iid in ids:
            raw = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
            data = base64.b64decode(raw["UserData"]["Value"])
            scripts.add((gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode())
        # The user data writes the preparation script to /var/lib/sparkube and runs it as
        # root; the hosts here are one unprivileged user, so they run that script itself
        # (it keeps each host's files under SPARKUBE_NODE_ROOT). It differs per role only
        # in SPARKUBE_NODE_ROLE (workers pre-pull the Spark image); the script is one.
        roles = {m[1] for s in scripts for m in re.finditer(r"SPARKUBE_NODE_ROLE=(\S+)", s)}
        assert roles == {"control-plane", "worker"}, roles
        found = {
            m.group(2)
            for s in scripts
            if (m := re.search(r"<<'(SPARKUBE_PREPARE_SCRIPT_END)'\n(.*?\n)\1\n", s, re.DOTALL))
        }
        assert len(found) == 1, "every node boots the same preparation script"
        return found.pop()

    def boot() -> None:
        try:
            deadline = time.monotonic() + 300
            while not key_file.exists() or not key_file.read_text().endswith("\n"):
                if time.monotonic() > deadline:
                    raise TimeoutError("up made no cluster key in 5 minutes")
                time.sleep(0.2)
            lab.authorize(key_file.read_text())  # EC2 installs the key pair's key
            script = None
            while script is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("up launched no instances in 5 minutes")
                time.sleep(0.5)
                script = user_data()
            for proc in lab.boot(script):
                assert proc.wait(120) == 0, "user data failed on a host"
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=boot, name="boot-nodes", daemon=True)
    thread.start()
    return thread


def _dashboard_page(env_vars: dict[str, str], cwd: Path, transcript: Transcript) -> str:
    """``sparkube dashboard --no-browser`` as a user runs it (its own process, until
    Ctrl-C); returns the page fetched through its tunnel."""
    proc, url = start_dashboard(env_vars, cwd)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), (url, proc.poll())
        page = ""
        deadline = time.monotonic() + 90
        while "test stand-in" not in page:
            try:  # loopback: the tunnel's local end
                with urllib.request.urlopen(url, timeout=20) as resp:
                    page = resp.read().decode()
            except OSError as exc:  # the page's pod may still be starting
                if time.monotonic() > deadline:
                    raise AssertionError(f"no page through the tunnel: {exc}") from None
                time.sleep(2)
        return page
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        transcript.add(out, err)
        assert proc.returncode == 0, err
        assert "Tunnel closed." in err


def test_the_whole_journey(
    cli: Callable[..., CliResult],
    moto_aws: MotoAws,
    ssh_lab: SshLab,
    process_cluster: ProcessCluster,
) -> None:
    spark_layer_or_skip()
    pc = process_cluster
    workers = len(pc.workers)
    transcript = Transcript()
    # A secret nobody could guess, so finding it in output means sparkube printed it.
    aws_secret = "journey/" + secrets.token_urlsafe(24)
    ssh_lab.cluster(CLUSTER, workers=workers)  # the hosts the instances will be
    control_plane = ssh_lab.hosts["control-plane"]
    admin = json.loads(pc.kube.kubeconfig.read_text())
    import yaml

    (control_plane.dir / "admin.conf.src").write_text(yaml.safe_dump(admin))
    subprocess.run(
        [IP, "-n", control_plane.netns, "route", "add", pc.service_cidr,
         "via", str(ssh_lab.subnet[1])],
        check=True,
    )  # fmt: skip
    pc.kube.api("POST", "/apis/apps/v1/namespaces/kube-system/deployments", COREDNS)

    environ: dict[str, str] = {
        **moto_aws.env.environ,
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "SPARKUBE_NODE_ADDRESSES": ",".join(f"{k}={v}" for k, v in ssh_lab.overrides().items()),
        "SPARKUBE_SSH_USER": ssh_lab.user,
        "SPARKUBE_API_SERVER": pc.kube.server,
        "SPARKUBE_SKIP_ADDONS": "metrics-server",
        "SPARKUBE_SSH_BOOT_TIMEOUT": "300",  # bounded if the hosts never boot
        "SPARKUBE_POD_S3_ENDPOINT": pc.s3_endpoint,
        "SPARKUBE_JARS_REPOSITORY": pc.maven_url,
    }
    env = dataclasses.replace(moto_aws.env, environ=environ)
    home = Path(environ["SPARKUBE_HOME"])
    cdir = env.cluster_dir(CLUSTER)
    s3: Any = moto_aws.client("s3")

    def run(*args: str) -> CliResult:
        res = cli(*args, env=env)
        transcript.add(res.stdout, res.stderr)
        return res

    try:
        # ---- up: every phase, the hosts booting while it waits for them
        errors: list[BaseException] = []
        booter = _boot_when_keyed(ssh_lab, moto_aws, cdir / "id_ed25519.pub", errors)
        up = run("up", "--workers", str(workers), "--allow-cidr", CIDR, "--yes")
        booter.join(timeout=180)
        assert not errors, errors
        assert up.exit_code == 0, up.stderr[-4000:]
        for phase in ("infra", "nodes", "kubernetes", "addons"):
            assert f"✓ {phase}" in up.stderr, up.stderr[-3000:]
        assert f"{workers}/{workers} workers joined, {workers + 1}/{workers + 1} Ready" in up.stderr
        assert "Ready in" in up.stdout
        for private in (cdir / "id_ed25519", cdir / "kubeconfig"):
            assert private.stat().st_mode & 0o777 == 0o600, private
        # the S3 jars went into the cluster's bucket once, each checked; jobs fetch them there
        stocked = re.search(r"37 checked jars in s3://(\S+)/jars/ \(37 uploaded", up.stderr)
        assert stocked, up.stderr[-3000:]
        assert s3.list_objects_v2(Bucket=stocked[1], Prefix="jars/")["KeyCount"] == 37

        # ---- status: every phase done, every node running, a cost
        status = run("status", "--output", "json")
        assert status.exit_code == 0, status.stderr
        st = json.loads(status.stdout)
        assert st["phases_pending"] == [] and "addons" in st["phases_done"]
        assert len(st["nodes"]) == workers + 1
        assert all(n["state"] == "running" for n in st["nodes"])
        assert st["usd_per_hour"] > 0

        # ---- wordcount on the cluster: the same bytes as the local run and the reference
        (env.cwd / "book.txt").write_text(TEXT, encoding="utf-8")
        wc = run("wordcount", "book.txt", "--top", "3", "--output-dir", "remote")
        assert wc.exit_code == 0, wc.stderr[-4000:]
        assert f"Running on cluster {CLUSTER}" in wc.stderr
        counted = (env.cwd / "remote" / "wordcount.csv").read_text(encoding="utf-8")
        rows = [line.rsplit(",", 1) for line in counted.splitlines()[1:]]
        assert {w: int(c) for w, c in rows} == dict(reference_count([TEXT]))
        assert rows == sorted(rows, key=lambda r: (-int(r[1]), r[0]))
        assert "the" in wc.stdout  # the top-N table
        (driver,) = pc.kube.get(
            "/api/v1/namespaces/spark/pods?labelSelector=sparkube.io%2Frole%3Ddriver"
        )["items"]
        said = pc.kube.pod_logs("spark", driver["metadata"]["name"], "fetch-s3-jars")
        assert f"(37 from {pc.s3_endpoint.split('/')[2]})" in said, said

        # ---- submit: a user's script with an input, its result downloaded
        (env.cwd / "lines.py").write_text(APP)
        sub = run(
            "submit", "lines.py", "--input", "book.txt", "--executors", "1", "--output-dir", "out"
        )
        assert sub.exit_code == 0, sub.stderr[-4000:]
        parts = sorted((env.cwd / "out" / "lines").glob("part-*.csv"))
        assert [p.read_text() for p in parts] == [f"{TEXT.count(chr(10))}\n"], parts

        # ---- jobs: both, succeeded, from the cluster and the bucket
        listed = run("jobs", "--output", "json")
        assert listed.exit_code == 0, listed.stderr
        jobs = json.loads(listed.stdout)
        assert len(jobs) == 2 and {j["state"] for j in jobs} == {"Succeeded"}, jobs
        submitted = next(j for j in jobs if j["app"] == "lines.py")

        # ---- logs: the driver's own output
        logs = run("logs", submitted["job_id"])
        assert logs.exit_code == 0, logs.stderr
        assert f"journey app counted {TEXT.count(chr(10))} lines" in logs.stdout

        # ---- usage: what the cluster consumed, per namespace and per job, and the cost
        usage = run("usage", "--output", "json")
        assert usage.exit_code == 0, usage.stderr
        report = json.loads(usage.stdout)
        assert report["metrics"]["available"] is True
        assert {j["job_id"] for j in report["jobs"]} == {j["job_id"] for j in jobs}
        assert all(j["usd"] > 0 for j in report["jobs"]), report["jobs"]
        assert report["cost"]["usd_per_hour"] == pytest.approx(st["usd_per_hour"], abs=1e-4)
        # status and usage: one model over the same facts; so far, they agree up to what
        # the cluster costs between the two calls
        seen = datetime.now(UTC)
        again = json.loads(run("status", "--output", "json").stdout)
        now = json.loads(run("usage", "--since", "all", "--output", "json").stdout)
        drift = now["cost"]["usd_per_hour"] * (datetime.now(UTC) - seen).total_seconds() / 3600
        assert now["cost"]["cluster_total_usd"] == pytest.approx(
            again["usd_so_far"], abs=drift + 1e-4
        )
        assert now["cost"]["total_usd"] == pytest.approx(
            sum(now["cost"][k] for k in ("jobs_usd", "idle_usd", "control_plane_usd",
                                        "volumes_usd", "addresses_usd"))
        )  # fmt: skip

        # ---- dashboard: a page through the SSH tunnel, made with the opex RBAC
        page = _dashboard_page({**environ, "PYTHONPATH": os.getcwd()}, env.cwd, transcript)
        assert "cost model CHARGE_BACK" in page
        node_rows = re.search(r"<td>nodes</td><td>(\d+)</td>", page)
        assert node_rows and int(node_rows.group(1)) == workers + 1, page

        key_text = (cdir / "id_ed25519").read_text()
        kubeconfig = yaml.safe_load((cdir / "kubeconfig").read_text())
        logs_on_disk = [
            p.read_text(errors="replace")
            for p in home.rglob("*")
            if p.is_file() and p.name not in ("id_ed25519", "kubeconfig")
        ]

        # ---- down: nothing left
        down = run("down", "--yes")
        assert down.exit_code == 0, down.stderr[-3000:]
        assert "nothing tagged with it remains" in down.stdout
        ec2: Any = moto_aws.client("ec2")
        left = ec2.describe_instances(
            Filters=[{"Name": "tag:sparkube:cluster", "Values": [CLUSTER]}]
        )["Reservations"]
        assert all(i["State"]["Name"] == "terminated" for r in left for i in r["Instances"])
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []
        assert not cdir.exists()
    finally:
        _clean_cluster(pc)

    # ---- no secret in anything sparkube printed or logged
    secrets_seen = {
        "the cluster's private key": "".join(key_text.splitlines()[1:-1])[:64],
        "the admin client key": kubeconfig["users"][0]["user"]["client-key-data"][:64],
        "the AWS secret key": aws_secret,
        "the join token": "abcdef.0123456789abcdef",  # what the kubeadm shim hands out
    }
    everything = "\n".join(transcript.texts + logs_on_disk)
    for what, value in secrets_seen.items():
        assert value and value not in everything, f"{what} appears in sparkube's output"
    assert "PRIVATE KEY" not in everything
    assert not re.search(r"eyJ[\w-]{10,}\.[\w-]{10,}\.", everything), "a bearer token leaked"


def _clean_cluster(pc: ProcessCluster) -> None:
    """Leave the shared process cluster as the other tests expect it."""
    pc.kube.api(
        "DELETE", "/apis/apps/v1/namespaces/kube-system/deployments/coredns", ok_statuses=(404,)
    )
    pc.delete_namespace(addons.OPEX_NAMESPACE, wait=120)
    pc.delete_namespace(SPARK_NAMESPACE, wait=120)
