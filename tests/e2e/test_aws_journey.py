"""End to end on real AWS: the journey of tests/bed/test_3_journey.py, for real.

up (1 control plane + 2 t3.medium workers, TTL 1 h) → nodes Ready, Spark RBAC → wordcount
on the bundled sample and on a larger input already in S3 → usage → one dashboard page
through the SSH tunnel → down → nothing tagged with the cluster remains. ``down`` runs
in a ``finally``; the TTL stops the instances even if the test process dies.

Opt-in only: runs with ``SPARKUBE_E2E_AWS=1`` and real credentials in the standard AWS
chain (the policy in docs/iam-policy.json is enough), and Java is not needed locally.
It costs money: three t3.medium for about 20 minutes with their volumes and public IPv4
addresses, about $0.05 in us-east-1, plus cents of S3 requests. Run it with

    SPARKUBE_E2E_AWS=1 .venv/bin/python -m pytest -m e2e tests/e2e -s

``SPARKUBE_E2E_REGION`` chooses the region (us-east-1), ``SPARKUBE_E2E_MB`` the size of
the S3 input (100 MB), ``SPARKUBE_E2E_REPORT`` where the per-step durations go as JSON
(default: the test's temporary folder; the path is printed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sparkube.env import Environment
from tests.fixtures.common import CliResult, start_dashboard
from tests.wordref import generate_text, reference_count

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SPARKUBE_E2E_AWS") != "1",
        reason="real-AWS journey: set SPARKUBE_E2E_AWS=1 with real credentials to run",
    ),
]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "genesis-kjv.txt"
PHASE_LINE = re.compile(r"^✓ (\w+)\s.*\s((?:\d+:)?\d+:\d\d)$")


def _seconds(clock: str) -> int:
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


def _counts(csv_text: str) -> dict[str, int]:
    rows = [line.rsplit(",", 1) for line in csv_text.splitlines()[1:]]
    return {word: int(count) for word, count in rows}


def _dashboard_page(environ: dict[str, str], cwd: Path, args: tuple[str, ...]) -> str:
    """``sparkube dashboard --no-browser`` in its own process, one page through it."""
    proc, url = start_dashboard({**environ, "PYTHONPATH": str(REPO)}, cwd, *args)
    try:
        assert url.startswith("http://127.0.0.1:"), (url, proc.poll())
        deadline = time.monotonic() + 300  # the image may still be pulling
        while True:
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    return str(resp.read().decode(errors="replace"))
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_the_journey_on_aws(
    cli: Callable[..., CliResult], sparkube_env: Environment, tmp_path: Path
) -> None:
    region = os.environ.get("SPARKUBE_E2E_REGION", "us-east-1")
    megabytes = int(os.environ.get("SPARKUBE_E2E_MB", "100"))
    report = Path(os.environ.get("SPARKUBE_E2E_REPORT", str(tmp_path / "e2e-durations.json")))
    name = f"e2e-{secrets.token_hex(3)}"
    passthrough = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    # sparkube_env gives the test its own HOME: keep the operator's AWS profile files.
    real_aws = Path(os.environ.get("HOME", str(Path.home()))) / ".aws"
    passthrough.setdefault("AWS_CONFIG_FILE", str(real_aws / "config"))
    passthrough.setdefault("AWS_SHARED_CREDENTIALS_FILE", str(real_aws / "credentials"))
    environ = {**sparkube_env.environ, **passthrough}
    environ.pop("SPARKUBE_DETECT_IP", None)  # up finds this machine's public IP for real
    env = dataclasses.replace(sparkube_env, environ=environ)  # real credentials, real IP
    args = ("-c", name, "--region", region)
    durations: dict[str, float] = {}

    @contextmanager
    def step(what: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            durations[what] = round(time.monotonic() - start, 1)

    def sparkube(*argv: str) -> CliResult:
        return cli(*argv, *args, env=env)

    try:
        with step("up"):
            up = sparkube("up", "--workers", "2", "--ttl", "1h", "--yes")
        assert up.exit_code == 0, up.stderr
        for line in up.stderr.splitlines():
            if m := PHASE_LINE.match(line.strip()):
                durations[f"up.{m.group(1)}"] = _seconds(m.group(2))

        status = sparkube("status", "-o", "json")
        assert status.exit_code == 0, status.stderr
        st = json.loads(status.stdout)
        assert set(st["phases_done"]) >= {"infra", "nodes", "kubernetes", "addons"}
        assert len(st["nodes"]) == 3 and all(n["state"] == "running" for n in st["nodes"])

        kubectl = ("--", "sudo", "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")
        nodes = sparkube("ssh", *kubectl, "get", "nodes", "--no-headers")
        assert nodes.exit_code == 0, nodes.stderr
        assert nodes.stdout.count(" Ready") == 3, nodes.stdout
        rbac = sparkube("ssh", *kubectl, "auth", "can-i", "create", "pods", "-n", "spark",
                        "--as=system:serviceaccount:spark:spark")  # fmt: skip
        assert rbac.stdout.strip() == "yes", rbac.stderr

        # the bundled sample, uploaded by sparkube
        with step("wordcount.sample"):
            wc = sparkube("wordcount", str(SAMPLE), "--output-dir", str(tmp_path / "sample"))
        assert wc.exit_code == 0, wc.stderr
        counted = _counts((tmp_path / "sample" / "wordcount.csv").read_text(encoding="utf-8"))
        assert counted == dict(reference_count([SAMPLE.read_text(encoding="utf-8")]))

        # a larger input already in the cluster's bucket, read with s3a://
        import boto3

        bucket = st["bucket"]
        text = generate_text(megabytes * 1024 * 1024 // 7)
        key = f"e2e/generated-{megabytes}mb.txt"
        boto3.Session(region_name=region).client("s3").put_object(
            Bucket=bucket, Key=key, Body=text.encode()
        )
        with step(f"wordcount.s3.{megabytes}mb"):
            big = sparkube(
                "wordcount", f"s3a://{bucket}/{key}", "--output-dir", str(tmp_path / "big")
            )
        assert big.exit_code == 0, big.stderr
        counted = _counts((tmp_path / "big" / "wordcount.csv").read_text(encoding="utf-8"))
        assert counted == dict(reference_count([text]))

        jobs = sparkube("jobs", "-o", "json")
        assert jobs.exit_code == 0, jobs.stderr
        listed: list[dict[str, Any]] = json.loads(jobs.stdout)
        assert len(listed) == 2 and {j["state"] for j in listed} == {"Succeeded"}, listed

        usage = sparkube("usage", "-o", "json")
        assert usage.exit_code == 0, usage.stderr
        used = json.loads(usage.stdout)
        assert used["metrics"]["available"] is True
        assert {j["job_id"] for j in used["jobs"]} == {j["job_id"] for j in listed}

        with step("dashboard.first_page"):
            page = _dashboard_page(environ, env.cwd, args)
        assert "<html" in page.lower(), page[:500]

        again = sparkube("up", "--yes")  # resume on a complete cluster: nothing to do
        assert again.exit_code == 0, again.stderr
    finally:
        with step("down"):
            down = sparkube("down", "--yes")
        report.write_text(json.dumps(durations, indent=2) + "\n")
        print(f"per-step durations (s): {report}")
    assert down.exit_code == 0, down.stderr
    assert "nothing tagged with it remains" in down.stdout
    listed_after = cli("ls", "--region", region, "-o", "json", env=env)
    assert name not in listed_after.stdout
