"""The controller's loop: hold the Lease, read the cluster, admit what fits, say why
the rest waits.

Each cycle reads three lists (the sparkube Jobs, the pods that have not ended, the
nodes) and writes only what changed: ``spec.suspend: false`` plus the admission time for
a job that starts, the queue position and what it waits for on one that waits. Watches
on the same three kinds wake the loop as soon as something happens (a job submitted, a
pod placed or ended, a node joined); without events it runs every
:data:`RESYNC_SECONDS` anyway, so a lost watch only delays, never stops it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sparkube.controller import admission
from sparkube.controller.lease import CYCLE_ERROR, CYCLE_OK, Lease

log = logging.getLogger("sparkube.controller")
Json = Mapping[str, Any]

RESYNC_SECONDS = 5.0
#: After an event, wait this long for more before a cycle (a job's pods come in bursts).
DEBOUNCE_SECONDS = 0.3


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _said(exc: BaseException) -> str:
    """One line for an error: the API server's message when it has one."""
    status = getattr(exc, "status", None)
    message = getattr(status, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


class Controller:
    def __init__(
        self,
        client: Any,
        *,
        jobs_namespace: str,
        lease: Lease,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.jobs_namespace = jobs_namespace
        self.lease = lease
        self.clock = clock
        self.wake = threading.Event()
        self.stopping = threading.Event()
        #: (job, annotations) last written, so a cycle writes only changes.
        self._said: dict[str, tuple[str, str, str]] = {}

    # ------------------------------------------------------------------ one cycle

    def read(
        self,
    ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        from lightkube import operators
        from lightkube.resources.batch_v1 import Job
        from lightkube.resources.core_v1 import Node, Pod

        jobs = [
            j.to_dict()
            for j in self.client.list(Job, namespace=self.jobs_namespace, labels={
                "app.kubernetes.io/managed-by": "sparkube"})
        ]  # fmt: skip
        # pods of every namespace: any pod on a worker takes room from jobs
        ended = {"status.phase": operators.not_in(["Succeeded", "Failed"])}
        pods = [p.to_dict() for p in self.client.list(Pod, namespace="*", fields=ended)]
        nodes = [n.to_dict() for n in self.client.list(Node)]
        return jobs, pods, nodes

    def cycle(self) -> admission.Decision:
        """Read, decide, write. Returns the decision (for tests and the log)."""
        jobs, pods, nodes = self.read()
        now = self.clock()
        queue, decision = admission.judge(jobs, pods, nodes, now)
        for name in decision.admit:
            self._admit(name, now)
        for name, waiting in decision.waiting.items():
            self._queued(name, waiting)
        live = {j.name for j in queue}
        for gone in set(self._said) - live:
            del self._said[gone]
        return decision

    def _patch(self, name: str, body: dict[str, Any]) -> None:
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.batch_v1 import Job
        from lightkube.types import PatchType

        try:
            self.client.patch(
                Job, name, body, namespace=self.jobs_namespace, patch_type=PatchType.MERGE
            )
        except ApiError as exc:
            if exc.status.code != 404:  # deleted meanwhile: nothing to say to it
                raise

    def _admit(self, name: str, now: float) -> None:
        self._patch(
            name,
            {
                "metadata": {
                    "annotations": {
                        admission.ADMITTED: _iso(now),
                        admission.POSITION: None,
                        admission.WAITS_FOR: None,
                        admission.NEVER: None,
                    }
                },
                "spec": {"suspend": False},
            },
        )
        self._said.pop(name, None)
        log.info("admitted job %s", name)

    def _queued(self, name: str, waiting: admission.Waiting) -> None:
        said = (str(waiting.position), waiting.waits_for, "true" if waiting.never else "")
        if self._said.get(name) == said:
            return
        self._patch(
            name,
            {
                "metadata": {
                    "annotations": {
                        admission.POSITION: said[0],
                        admission.WAITS_FOR: said[1],
                        admission.NEVER: said[2] or None,
                    }
                }
            },
        )
        self._said[name] = said
        log.info("job %s queued, position %s: waits for %s", name, *said[:2])

    # ------------------------------------------------------------------ running

    def _watch(self, kind: Any, namespace: str | None) -> None:
        """Wake the loop on every change of ``kind``; reconnect for ever."""
        while not self.stopping.is_set():
            try:
                kwargs = {"namespace": namespace} if namespace else {}
                for _ in self.client.watch(kind, **kwargs):
                    self.wake.set()
                    if self.stopping.is_set():
                        return
            except Exception as exc:  # a dropped watch: the resync covers the gap
                log.debug("watch of %s ended: %s", getattr(kind, "__name__", kind), exc)
            self.stopping.wait(2.0)

    def start_watches(self) -> None:
        from lightkube.resources.batch_v1 import Job
        from lightkube.resources.core_v1 import Node, Pod

        for kind, ns in ((Job, self.jobs_namespace), (Pod, "*"), (Node, None)):
            threading.Thread(
                target=self._watch, args=(kind, ns), name=f"watch-{kind.__name__}", daemon=True
            ).start()

    def run(self) -> None:
        """Until :attr:`stopping` is set: a cycle whenever this process holds the Lease
        and something happened, or every RESYNC_SECONDS."""
        failures = 0
        health: dict[str, str] = {}
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                if self.lease.hold(health):
                    self.cycle()
                    health = {CYCLE_OK: _iso(self.clock()), CYCLE_ERROR: ""}
                failures = 0
            except Exception as exc:
                failures += 1
                log.exception("cycle failed (%d in a row)", failures)
                # said on the Lease at the next renewal: a queued submit reads it
                health = {**health, CYCLE_ERROR: _said(exc)}
                if failures >= 30:
                    raise
            self.wake.wait(RESYNC_SECONDS)
            if self.wake.is_set():
                self.stopping.wait(DEBOUNCE_SECONDS)
        self.lease.release()
