"""``sparkube usage``: what the cluster costs and uses — per Spark job, idle, control
plane, volumes and addresses over a window, from the one cost model
(:mod:`sparkube.cost.model`) over the cluster's ledger; and CPU and memory per namespace
now (metrics-server) when the cluster is reachable. Reads only.

JSON schema (``--output json``), version 2::

    {"schema": 2, "cluster": str, "generated": ISO-8601, "since": ISO-8601,
     "exact": bool, "unknown": [str], "notes": [str],
     "metrics": {"available": bool, "message": str},
     "cost": {"jobs_usd", "idle_usd", "control_plane_usd", "volumes_usd",
              "addresses_usd", "total_usd": float,
              "cluster_total_usd": float,   # since the cluster's first fact (= status)
              "usd_per_hour": float, "per_hour": {"instances", "volumes", "addresses"}},
     "instances": [{"instance_id", "name", "role", "instance_type", "market",
                    "hours", "usd", "exact",
                    "on_demand_usd": float | null}],  # spot: at on-demand prices
     "namespaces": [{"namespace", "cpu_used", "memory_used_bytes", "cpu_requested",
                     "memory_requested_bytes", "pods"}],
     "jobs": [{"job_id", "app", "state", "started", "finished", "pods",
               "core_hours", "gib_hours", "usd", "exact",
               "on_spot": bool,     # a spot worker ran while it did
               "spot_saved_usd": float | null}],  # null: not on_spot, or unknown
     "scaling": {"grew", "shrank": int, "added": [instance id], "added_hours",
                 "added_usd", "worker_hours", "workers_usd": float, "peak_workers": int,
                 "fixed_usd", "saved_usd": float | null, "queued_jobs": int,
                 "queued_seconds": float, "exact": bool},
     "spot": {"worker_hours", "usd": float, "on_demand_usd", "saved_usd": float | null,
              "exact": bool, "unknown": [str]} | null}   # null: no spot instance ran

Money is in US dollars, unrounded in JSON (the text rounds); ``exact`` false means some
price is unknown (listed in ``unknown``) and every total is a lower bound. ``spot``:
what the spot instances that ran in the window cost, what the same instances would
have cost on-demand, and the difference (``saved_usd``, null when a price it needs is
unknown; ``spot.unknown`` says which; the totals do not depend on it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkube.cost import model
from sparkube.cost.ledger import Ledger, iso
from sparkube.spark.diagnose import parse_cpu, parse_memory

SCHEMA = 2
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
class UsageReport:
    ledger: Ledger
    window: model.Breakdown
    cluster_total: float
    metrics_available: bool = False
    metrics_message: str = "the cluster was not asked (offline)"
    namespaces: list[NamespaceUsage] = field(default_factory=list)
    scaling: model.Scaling | None = None
    spot: model.Spot | None = None

    @property
    def exact(self) -> bool:
        return self.window.exact

    def to_json(self) -> dict[str, Any]:
        w = self.window
        return {
            "schema": SCHEMA,
            "cluster": self.ledger.cluster,
            "generated": iso(w.end),
            "since": iso(w.start),
            "exact": w.exact,
            "unknown": list(w.unknown),
            "notes": list(self.ledger.notes),
            "metrics": {"available": self.metrics_available, "message": self.metrics_message},
            "cost": {
                "jobs_usd": sum(j.usd for j in w.jobs),
                "idle_usd": w.idle,
                "control_plane_usd": w.control_plane,
                "volumes_usd": w.volumes,
                "addresses_usd": w.addresses,
                "total_usd": w.total,
                "cluster_total_usd": self.cluster_total,
                "usd_per_hour": w.rate.total,
                "per_hour": {
                    "instances": w.rate.instances,
                    "volumes": w.rate.volumes,
                    "addresses": w.rate.addresses,
                },
            },
            "instances": [asdict(i) for i in w.instances],
            "namespaces": [asdict(n) for n in self.namespaces],
            "jobs": [
                {
                    "job_id": j.job_id,
                    "app": j.app,
                    "state": j.state,
                    "started": iso(j.start),
                    "finished": iso(j.end),
                    "pods": j.pods,
                    "core_hours": j.core_hours,
                    "gib_hours": j.gib_hours,
                    "usd": j.usd,
                    "exact": j.exact,
                    "on_spot": j.on_spot,
                    "spot_saved_usd": j.spot_saved_usd,
                }
                for j in w.jobs
            ],
            "scaling": (
                {**asdict(self.scaling), "saved_usd": self.scaling.saved_usd}
                if self.scaling is not None
                else None
            ),
            "spot": (
                {**asdict(self.spot), "saved_usd": self.spot.saved_usd}
                if self.spot is not None
                else None
            ),
        }


def report(ledger: Ledger, *, since: timedelta | None) -> UsageReport:
    """The figures of a ledger (offline: ``usage --ledger FILE`` stops here)."""
    end = ledger.generated
    window = model.compute(ledger, since=end - since if since is not None else None)
    return UsageReport(
        ledger,
        window,
        model.compute(ledger).total,
        scaling=model.scaling(ledger, window),
        spot=model.spot(window),
    )


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
    # a namespace whose pods have no metrics yet stays unknown ("-"), not 0
    return table, True, "metrics-server"


def build_report(
    env: Any, cluster: str, region: str | None, *, since: timedelta | None
) -> UsageReport:
    """Gather the cluster's ledger (EC2, the bucket, the cluster when reachable) and its
    figures for the window. Reads only."""
    from sparkube.aws.session import AwsClients
    from sparkube.cost.collect import gather
    from sparkube.cost.jobs import job_facts
    from sparkube.spark import jobs

    api = jobs.open_jobs(env, cluster, region)
    config = api.config()
    now = datetime.now(UTC)
    # jobs that ended before the window cost nothing in it (and the totals do not
    # depend on jobs: jobs + idle is what the workers cost), so their logs are not read
    facts, notes = job_facts(api, now=now, since=now - since if since is not None else None)
    clients = AwsClients(env.environ, config.region)
    ledger = gather(clients, config.cluster, config.region, config.bucket, jobs=facts,
                    notes=notes, now=now)  # fmt: skip
    out = report(ledger, since=since)
    if api.client is not None:
        table, ok, message = namespace_usage(api.client)
        out.namespaces = sorted(table.values(), key=lambda u: u.namespace)
        out.metrics_available, out.metrics_message = ok, message
    else:
        out.metrics_message = "no kubeconfig for this cluster on this machine"
    return out


def write_chart(rep: UsageReport, path: Any) -> None:
    """A PNG of what the cluster cost over the window, in dollars per hour, stacked by
    Spark job, idle workers, control plane, and volumes plus addresses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = rep.window
    fixed = [model.CONTROL_PLANE_LINE, "volumes + addresses"]  # at the bottom, then jobs
    job_ids = sorted({k for s in w.segments for k in s.usd} - {
        model.CONTROL_PLANE_LINE, model.IDLE, model.VOLUMES_LINE, model.ADDRESSES_LINE,
    })  # fmt: skip
    labels = [*fixed, *job_ids, model.IDLE]  # idle on top: what no job used
    times: list[datetime] = []
    series: dict[str, list[float]] = {label: [] for label in labels}
    for seg in w.segments:
        hours = (seg.end - seg.start).total_seconds() / 3600
        for moment in (seg.start, seg.end):  # steps: flat over the segment
            times.append(moment)
            for label in labels:
                if label == "volumes + addresses":
                    usd = seg.usd.get(model.VOLUMES_LINE, 0.0) + seg.usd.get(
                        model.ADDRESSES_LINE, 0.0
                    )
                else:
                    usd = seg.usd.get(label, 0.0)
                series[label].append(usd / hours if hours > 0 else 0.0)
    fig, ax = plt.subplots(figsize=(12, 5))
    if times:
        palette = plt.get_cmap("tab20")
        colors: list[Any] = [
            "tab:gray",
            "tab:brown",
            *(palette(n % 20) for n in range(len(job_ids))),
            "lightgray",
        ]
        ax.stackplot(
            times,  # type: ignore[arg-type]  # matplotlib takes datetimes
            *[series[label] for label in labels],
            labels=labels,
            colors=colors,
        )
    bound = "" if w.exact else "at least "
    ax.set_title(
        f"Cluster {rep.ledger.cluster}: {bound}${w.total:.2f} from "
        f"{w.start:%Y-%m-%d %H:%M} to {w.end:%Y-%m-%d %H:%M} UTC"
    )
    ax.set_ylabel("USD per hour")
    ax.legend(loc="upper left", fontsize="small", ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
