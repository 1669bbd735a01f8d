"""The controller's loop: hold the Lease, read the cluster, admit what fits, say why
the rest waits.

Each cycle reads three lists (the sparkube Jobs, the pods that have not ended, the
nodes) and writes only what changed: ``spec.suspend: false`` plus the admission time for
a job that starts, the queue position and what it waits for on one that waits, and on
a job with pods on a worker aws-node-termination-handler tainted, that interruption
(:mod:`~sparkube.controller.interruptions`). Watches
on the same three kinds wake the loop as soon as something happens (a job submitted, a
pod placed or ended, a node joined); without events it runs every
:data:`RESYNC_SECONDS` anyway, so a lost watch only delays, never stops it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sparkube.controller import admission, interruptions, scaling
from sparkube.controller.jointoken import Renewer
from sparkube.controller.lease import CYCLE_ERROR, CYCLE_OK, Lease
from sparkube.controller.scalelog import ScaleLog
from sparkube.cost.ledger import ScaleEvent

log = logging.getLogger("sparkube.controller")
Json = Mapping[str, Any]

RESYNC_SECONDS = 5.0
#: After an event, wait this long for more before a cycle (a job's pods come in bursts).
DEBOUNCE_SECONDS = 0.3
#: How long a member that left the group is remembered while its node is still Ready
#: (the kubelet's status goes stale after about 40 s).
LEFT_SECONDS = 600.0


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _said(exc: BaseException) -> str:
    """One line for an error: the API server's message when it has one."""
    status = getattr(exc, "status", None)
    message = getattr(status, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


@dataclass
class Scaler:
    """The worker group the controller grows and shrinks (see :mod:`scaling`)."""

    autoscaling: Any  # a boto3 Auto Scaling client (the control plane's instance role)
    group: str
    #: What a new worker offers jobs while the group has none to measure.
    shape: scaling.Shape
    idle_seconds: float = 600.0
    #: Where its changes are recorded for the ledger (None: not recorded).
    record: ScaleLog | None = None


class Controller:
    def __init__(
        self,
        client: Any,
        *,
        jobs_namespace: str,
        lease: Lease,
        clock: Callable[[], float] = time.time,
        scaler: Scaler | None = None,
        renewer: Renewer | None = None,
    ) -> None:
        self.client = client
        self.jobs_namespace = jobs_namespace
        self.lease = lease
        self.clock = clock
        self.scaler = scaler
        self.renewer = renewer
        #: Idle workers and since when (kept on the Lease across controller restarts).
        self.marks: dict[str, str] | None = None
        #: When each member of the worker group was first seen (epoch seconds).
        self.first_seen: dict[str, float] = {}
        #: Members that left the group (a spot reclaim, a failed instance): epoch
        #: seconds they left. Their Node objects go once NotReady (:meth:`_lost_nodes`).
        self.left: dict[str, float] = {}
        #: Annotations written on the Lease with each renewal besides the health.
        self.on_lease: dict[str, str] = {}
        self._reasons: list[str] = []
        #: The scaler's group could not be read this cycle.
        self._group_unread = False
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
        group, shape, growth, leaving = self._group(nodes, pods, now)
        if leaving:  # a member the group is removing is no room for anyone
            nodes = [n for n in nodes if scaling.instance_of(n) not in leaving]
        # a group that could not be read may still add workers: no job is "never" then
        sure = self.scaler is None or not self._group_unread
        queue, decision = admission.judge(jobs, pods, nodes, now, growth, sure=sure)
        for name in decision.admit:
            self._admit(name, now)
        for name, waiting in decision.waiting.items():
            self._queued(name, waiting)
        live = {j.name for j in queue}
        for gone in set(self._said) - live:
            del self._said[gone]
        self._interrupted(jobs, pods, nodes, now)
        if self.scaler is not None and group is not None and shape is not None:
            # the room before this cycle's admissions, as admission counted it
            free = admission.room_after_owed(queue, admission.rooms(nodes, pods))
            self._scale(self.scaler, group, shape, queue, decision, nodes, pods, free, now)
        if self.renewer is not None and self.renewer.due(now):
            try:
                said = self.renewer.renew(self.client, now)
            except Exception as exc:  # AWS or the API server refused: in a minute again
                said = f"cannot renew the join parameter: {_said(exc)}"
            if said:
                log.info("%s", said)
        return decision

    def _group(
        self, nodes: list[Json], pods: list[Json], now: float
    ) -> tuple[scaling.Group | None, scaling.Shape | None, list[admission.Room], frozenset[str]]:
        """The worker group (None without a scaler, without a group, or when Auto
        Scaling cannot be read: admission goes on without it), a new worker's shape, the
        empty workers it may still have, and the members it is removing."""
        from sparkube.controller import group as worker_group

        self._group_unread = False
        if self.scaler is None:
            return None, None, [], frozenset()
        try:
            group = worker_group.read_group(self.scaler.autoscaling, self.scaler.group)
        except Exception as exc:  # throttled, no right yet, credentials: next cycle
            self._say([f"cannot read the worker group {self.scaler.group}: {_said(exc)}"])
            self._group_unread = True
            return None, None, [], frozenset()
        if group is None:
            self._say([f"no worker group {self.scaler.group}: nothing to scale"])
            return None, None, [], frozenset()
        for i in group.instances:
            self.first_seen.setdefault(i.instance_id, now)
        for gone in set(self.first_seen) - {i.instance_id for i in group.instances}:
            del self.first_seen[gone]
            self.left[gone] = now
        self._lost_nodes(nodes, now)
        who = scaling.members(group, nodes, self.first_seen, now)
        baseline = admission.rooms(nodes, [p for p in pods if not admission.is_jobs(p)])
        shape = scaling.shape_of(nodes, baseline, group, self.scaler.shape)
        return group, shape, scaling.growth(group, shape, len(who.ready)), who.leaving

    def _scale(
        self,
        scaler: Scaler,
        group: scaling.Group,
        shape: scaling.Shape,
        queue: list[admission.QueueJob],
        decision: admission.Decision,
        nodes: list[Json],
        pods: list[Json],
        free: list[admission.Room],
        now: float,
    ) -> scaling.ScalePlan:
        from sparkube.controller import group as worker_group

        if self.marks is None:  # first cycle: what an earlier holder kept
            try:
                self.marks = dict(json.loads(self.lease.seen.get(scaling.IDLE_SINCE) or "{}"))
            except ValueError:
                self.marks = {}
        plan = scaling.plan(
            queue, decision, nodes, pods, free, group, shape, marks=self.marks,
            idle_seconds=scaler.idle_seconds, now=dt.datetime.fromtimestamp(now, dt.UTC),
            first_seen=self.first_seen,
        )  # fmt: skip
        events: list[ScaleEvent] = []
        try:
            done = worker_group.carry_out(
                scaler.autoscaling, group, plan,
                before_terminate=self._cordon, after_terminate=self._forget,
                not_terminated=lambda node: self._cordon(node, on=False), events=events,
                first_seen=self.first_seen,
            )  # fmt: skip
            for line in done:
                log.info("%s", line)
        except Exception as exc:  # admission went on; the next cycle plans again
            log.warning("group %s: %s", group.name, _said(exc))
        if scaler.record is not None:
            scaler.record.add(events)
        self.marks = plan.marks
        self.on_lease[scaling.IDLE_SINCE] = json.dumps(plan.marks, sort_keys=True)
        self._say(plan.reasons)
        return plan

    def _cordon(self, node: str, *, on: bool = True) -> None:
        """No pod is placed on a worker about to go (a job admitted meanwhile would lose
        it with the instance); ``on=False`` undoes it when AWS kept the instance."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import Node
        from lightkube.types import PatchType

        try:
            self.client.patch(
                Node, node, {"spec": {"unschedulable": on}}, patch_type=PatchType.MERGE
            )
        except ApiError as exc:
            if exc.status.code != 404:  # (a node already gone needs no cordon)
                raise

    def _lost_nodes(self, nodes: list[Json], now: float) -> None:
        """Remove the Node object of each worker whose instance left the group (EC2
        reclaimed a spot instance, or it failed: Auto Scaling replaces it) once the node
        is NotReady, as a cloud controller manager would; forget such an instance after
        :data:`LEFT_SECONDS`."""
        for instance, since in list(self.left.items()):
            for node in nodes:
                if scaling.instance_of(node) != instance or admission.node_ready(node):
                    continue
                name = str((node.get("metadata") or {}).get("name"))
                try:
                    self._forget(name)
                except Exception as exc:  # the next cycle tries again
                    log.warning("node %s: %s", name, _said(exc))
                    continue
                self._say([f"worker {name} ({instance}) left the group: its node removed"])
                del self.left[instance]
                break
            else:
                if now - since > LEFT_SECONDS:
                    del self.left[instance]

    def _forget(self, node: str) -> None:
        """The Node object of a worker whose instance AWS is terminating: nothing else
        removes it (no cloud controller manager), and a NotReady node would linger in
        every listing."""
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import Node

        try:
            self.client.delete(Node, node)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    def _say(self, reasons: list[str]) -> None:
        """Log the scaler's reasons when they change (a cycle runs every few seconds)."""
        if reasons != self._reasons:
            for line in reasons:
                log.info("%s", line)
            self._reasons = list(reasons)

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

    def _interrupted(
        self, jobs: list[Json], pods: list[Json], nodes: list[Json], now: float
    ) -> None:
        """Tell each job on a worker aws-node-termination-handler tainted (a spot notice,
        a rebalance recommendation, maintenance) on its Job: only what grew is written,
        the Job's own annotation being what was told."""
        for name, entries in interruptions.changes(jobs, pods, nodes, now).items():
            try:
                self._patch(
                    name, {"metadata": {"annotations": {
                        interruptions.ANNOTATION: interruptions.dumps(entries)}}}
                )  # fmt: skip
            except Exception as exc:  # admission went on; the next cycle tries again
                log.warning("job %s: cannot record its interruption: %s", name, _said(exc))
                continue
            log.info("job %s: %s", name, interruptions.headline(entries[-1]))

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
                if self.lease.hold({**health, **self.on_lease}):
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
