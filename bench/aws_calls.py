"""AWS API calls made by `up --until infra` and `down`, by operation, for N workers.

Runs the real CLI in-process against a moto server on loopback and counts every call
with a botocore hook. Target: calls(50)/calls(1) <= 1.1 — the number of calls does not
grow with the number of workers (one RunInstances per role, one filtered
DescribeInstances per poll, one TerminateInstances). The counts are deterministic
against moto, so tests/integration/test_aws_calls.py asserts the same property (1 vs 5
workers: equal calls, operation by operation); this script prints the table for larger
clusters.

    python bench/aws_calls.py [N ...]      # default: 1 10 50
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moto.server import ThreadedMotoServer

from sparkube.aws.session import CallCounter, observe_calls
from sparkube.cli.app import run
from sparkube.env import Environment
from tests.fixtures.moto_server import REGION, moto_environ, seed_ubuntu


def _env(url: str, home: Path) -> Environment:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPARKUBE_"))}
    environ.update(HOME=str(home), SPARKUBE_HOME=str(home / ".sparkube"), **moto_environ(url))
    return Environment(environ=environ, cwd=home, interactive=False)


def _run(env: Environment, *args: str) -> CallCounter:
    counter = CallCounter()
    out, err = io.StringIO(), io.StringIO()
    with observe_calls(counter):
        code = run(list(args), env=env, stdout=out, stderr=err)
    if code != 0:
        raise SystemExit(f"sparkube {' '.join(args)} failed ({code}):\n{err.getvalue()}")
    return counter


def main(sizes: list[int]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    results: dict[int, tuple[CallCounter, CallCounter]] = {}
    try:
        for n in sizes:
            reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, timeout=10).read()
            seed_ubuntu(url, REGION)
            with tempfile.TemporaryDirectory() as tmp:
                env = _env(url, Path(tmp))
                up = _run(
                    env,
                    "up",
                    "--until",
                    "infra",
                    "--workers",
                    str(n),
                    "--allow-cidr",
                    "203.0.113.7/32",
                )
                down = _run(env, "down", "--yes")
            results[n] = (up, down)
    finally:
        server.stop()

    ops = sorted({op for up, down in results.values() for op in (*up.calls, *down.calls)})
    width = max(len(op) for op in ops)
    header = "".join(f"{f'up N={n}':>10}{f'down N={n}':>12}" for n in sizes)
    print(f"{'operation':<{width}}{header}")
    for op in ops:
        row = "".join(
            f"{results[n][0].calls.get(op, 0):>10}{results[n][1].calls.get(op, 0):>12}"
            for n in sizes
        )
        print(f"{op:<{width}}{row}")
    totals = "".join(f"{results[n][0].total:>10}{results[n][1].total:>12}" for n in sizes)
    print(f"{'total':<{width}}{totals}")
    first, last = min(sizes), max(sizes)
    up_ratio = results[last][0].total / results[first][0].total
    down_ratio = results[last][1].total / results[first][1].total
    both = (results[last][0].total + results[last][1].total) / (
        results[first][0].total + results[first][1].total
    )
    print(
        f"\nratio calls({last})/calls({first}): up {up_ratio:.2f}, down {down_ratio:.2f}, "
        f"up+down {both:.2f} (target <= 1.1)"
    )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1, 10, 50])
