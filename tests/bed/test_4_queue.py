"""Jobs queue on the shared real-node cluster: the cluster's sparkube controller (a pod
on the control plane, from sparkube's own code in the bucket) admits a job only when its
driver and all its executors fit at once.

The bed's two workers have 2 CPUs each (this host's); a default WordCount asks for a
0.5 CPU driver and one 1-CPU executor per worker, so two at once do not fit: one runs,
the other waits as ``Queued`` (``jobs`` says where in line and what for), then starts
when the first one's pods end. Both give exactly the reference counts.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from typing import Any

from sparkube.controller import admission
from tests.fixtures.bedcluster import BedLab
from tests.fixtures.common import CliResult
from tests.fixtures.nodebed import REAL_NODES
from tests.wordref import reference_count

pytestmark = REAL_NODES


def _jobs(lab: BedLab) -> list[dict[str, Any]]:
    listed = lab.run("jobs", "--output", "json")
    assert listed.exit_code == 0, listed.stderr
    return list(json.loads(listed.stdout))


def test_two_jobs_at_once_one_queues_both_exact(bed_lab: BedLab) -> None:
    lab = bed_lab
    texts = {
        "one": "alpha beta beta gamma gamma gamma\n" * 2000,
        "two": "delta epsilon epsilon zeta zeta zeta\n" * 3000,
    }
    for name, text in texts.items():
        (lab.env.cwd / f"{name}.txt").write_text(text, encoding="utf-8")
    known = {r["job_id"] for r in _jobs(lab)}

    def run(name: str) -> CliResult:
        return lab.run("wordcount", f"{name}.txt", "--top", "3", "--output-dir", name)

    seen: dict[str, set[str]] = {}
    said: dict[str, set[str]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, name) for name in texts}
        deadline = time.monotonic() + 400
        while not all(f.done() for f in futures.values()) and time.monotonic() < deadline:
            for record in _jobs(lab):
                if record["job_id"] not in known:
                    seen.setdefault(record["job_id"], set()).add(record["state"])
                    if record["state"] == "Queued":
                        said.setdefault(record["job_id"], set()).add(record.get("message") or "")
            time.sleep(1)
        results = {name: f.result(timeout=60) for name, f in futures.items()}

    for name, res in results.items():
        assert res.exit_code == 0, res.stderr[-3000:]
        rows = (lab.env.cwd / name / "wordcount.csv").read_text().splitlines()[1:]
        got = {w: int(c) for w, c in (row.rsplit(",", 1) for row in rows)}
        assert got == dict(reference_count([texts[name]]))
    assert len(seen) == 2, seen
    # Every job is Queued until the controller has looked at it; only one was told to
    # wait in line (the other was admitted at once).
    queued = [job for job, ms in said.items() if any(" in line, waits for " in m for m in ms)]
    assert len(queued) == 1, said
    assert any(m.startswith("1st in line, waits for ") for m in said[queued[0]]), said
    print("queued job said:", sorted(said[queued[0]]))
    # the controller let the second in only once the first had ended
    (second,) = queued
    (first,) = [job for job in seen if job != second]
    ann = {
        job: lab.cluster.kubectl_json(f"-n spark get job {job}")["metadata"]["annotations"]
        for job in (first, second)
    }
    assert ann[first][admission.ADMITTED] <= ann[second][admission.ADMITTED]
    ended = {r["job_id"]: r for r in _jobs(lab)}
    assert ended[first]["finished"] <= ended[second]["started"], (ended[first], ended[second])
    # the wait is on record: submitted, then admitted, then its driver started
    assert ended[second]["queued_seconds"] > 0, ended[second]
    assert ended[second]["admitted"] <= ended[second]["started"]
    table = lab.run("jobs").stdout
    assert "queued" in table.splitlines()[0], table


def test_the_controller_holds_its_lease_and_says_what_it_did(bed_lab: BedLab) -> None:
    """Runs after the queue test: the controller's own log names the jobs it admitted
    and the one it queued."""
    lab = bed_lab
    lease = lab.cluster.kubectl_json("-n sparkube-system get lease sparkube-controller")
    (pod,) = lab.cluster.kubectl_json(
        "-n sparkube-system get pods -l app.kubernetes.io/name=sparkube-controller"
    )["items"]
    assert lease["spec"]["holderIdentity"] == pod["metadata"]["name"]
    log = lab.kubectl(f"-n sparkube-system logs {pod['metadata']['name']}").stdout
    assert "admitted job " in log and " queued, position 1: waits for " in log, log[-3000:]
