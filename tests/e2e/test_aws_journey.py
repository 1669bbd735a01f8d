"""End to end on real AWS: up -> nodes Ready -> Spark RBAC -> down, nothing left.

Opt-in only: runs with ``SPARKUBE_E2E_AWS=1`` and real credentials in the standard AWS
chain, and costs money (2 x t3.medium for ~15 minutes, about $0.03; the cluster gets a
1-hour TTL so a crashed run still stops billing). Select it with ``-m e2e``; the default
test command deselects it. Set ``SPARKUBE_E2E_REGION`` to choose the region.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkube.env import Environment
from tests.fixtures.common import CliResult

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SPARKUBE_E2E_AWS") != "1",
        reason="real-AWS journey: set SPARKUBE_E2E_AWS=1 with real credentials to run",
    ),
]


def test_up_kubernetes_ready_then_down_leaves_nothing(
    cli: Callable[..., CliResult], sparkube_env: Environment
) -> None:
    region = os.environ.get("SPARKUBE_E2E_REGION", "us-east-1")
    name = f"e2e-{secrets.token_hex(3)}"
    passthrough = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    # sparkube_env gives the test its own HOME: keep the operator's AWS profile files.
    real_aws = Path(os.environ.get("HOME", str(Path.home()))) / ".aws"
    passthrough.setdefault("AWS_CONFIG_FILE", str(real_aws / "config"))
    passthrough.setdefault("AWS_SHARED_CREDENTIALS_FILE", str(real_aws / "credentials"))
    env = dataclasses.replace(
        sparkube_env, environ={**sparkube_env.environ, **passthrough}
    )  # the operator's real credentials; the public IP is detected for real here
    args = ("-c", name, "--region", region)
    try:
        up = cli("up", *args, "--workers", "1", "--ttl", "1h", "--yes", env=env)
        assert up.exit_code == 0, up.stderr

        status = cli("status", *args, "-o", "json", env=env)
        assert status.exit_code == 0, status.stderr
        done = set(json.loads(status.stdout)["phases_done"])
        assert done >= {"infra", "nodes", "kubernetes", "addons"}, done

        nodes = cli("ssh", *args, "--", "sudo", "kubectl", "--kubeconfig",
                    "/etc/kubernetes/admin.conf", "get", "nodes", "--no-headers",
                    env=env)  # fmt: skip
        assert nodes.exit_code == 0, nodes.stderr
        rbac = cli("ssh", *args, "--", "sudo", "kubectl", "--kubeconfig",
                   "/etc/kubernetes/admin.conf", "auth", "can-i", "create", "pods", "-n",
                   "spark", "--as=system:serviceaccount:spark:spark", env=env)  # fmt: skip
        assert rbac.stdout.strip() == "yes", rbac.stderr
        assert nodes.exit_code == 0, nodes.stderr
        assert nodes.stdout.count(" Ready") == 2, nodes.stdout

        again = cli("up", *args, "--yes", env=env)  # resume on a complete cluster: no-op
        assert again.exit_code == 0, again.stderr
    finally:
        down = cli("down", *args, "--yes", env=env)
    assert down.exit_code == 0, down.stderr
    listed = cli("ls", "--region", region, "-o", "json", env=env)
    assert name not in listed.stdout
