"""The job store in the cluster's bucket: a job's record (:class:`JobRecord`, at
``jobs/ID/job.json``), its driver log (``jobs/ID/driver.log``), its output
(``jobs/ID/output/``) and the index of ended jobs (``jobs/index.json``), and the
timestamps records carry. ``jobs``, ``logs`` and ``usage`` read these from any machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sparkube.controller.interruptions import parse as parse_interruptions
from sparkube.errors import InputError
from sparkube.spark.config import DRIVER_CPU, DRIVER_MEMORY, Resources
from sparkube.spark.diagnose import parse_cpu
from sparkube.spark.podspec import executor_pod_memory_mib, request

RESULTS_PREFIX = "jobs"
INDEX_KEY = "jobs/index.json"
ENDED_STATES = frozenset({"Succeeded", "Failed", "Cancelled"})


@dataclass
class JobRecord:
    """One job as ``jobs`` lists it: from the cluster while it exists, else the bucket."""

    job_id: str
    app: str
    kind: str
    state: str  # Queued, Pending, Running, Succeeded, Failed, Cancelled, Unknown
    submitted: str
    finished: str | None = None  # when the driver ended (its container's finishedAt)
    exit_code: int | None = None
    executors: int = 0
    executor_cores: int = 0
    executor_memory: str = ""
    args: list[str] = field(default_factory=list)
    output: str = ""
    message: str = ""
    started: str | None = None  # when the driver container started
    #: The pods' requests as sparkube built them, ``{cpu, memory_bytes}`` (each executor
    #: pod's); None in records written before sparkube kept them: see requests().
    driver_request: dict[str, Any] | None = None
    executor_request: dict[str, Any] | None = None
    #: When the cluster's controller let it start: it waited ``Queued`` from
    #: ``submitted`` until then (None: not known, or jobs from before the queue).
    admitted: str | None = None
    #: Under dynamic allocation, the range of executors ("1-4"; "": a fixed count,
    #: ``executors``, which is then where it started).
    dynamic_executors: str = ""
    #: Whether its executors decommission when they go (their blocks copied away first):
    #: "on" or "off" ("": records from before sparkube set it).
    decommission: str = ""
    #: The workers' interruptions it met (spot notices, rebalance recommendations,
    #: maintenance), as the cluster's controller told them on its Job
    #: (:mod:`sparkube.controller.interruptions`): ``{node, kind, at, executors,
    #: driver}`` each ([]: none, or a record from before sparkube kept them).
    interruptions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def queued_seconds(self) -> float | None:
        start, end = parse_time(self.submitted), parse_time(self.admitted)
        return max(0.0, (end - start).total_seconds()) if start and end else None

    def requests(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(driver, each executor) requests: as recorded at submit, else computed from the
        sizes older records kept (the driver's defaults then: 500m and 1g + overhead).
        The executor's is None when the record does not say its memory."""
        driver = self.driver_request or request(
            parse_cpu(DRIVER_CPU), Resources(0, 0, "").pod_memory_mib(DRIVER_MEMORY)
        )
        executor = self.executor_request
        if executor is None and self.executor_memory:
            with contextlib.suppress(InputError):
                size = Resources(self.executors, self.executor_cores, self.executor_memory)
                executor = request(float(self.executor_cores), executor_pod_memory_mib(size, {}))
        return driver, executor

    @property
    def duration(self) -> float | None:
        start = parse_time(self.submitted)
        end = parse_time(self.finished) if self.finished else datetime.now(UTC)
        return (end - start).total_seconds() if start and end else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_seconds"] = self.duration
        data["queued_seconds"] = self.queued_seconds
        return data


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_record(data: Any) -> JobRecord | None:
    if not isinstance(data, Mapping):
        return None
    known = set(JobRecord.__dataclass_fields__)
    fields = {k: v for k, v in data.items() if k in known}
    if "interruptions" in fields:  # only what reads as interruptions is kept
        told = parse_interruptions(fields["interruptions"])
        fields["interruptions"] = [e.to_json() for e in told]
    try:
        return JobRecord(**fields)
    except TypeError:
        return None


def record_key(job_id: str) -> str:
    return f"{RESULTS_PREFIX}/{job_id}/job.json"


def log_key(job_id: str) -> str:
    return f"{RESULTS_PREFIX}/{job_id}/driver.log"


def output_prefix(job_id: str) -> str:
    return f"{RESULTS_PREFIX}/{job_id}/output/"
