"""``sparkube usage``: what the cluster uses and costs, per namespace and per Spark job.

Sources, all read from the cluster and its bucket (so it works from any machine):

- CPU and memory used now per namespace: the metrics API (metrics-server);
- requested per namespace: the requests of the pods that hold resources (Pending or
  Running);
- per job: the records sparkube keeps in the bucket (start, end, executors and their
  size), costed by :mod:`sparkube.monitoring.cost`;
- prices: recorded in the cluster at ``up`` from the same source as ``plan`` (on-demand,
  or spot as launched); node lifetimes and capacity from the Node objects.

JSON schema (``--output json``), version 1::

    {"schema": 1, "cluster": str, "generated": ISO-8601, "since": ISO-8601,
     "metrics": {"available": bool, "message": str},
     "cost": {"usd_per_hour": float, "usd_so_far": float, "market": "on-demand"|"spot",
              "uptime_hours": float},
     "namespaces": [{"namespace": str, "cpu_used": float|null, "memory_used_bytes": int|null,
                     "cpu_requested": float, "memory_requested_bytes": int, "pods": int}],
     "jobs": [{"job_id": str, "app": str, "state": str, "started": str, "finished": str|null,
               "duration_seconds": float, "executors": int, "cpu_requested": float,
               "memory_requested_bytes": int, "core_hours": float, "gib_hours": float,
               "usd": float}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkube.monitoring.cost import PricedNode, cluster_cost, job_cost
from sparkube.spark.cluster import (
    DRIVER_CPU,
    ClusterConfig,
    ClusterJobs,
    JobRecord,
    Resources,
    parse_time,
)
from sparkube.spark.diagnose import parse_cpu, parse_memory

SCHEMA = 1
METRICS_WAIT_HINT = "metrics-server needs about a minute after it starts to report usage"


@dataclass
class NamespaceUsage:
    namespace: str
    cpu_used: float | None = None
    memory_used_bytes: int | None = None
    cpu_requested: float = 0.0
    memory_requested_bytes: int = 0
    pods: int = 0


@dataclass
class JobUsage:
    job_id: str
    app: str
    state: str
    started: str
    finished: str | None
    duration_seconds: float
    executors: int
    cpu_requested: float
    memory_requested_bytes: int
    core_hours: float
    gib_hours: float
    usd: float


@dataclass
class UsageReport:
    cluster: str
    generated: str
    since: str
    metrics_available: bool
    metrics_message: str
    usd_per_hour: float
    usd_so_far: float
    market: str
    uptime_hours: float
    namespaces: list[NamespaceUsage] = field(default_factory=list)
    jobs: list[JobUsage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "cluster": self.cluster,
            "generated": self.generated,
            "since": self.since,
            "metrics": {"available": self.metrics_available, "message": self.metrics_message},
            "cost": {
                "usd_per_hour": round(self.usd_per_hour, 6),
                "usd_so_far": round(self.usd_so_far, 6),
                "market": self.market,
                "uptime_hours": round(self.uptime_hours, 4),
            },
            "namespaces": [asdict(n) for n in self.namespaces],
            "jobs": [asdict(j) for j in self.jobs],
        }


def job_requests(record: JobRecord) -> tuple[float, int]:
    """Cores and bytes a job holds: its driver plus its executors (overhead included)."""
    res = Resources(record.executors, record.executor_cores or 1, record.executor_memory or "1g")
    cpu = parse_cpu(DRIVER_CPU) + record.executors * (record.executor_cores or 1)
    mib = res.pod_memory_mib(res.driver_memory) + record.executors * res.pod_memory_mib(
        res.executor_memory
    )
    return cpu, mib * 2**20


def priced_nodes(nodes: Sequence[Any], config: ClusterConfig) -> list[PricedNode]:
    """Node objects -> priced nodes: the control plane (tainted) is paid for but offers
    jobs nothing; workers at the worker price."""
    out = []
    for n in nodes:
        labels = n.metadata.labels or {}
        taints = (n.spec.taints if n.spec else None) or []
        control = "node-role.kubernetes.io/control-plane" in labels or any(
            t.effect == "NoSchedule" for t in taints
        )
        alloc = (n.status.allocatable if n.status else None) or {}
        created = n.metadata.creationTimestamp or datetime.now(UTC)
        out.append(
            PricedNode(
                name=n.metadata.name,
                usd_per_hour=config.control_plane_usd_per_hour
                if control
                else config.worker_usd_per_hour,
                cpu=0.0 if control else parse_cpu(alloc.get("cpu", "0")),
                memory=0 if control else parse_memory(alloc.get("memory", "0")),
                start=created,
            )
        )
    return out


def namespace_usage(client: Any) -> tuple[dict[str, NamespaceUsage], bool, str]:
    from lightkube.core.exceptions import ApiError
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.resources.core_v1 import Pod

    table: dict[str, NamespaceUsage] = {}
    for pod in client.list(Pod, namespace="*"):
        phase = pod.status.phase if pod.status else None
        if phase not in ("Pending", "Running"):
            continue
        ns = pod.metadata.namespace
        usage = table.setdefault(ns, NamespaceUsage(ns))
        usage.pods += 1
        for c in pod.spec.containers if pod.spec else []:
            req = (c.resources.requests if c.resources else None) or {}
            usage.cpu_requested += parse_cpu(req.get("cpu", "0"))
            usage.memory_requested_bytes += parse_memory(req.get("memory", "0"))
    pod_metrics = create_namespaced_resource(
        "metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=["get", "list", "global_list"]
    )
    try:
        items = list(client.list(pod_metrics, namespace="*"))
    except ApiError as exc:
        return (
            table,
            False,
            f"the metrics API is not ready ({exc.status.message}); {METRICS_WAIT_HINT}",
        )
    except Exception as exc:  # e.g. the APIService exists but its backend is down
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "404" in str(exc):
            return (
                table,
                False,
                (
                    "the metrics API is not installed (no metrics-server); run sparkube up to "
                    "finish the addons phase"
                ),
            )
        return table, False, f"the metrics API is not ready ({first}); {METRICS_WAIT_HINT}"
    for item in items:
        data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
        ns = data["metadata"]["namespace"]
        usage = table.setdefault(ns, NamespaceUsage(ns))
        cpu = sum(parse_cpu(c["usage"]["cpu"]) for c in data.get("containers") or [])
        mem = sum(parse_memory(c["usage"]["memory"]) for c in data.get("containers") or [])
        usage.cpu_used = (usage.cpu_used or 0.0) + cpu
        usage.memory_used_bytes = (usage.memory_used_bytes or 0) + mem
    for usage in table.values():
        if usage.cpu_used is None and usage.pods:
            usage.cpu_used, usage.memory_used_bytes = 0.0, 0
    return table, True, "metrics-server"


def build_report(api: ClusterJobs, *, since: timedelta, now: datetime | None = None) -> UsageReport:
    from lightkube.resources.core_v1 import Node

    now = now or datetime.now(UTC)
    config = api.config()
    nodes = priced_nodes(list(api.client.list(Node)), config)
    start = min((n.start for n in nodes), default=now)
    table, ok, message = namespace_usage(api.client)
    window_start = now - since
    jobs = []
    for rec in api.records():
        started = parse_time(rec.submitted)
        if started is None:
            continue
        ended = parse_time(rec.finished) or now
        if ended < window_start:
            continue
        cpu, mem = job_requests(rec)
        cost = job_cost(nodes, started, ended, cpu, mem)
        jobs.append(
            JobUsage(
                job_id=rec.job_id,
                app=rec.app,
                state=rec.state,
                started=rec.submitted,
                finished=rec.finished,
                duration_seconds=round(cost.hours * 3600, 1),
                executors=rec.executors,
                cpu_requested=cpu,
                memory_requested_bytes=mem,
                core_hours=round(cost.core_hours, 6),
                gib_hours=round(cost.gib_hours, 6),
                usd=round(cost.usd, 6),
            )
        )
    return UsageReport(
        cluster=config.cluster,
        generated=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        since=window_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        metrics_available=ok,
        metrics_message=message,
        usd_per_hour=sum(n.usd_per_hour for n in nodes),
        usd_so_far=cluster_cost(nodes, start, now),
        market="spot" if config.spot else "on-demand",
        uptime_hours=(now - start).total_seconds() / 3600,
        namespaces=sorted(table.values(), key=lambda u: u.namespace),
        jobs=jobs,
    )


def requested_over_time(report: UsageReport) -> tuple[list[datetime], list[float]]:
    """CPU cores held by sparkube's Spark jobs (namespace ``spark``) over the window, as a
    step function of the job records: each job holds its request from start to end."""
    window_start = parse_time(report.since)
    end = parse_time(report.generated)
    assert window_start is not None and end is not None
    edges: list[tuple[datetime, float]] = []
    for job in report.jobs:
        started = parse_time(job.started)
        finished = parse_time(job.finished)
        if started is None:
            continue
        edges.append((max(started, window_start), job.cpu_requested))
        if finished is not None and finished < end:  # a running job holds on to the end
            edges.append((finished, -job.cpu_requested))
    times, values, level = [window_start], [0.0], 0.0
    for at, delta in sorted(edges):
        times.append(at)
        values.append(level)
        level += delta
        times.append(at)
        values.append(max(0.0, level))
    times.append(end)
    values.append(max(0.0, level))
    return times, values


def write_chart(report: UsageReport, path: Any) -> None:
    """A PNG with three panels: the CPU sparkube's jobs held in namespace ``spark`` over
    the window, requested vs used CPU per namespace now, and the cost of each job."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over, now, cost) = plt.subplots(1, 3, figsize=(15, 4.2))
    times, values = requested_over_time(report)
    over.plot(times, values, drawstyle="steps-post", color="tab:blue")
    over.fill_between(times, values, step="post", alpha=0.3)
    over.set_ylabel("CPU cores requested")
    over.set_title(f"spark: jobs' CPU since {report.since[:16].replace('T', ' ')}")
    fig.autofmt_xdate()
    names = [n.namespace for n in report.namespaces]
    xs = range(len(names))
    now.bar([x - 0.2 for x in xs], [n.cpu_requested for n in report.namespaces], 0.4,
            label="requested")  # fmt: skip
    now.bar([x + 0.2 for x in xs], [n.cpu_used or 0 for n in report.namespaces], 0.4,
            label="used")  # fmt: skip
    now.set_xticks(list(xs), names, rotation=30, ha="right")
    now.set_ylabel("CPU cores")
    now.set_title(f"Cluster {report.cluster}: CPU per namespace now")
    now.legend()
    jobs = report.jobs[:20][::-1]
    cost.barh([j.job_id for j in jobs], [j.usd for j in jobs], color="tab:green")
    cost.set_xlabel("USD")
    cost.set_title(f"Cost per Spark job ({report.market} prices)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
