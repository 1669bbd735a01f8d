"""Which jobs a spot interruption (or a rebalance recommendation, or scheduled
maintenance) reached: told on the Job, so ``jobs`` and a watching ``submit`` can say it.

With spot workers, aws-node-termination-handler taints a node before it acts on it:
``aws-node-termination-handler/spot-itn`` on EC2's two-minute notice (then it drains the
node), ``.../rebalance-recommendation`` (it only cordons), ``.../scheduled-maintenance``
(it drains). Each controller cycle looks for those taints on the workers; every
sparkube job with a pod that has not ended on such a node gets an entry in its Job's
annotation :data:`ANNOTATION`, a JSON list of
``{"node", "kind", "at", "executors", "driver"}``: one entry per (node, kind), its time
and its pods on the node as first seen, never removed. Pure functions over the API's
JSON; the loop writes what :func:`changes` returns.

Limit: a job is told only if a cycle sees the taint while its pods are still listed.
The handler taints before it drains and an evicted executor stays listed while it
decommissions (its grace period), so a watch of the nodes wakes the loop in time; a
pod killed at once would be missed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

Json = Mapping[str, Any]

#: On a Job: its interruptions (a JSON list, see the module's text).
ANNOTATION = "sparkube.io/interruptions"
TAINT_PREFIX = "aws-node-termination-handler/"
#: The handler's taint (after its prefix) -> the kind recorded. Another taint of the
#: handler (queue mode's ``asg-lifecycle-termination``, ``sqs-termination``) is
#: recorded under its own name.
KINDS = {
    "spot-itn": "spot",
    "rebalance-recommendation": "rebalance",
    "scheduled-maintenance": "maintenance",
}
#: Kinds where the handler only cordons the node: nothing of the job is evicted.
CORDON_ONLY = frozenset({"rebalance"})
JOB_LABEL = "sparkube.io/job"
ROLE_LABEL = "sparkube.io/role"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True)
class Interruption:
    """One node's interruption as a job saw it."""

    node: str
    kind: str  # spot, rebalance, maintenance (or another handler taint's name)
    at: str  # ISO 8601 UTC: when the controller first saw it
    executors: int = 0  # the job's executor pods on the node then
    driver: bool = False  # the job's driver was on the node

    @property
    def key(self) -> tuple[str, str]:
        return (self.node, self.kind)

    @property
    def evicts(self) -> bool:
        """The handler drains the node (not a mere cordon)."""
        return self.kind not in CORDON_ONLY

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse(value: Any) -> list[Interruption]:
    """The entries of an annotation's text or a record's list; what is malformed is
    left out (an older sparkube's record has none: [])."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if not isinstance(item, Mapping):
            continue
        node, kind = item.get("node"), item.get("kind")
        executors = item.get("executors", 0)
        if not isinstance(node, str) or not node or not isinstance(kind, str) or not kind:
            continue
        if isinstance(executors, bool) or not isinstance(executors, int):
            executors = 0
        out.append(
            Interruption(node, kind, str(item.get("at") or ""), max(0, executors),
                         item.get("driver") is True)
        )  # fmt: skip
    return out


def dumps(entries: Iterable[Interruption]) -> str:
    return json.dumps([e.to_json() for e in entries], separators=(",", ":"))


def of_job(job: Json | None) -> list[Interruption]:
    """The interruptions a Job carries."""
    ann = ((job or {}).get("metadata") or {}).get("annotations") or {}
    return parse(ann.get(ANNOTATION))


def node_kinds(node: Json) -> list[str]:
    """The kinds of interruption the handler's taints on a worker say ([]: none, or the
    control plane)."""
    meta = node.get("metadata") or {}
    if CONTROL_PLANE_LABEL in (meta.get("labels") or {}):
        return []
    kinds = []
    for taint in (node.get("spec") or {}).get("taints") or []:
        key = str(taint.get("key") or "")
        if key.startswith(TAINT_PREFIX) and len(key) > len(TAINT_PREFIX):
            kind = KINDS.get(key[len(TAINT_PREFIX) :], key[len(TAINT_PREFIX) :])
            if kind not in kinds:
                kinds.append(kind)
    return kinds


def _ended(obj: Json) -> bool:
    return (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _job_over(job: Json) -> bool:
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return True
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _iso(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def changes(
    jobs: Iterable[Json], pods: Iterable[Json], nodes: Iterable[Json], now: float
) -> dict[str, list[Interruption]]:
    """For each Job whose interruptions grow this cycle, its whole new list (what it
    carries, plus an entry per interrupted node and kind not told yet). ``jobs``: the
    sparkube Jobs; ``pods``: the pods that have not ended (any namespace: a pod counts
    only in its Job's namespace); ``nodes``: every node; ``now``: epoch seconds."""
    interrupted = {}
    for node in nodes:
        kinds = node_kinds(node)
        if kinds:
            interrupted[str((node.get("metadata") or {}).get("name"))] = kinds
    if not interrupted:
        return {}
    # (namespace, job) -> node -> [driver there, executors there]
    on_nodes: dict[tuple[str, str], dict[str, list[int]]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        job = labels.get(JOB_LABEL)
        where = str((pod.get("spec") or {}).get("nodeName") or "")
        if not job or where not in interrupted or _ended(pod):
            continue
        seen = on_nodes.setdefault((str(meta.get("namespace") or ""), str(job)), {})
        counts = seen.setdefault(where, [0, 0])
        if labels.get(ROLE_LABEL) == "driver" or labels.get("spark-role") == "driver":
            counts[0] = 1
        elif labels.get("spark-role") == "executor":
            counts[1] += 1
    out: dict[str, list[Interruption]] = {}
    for job in jobs:
        meta = job.get("metadata") or {}
        name = str(meta.get("name") or "")
        pods_of = on_nodes.get((str(meta.get("namespace") or ""), name))
        if not pods_of or _job_over(job):
            continue
        told = of_job(job)
        keys = {e.key for e in told}
        new = [
            Interruption(node, kind, _iso(now), counts[1], bool(counts[0]))
            for node, counts in sorted(pods_of.items())
            for kind in interrupted[node]
            if (node, kind) not in keys
        ]
        if new:
            out[name] = told + new
    return out


# ---------------------------------------------------------------------- what is said


def _executors(count: int) -> str:
    return f"{count} executor{'s' if count != 1 else ''}"


def headline(entry: Interruption) -> str:
    if entry.kind == "rebalance":
        return f"{entry.node} cordoned (rebalance recommendation)"
    return f"{entry.node} interrupted ({entry.kind})"


def describe(entry: Interruption, decommission: str) -> str:
    """What ``jobs`` says of an interruption, after the fact: ``worker-3 interrupted
    (spot): 2 executors decommissioned`` (``lost`` when the job did not decommission
    its executors: ``decommission`` is not ``on``)."""
    if not entry.evicts:
        return headline(entry)
    what = []
    if entry.executors:
        went = "decommissioned" if decommission == "on" else "lost"
        what.append(f"{_executors(entry.executors)} {went}")
    if entry.driver:
        what.append("its driver evicted")
    return headline(entry) + (f": {', '.join(what)}" if what else "")


def live(entry: Interruption, decommission: str) -> str:
    """What a watching ``submit`` prints when the job's Job gains the entry."""
    if not entry.evicts:
        return f"{headline(entry)}: no new pod goes there, the job's pods stay"
    what = []
    if entry.executors and decommission == "on":
        one = entry.executors == 1
        what.append(
            f"{_executors(entry.executors)} decommissioning, "
            f"{'its' if one else 'their'} blocks moving to the other executors and the bucket"
        )
    elif entry.executors:
        its = "its" if entry.executors == 1 else "their"
        what.append(f"{_executors(entry.executors)} lost: Spark recomputes {its} shuffle output")
    if entry.driver:
        what.append("the driver is evicted")
    return headline(entry) + (f": {'; '.join(what)}" if what else "")
