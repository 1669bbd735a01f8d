"""Benchmark: what a spot interruption mid-shuffle costs a job, with and without Spark's
decommissioning.

The cluster is a real-node bed cluster like the tests' (tests/fixtures/bedcluster.py):
an in-process moto server on loopback, ``sparkube up --spot --workers 2 --max-workers
3`` against it (one on-demand worker, where drivers run, and one spot worker), every
instance booted as a machine of the node bed, aws-node-termination-handler on the spot
worker. The job (tests/fixtures/spotrun.py) is a WordCount of 240,000 words with two
executors whose reduce tasks take 25 s each. In the same run:

1. ``clean_s``: the job, nothing interrupted (the baseline);
2. ``interrupted_s``: the job again; once a reduce task runs on the spot worker's
   executor, the bed's metadata service gives that worker EC2's two-minute notice. The
   handler drains the node, Spark decommissions the executor (its blocks migrate), EC2
   reclaims the instance and Auto Scaling replaces it;
3. ``interrupted_no_decommission_s``: the same with ``spark.decommission.enabled=false``
   (the executor dies with its shuffle files; Spark recomputes them).

Each job's output is checked against the reference byte for byte. The last line is one
JSON object with the three times, ``ratio`` (interrupted over clean) and
``ratio_no_decommission``. No timed assertions: only a wrong result or a step that never
happens makes the exit code non-zero. Everything is removed at the end, also on Ctrl-C.

    sudo .venv/bin/python bench/spot.py
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures import spotrun  # noqa: E402
from tests.fixtures.bedcluster import (  # noqa: E402
    approve_serving_csrs,
    open_lab,
    start_bed_cluster,
)
from tests.fixtures.moto_server import serve_moto  # noqa: E402
from tests.fixtures.nodebed import approver_missing  # noqa: E402
from tests.fixtures.nodebed import problem as bed_problem  # noqa: E402


def main() -> int:
    found = bed_problem()
    if found:
        print(f"bench/spot.py: {found}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds like Ctrl-C
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    print(f"{os.cpu_count()} CPUs; 1 on-demand + 1 spot worker, two executors")
    ok = True
    line: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sparkube-bench-spot-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "no-maven").mkdir()
        (tmp / "cluster").mkdir()
        stop = threading.Event()
        try:
            with (
                serve_moto(tmp / "no-maven") as moto_url,
                start_bed_cluster(moto_url, tmp / "cluster", name=spotrun.CLUSTER,
                                  max_workers=3, extra=["--spot"]) as c,
            ):  # fmt: skip
                print(f"sparkube up --spot of 1+2 real nodes in {c.up_seconds:.1f} s", flush=True)
                if approver_missing():  # (see approve_serving_csrs)
                    threading.Thread(
                        target=approve_serving_csrs, args=(c, stop), daemon=True
                    ).start()
                runs: dict[str, dict[str, Any]] = {}
                for name, conf, interrupt in (
                    ("clean", [], False),
                    ("interrupted", [], True),
                    ("interrupted_no_decommission",
                     ["--conf", "spark.decommission.enabled=false"], True),
                ):  # fmt: skip
                    (tmp / name).mkdir()
                    with open_lab(c, tmp / name) as lab:
                        got = spotrun.run_job(lab, conf, interrupt=interrupt)
                    runs[name] = got
                    times = {k: v for k, v in got.items() if k.endswith("_s")}
                    print(f"{name}: {json.dumps(times)}", flush=True)
                    if interrupt:  # the replacement joins before the next run
                        (new,) = got["new"]
                        spotrun.wait_ready(c, new, "spot", 400)
                stop.set()  # (the approver stops before the cluster goes)
                clean = runs["clean"]["job_s"]
                line = {
                    "clean_s": clean,
                    "interrupted_s": runs["interrupted"]["job_s"],
                    "interrupted_no_decommission_s": runs["interrupted_no_decommission"]["job_s"],
                    "ratio": round(runs["interrupted"]["job_s"] / clean, 2),
                    "ratio_no_decommission": round(
                        runs["interrupted_no_decommission"]["job_s"] / clean, 2
                    ),
                    "drain_s": runs["interrupted"]["drain_s"],
                    "drain_no_decommission_s": runs["interrupted_no_decommission"]["drain_s"],
                }
        except Exception as exc:
            ok = False
            print(f"bench/spot.py failed: {exc!r}", file=sys.stderr)
        finally:
            stop.set()
    if line:
        print(json.dumps(line))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
