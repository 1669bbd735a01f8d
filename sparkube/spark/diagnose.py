"""One sentence for a Spark job on the cluster that failed or cannot start.

Reads what a user would have to dig out with kubectl: the driver's and executors' pod
status, the events of those pods, and the tail of the driver log. Pure functions over
plain dicts (pod/event JSON as the API returns it), so the rules are tested on data
recorded from real runs.

The checks go from the most specific cause to the most generic, and the first that
matches wins: RBAC refused (the seed's "External scheduler cannot be instantiated"),
image pull, unschedulable (what was asked vs. what the largest node offers, and the flag
to change), OOMKilled (which pod, its limit, the flag), a missing or forbidden S3
object, then the application's own exception (its last line).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Json = Mapping[str, Any]


@dataclass(frozen=True)
class NodeCapacity:
    name: str
    cpu: float  # cores
    memory: int  # bytes


def _quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity as a number, as the API server writes them (``500m``,
    ``966367641600m`` bytes, ``1.5Gi``, ``1e3``), and the metrics API's ``n``/``u``
    (nano-, micro-units), which lightkube's parser does not take."""
    from lightkube.utils.quantity import parse_quantity

    text = str(value).strip()
    if text.endswith(("n", "u")) and text[:-1].replace(".", "", 1).isdigit():
        return Decimal(text[:-1]) * (Decimal("1e-9") if text[-1] == "n" else Decimal("1e-6"))
    parsed = parse_quantity(text)
    return parsed if parsed is not None else Decimal(0)


def is_unschedulable(pod: Mapping[str, Any]) -> bool:
    """The scheduler found no node for the pod (``PodScheduled`` False, Unschedulable)."""
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def parse_cpu(value: str | int | float) -> float:
    """Cores from a Kubernetes CPU quantity: ``2``, ``500m``, ``12345678n``."""
    return float(_quantity(value))


def schedulable_capacity(nodes: Iterable[Any]) -> list[NodeCapacity]:
    """Allocatable CPU and memory of the nodes pods can land on (no NoSchedule taint),
    from lightkube Node objects."""
    out = []
    for n in nodes:
        taints = (n.spec.taints if n.spec else None) or []
        if any(t.effect == "NoSchedule" for t in taints):
            continue
        alloc = (n.status.allocatable if n.status else None) or {}
        out.append(
            NodeCapacity(
                n.metadata.name,
                parse_cpu(alloc.get("cpu", "0")),
                parse_memory(alloc.get("memory", "0")),
            )
        )
    return out


def parse_memory(value: str | int | float) -> int:
    """Bytes from a Kubernetes memory quantity (a fraction of a byte rounds up, as the
    API server does)."""
    return math.ceil(_quantity(value))


def human_memory(size: int) -> str:
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20)):
        if size >= factor:
            value = size / factor
            return f"{value:.1f}{unit}".replace(".0" + unit, unit)
    return f"{size}B"


def human_cpu(cores: float) -> str:
    return f"{cores:g}"


def statuses(pod: Json) -> list[Json]:
    """The pod's init and app container statuses, in that order."""
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )


def _role(pod: Json) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return "executor" if labels.get("spark-role") == "executor" else "driver"


def _requests(pod: Json) -> tuple[float, int]:
    cpu, mem = 0.0, 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += parse_cpu(req.get("cpu", 0))
        mem += parse_memory(req.get("memory", 0))
    return cpu, mem


def _memory_limit(pod: Json, container: str) -> str | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
            return human_memory(parse_memory(limit)) if limit else None
    return None


def rbac_problem(log_tail: Sequence[str]) -> str | None:
    text = "\n".join(log_tail)
    # a refused watch (fabric8 watches over a websocket) names neither user nor verb
    watch = re.search(r"Received 403 on websocket\. Failure executing: GET at: \S*?"
                      r"/namespaces/[^/]+/([\w.-]+)\?\S*watch=true", text)  # fmt: skip
    if (
        "External scheduler cannot be instantiated" not in text
        and " is forbidden" not in text
        and not watch
    ):
        return None
    m = re.search(r'User "([^"]+)" cannot (\w+) resource "([^"]+)"', text)
    who = f" ({m.group(1)} cannot {m.group(2)} {m.group(3)})" if m else ""
    if not m and watch:
        who = f" (it cannot watch {watch.group(1)})"
    return (
        "The Spark driver is not allowed to create its executors" + who + "; the Spark "
        "Role or RoleBinding is missing: run sparkube up to re-apply them."
    )


def admission_problem(log_tail: Sequence[str]) -> str | None:
    """The API server refused the executor pods for a reason other than RBAC: a
    ResourceQuota, a LimitRange, PodSecurity admission or a webhook (the refusal is a 403
    too, but names the pod rather than the user)."""
    text = "\n".join(log_tail)
    m = re.search(r'pods? "([^"]+)" is forbidden: (.+?)(?:\.?\s*$|\. )', text, re.MULTILINE)
    if not m or m.group(2).startswith("User "):
        return None
    reason = m.group(2).strip()
    if reason.startswith("exceeded quota"):
        fix = "lower --executors or --executor-memory, or raise the spark namespace's ResourceQuota"
    elif "PodSecurity" in reason:
        fix = "the spark namespace's PodSecurity level must admit them (run sparkube up)"
    else:
        fix = "change the pod's size or the admission rule that refused it"
    return f"The cluster refused the executor pods ({reason}); {fix}."


def executor_refusal(log_tail: Sequence[str]) -> str | None:
    """Why the API server refuses the driver its executors, if its log says so."""
    return admission_problem(log_tail) or rbac_problem(log_tail)


def image_problem(pods: Iterable[Json]) -> str | None:
    for pod in pods:
        for st in statuses(pod):
            waiting = (st.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                return (
                    f"The {_role(pod)} image {st.get('image')} cannot be pulled "
                    f"({waiting.get('reason')}); check the image name and tag (sparkube uses "
                    "the one recorded at sparkube up)."
                )
    return None


def scheduling_problem(
    pods: Iterable[Json], events: Iterable[Json], nodes: Sequence[NodeCapacity]
) -> str | None:
    unschedulable = {
        (e.get("involvedObject") or {}).get("name")
        for e in events
        if e.get("reason") == "FailedScheduling"
    }
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name")
        if not is_unschedulable(pod) and name not in unschedulable:
            continue
        cpu, mem = _requests(pod)
        role = _role(pod)
        flags = (
            "--executor-cores / --executor-memory"
            if role == "executor"
            else "--driver-memory or the instance type"
        )
        if nodes:
            big_cpu = max(n.cpu for n in nodes)
            big_mem = max(n.memory for n in nodes)
            offer = f"the largest node offers {human_cpu(big_cpu)} CPU and {human_memory(big_mem)}"
        else:
            offer = "no worker node is Ready"
        return (
            f"The {role} pod asks for {human_cpu(cpu)} CPU and {human_memory(mem)} but "
            f"{offer}; lower {flags}, or add workers with sparkube up --workers N."
        )
    return None


def oom_problem(pods: Iterable[Json]) -> str | None:
    for pod in pods:
        for st in statuses(pod):
            for state in (st.get("state") or {}, st.get("lastState") or {}):
                term = state.get("terminated") or {}
                if term.get("reason") == "OOMKilled":
                    name = (pod.get("metadata") or {}).get("name")
                    limit = _memory_limit(pod, str(st.get("name")))
                    role = _role(pod)
                    flag = "--executor-memory" if role == "executor" else "--driver-memory"
                    at = f" of {limit}" if limit else ""
                    return (
                        f"The {role} pod {name} was killed for exceeding its memory limit{at}; "
                        f"give it more with {flag}."
                    )
    return None


def s3_problem(log_tail: Sequence[str]) -> str | None:
    text = "\n".join(log_tail)
    m = re.search(r"Path does not exist: (s3a://\S+?)\.?(?:\s|$)", text) or re.search(
        r"FileNotFoundException: No such file or directory: (s3a://\S+)", text
    )
    if m:
        return f"The input {m.group(1)} does not exist; check the path (s3a://BUCKET/KEY)."
    if re.search(r"NoAuthWithAWSException|No AWS Credentials provided|Unable to load credentials",
                 text):  # fmt: skip
        return (
            "The job's pods got no AWS credentials from the instance metadata; run "
            "sparkube up again, which restores the nodes' role and instance profile."
        )
    m = re.search(r"AccessDenied.*?(s3a://\S+)|(s3a://\S+).*?AccessDenied", text)
    if m or "AccessDeniedException" in text:
        where = next((g for g in (m.groups() if m else ()) if g), "S3").rstrip(":.,;")
        return (
            f"S3 denied access to {where}; the nodes' instance role reaches only the "
            "cluster's bucket: copy the data there or grant the role access."
        )
    return None


def exception_line(log_tail: Sequence[str]) -> str | None:
    """The last line of the last Python traceback, else the last Java exception line."""
    lines = [line.rstrip() for line in log_tail]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last)"):
            for line in lines[i + 1 :]:
                if line and not line.startswith((" ", "\t")):
                    return line.strip()
    for line in reversed(lines):
        m = re.match(r"(?:Exception in thread \"\S+\" )?([\w.$]+(?:Exception|Error)):? ?(.*)", line)
        if m and not line.startswith(("\tat ", " ")):
            return line.strip()
    return None


def known_problem(
    *,
    driver: Json | None,
    executors: Sequence[Json] = (),
    events: Sequence[Json] = (),
    log_tail: Sequence[str] = (),
    nodes: Sequence[NodeCapacity] = (),
) -> str | None:
    """The one sentence for a failure sparkube recognises (refused executors, image,
    scheduling, memory, S3), or None when only the application's own error explains it."""
    pods = [p for p in ([driver] if driver else []) + list(executors)]
    checks: list[Callable[[], str | None]] = [
        lambda: executor_refusal(log_tail),
        lambda: image_problem(pods),
        lambda: scheduling_problem(pods, events, nodes),
        lambda: oom_problem(pods),
        lambda: s3_problem(log_tail),
    ]
    for check in checks:
        found = check()
        if found:
            return found
    return None


def diagnose(
    *,
    driver: Json | None,
    executors: Sequence[Json] = (),
    events: Sequence[Json] = (),
    log_tail: Sequence[str] = (),
    nodes: Sequence[NodeCapacity] = (),
    exit_code: int | None = None,
) -> str:
    """The one sentence saying why the job failed or does not start, and what to do."""
    found = known_problem(
        driver=driver, executors=executors, events=events, log_tail=log_tail, nodes=nodes
    )
    if found:
        return found
    line = exception_line(log_tail)
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    if line:
        return f"The application failed{code}: {line}"
    if driver is None:
        return "The driver pod is gone; see sparkube logs JOB for what it printed."
    return f"The driver ended{code}; see sparkube logs JOB for its output."
