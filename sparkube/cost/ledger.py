"""The ledger: every fact the cost model uses, and nothing else, as versioned JSON.

``usage --export-ledger FILE`` writes one; ``usage --ledger FILE`` recomputes every
figure from one, offline. The schema is documented in ``docs/LEDGER.md``; this module
is its reader and writer. Times are UTC, ISO 8601 with a ``Z``; an interval's ``end``
of ``null`` means "still so when the ledger was generated".

Facts, not conclusions: instances with the intervals they ran (billed), their market,
zone, size, credit mode and public address; their volumes with the intervals they
existed; prices with their source and the span they were in force (spot changes over
time); jobs with their pods' requests and the pods' real start and end. Anything
unknown is ``null`` with a reason beside it, never 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA = "sparkube.ledger/1"
CONTROL_PLANE = "control-plane"
WORKER = "worker"
ON_DEMAND = "on-demand"
SPOT = "spot"


class LedgerError(ValueError):
    """A ledger file that is not a ledger this version of sparkube can read."""


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def parse_iso(text: Any, what: str) -> datetime:
    if not isinstance(text, str):
        raise LedgerError(f"{what}: expected an ISO 8601 time, got {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LedgerError(f"{what}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise LedgerError(f"{what}: {text!r} has no time zone; write it in UTC with a Z")
    return moment.astimezone(UTC)


def _maybe_iso(text: Any, what: str) -> datetime | None:
    return None if text is None else parse_iso(text, what)


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime | None = None  # None: still so at the ledger's ``generated``

    def to_json(self) -> list[str | None]:
        return [iso(self.start), iso(self.end)]

    @classmethod
    def from_json(cls, data: Any, what: str) -> Interval:
        if not isinstance(data, list) or len(data) != 2:
            raise LedgerError(f"{what}: an interval is [start, end or null]")
        start = parse_iso(data[0], f"{what} start")
        end = _maybe_iso(data[1], f"{what} end")
        if end is not None and end < start:
            raise LedgerError(f"{what}: ends before it starts")
        return cls(start, end)


@dataclass(frozen=True)
class Volume:
    volume_id: str
    volume_type: str  # gp3, gp2, io2, ...
    size_gb: int
    existed: tuple[Interval, ...]  # billed while it exists, attached or not

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.volume_id,
            "type": self.volume_type,
            "size_gb": self.size_gb,
            "existed": [i.to_json() for i in self.existed],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> Volume:
        return cls(
            volume_id=str(data.get("id", "")),
            volume_type=str(_need(data, "type", what)),
            size_gb=int(_need(data, "size_gb", what)),
            existed=tuple(
                Interval.from_json(i, f"{what} existed[{n}]")
                for n, i in enumerate(data.get("existed") or [])
            ),
        )


@dataclass(frozen=True)
class CreditCharge:
    """Surplus CPU credits an instance in unlimited mode was charged over a span (from
    CloudWatch's ``CPUSurplusCreditsCharged``); one credit is one vCPU-minute."""

    start: datetime
    end: datetime
    credits: float

    def to_json(self) -> list[Any]:
        return [iso(self.start), iso(self.end), self.credits]

    @classmethod
    def from_json(cls, data: Any, what: str) -> CreditCharge:
        if not isinstance(data, list) or len(data) != 3:
            raise LedgerError(f"{what}: a credit charge is [start, end, credits]")
        start, end = parse_iso(data[0], f"{what} start"), parse_iso(data[1], f"{what} end")
        if end <= start or not isinstance(data[2], int | float) or data[2] < 0:
            raise LedgerError(f"{what}: needs start < end and credits >= 0")
        return cls(start, end, float(data[2]))


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    role: str  # control-plane | worker
    instance_type: str
    market: str  # on-demand | spot
    zone: str
    vcpus: float  # what AWS bills for: the instance type's capacity
    memory_bytes: int
    running: tuple[Interval, ...]  # billed intervals (pending/running; not stopped)
    volumes: tuple[Volume, ...] = ()
    public_ipv4: bool = False
    cpu_credits: str | None = None  # standard | unlimited (burstable types only)
    #: unlimited mode: the surplus credits charged (None: not known)
    surplus_credits: tuple[CreditCharge, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.instance_id,
            "name": self.name,
            "role": self.role,
            "instance_type": self.instance_type,
            "market": self.market,
            "zone": self.zone,
            "vcpus": self.vcpus,
            "memory_bytes": self.memory_bytes,
            "running": [i.to_json() for i in self.running],
            "volumes": [v.to_json() for v in self.volumes],
            "public_ipv4": self.public_ipv4,
            "cpu_credits": self.cpu_credits,
            "surplus_credits": None
            if self.surplus_credits is None
            else [c.to_json() for c in self.surplus_credits],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> Instance:
        role = str(_need(data, "role", what))
        if role not in (CONTROL_PLANE, WORKER):
            raise LedgerError(f"{what}: role {role!r} is not {CONTROL_PLANE} or {WORKER}")
        market = str(data.get("market", ON_DEMAND))
        if market not in (ON_DEMAND, SPOT):
            raise LedgerError(f"{what}: market {market!r} is not {ON_DEMAND} or {SPOT}")
        return cls(
            instance_id=str(_need(data, "id", what)),
            name=str(data.get("name", "")),
            role=role,
            instance_type=str(_need(data, "instance_type", what)),
            market=market,
            zone=str(data.get("zone", "")),
            vcpus=float(_need(data, "vcpus", what)),
            memory_bytes=int(_need(data, "memory_bytes", what)),
            running=tuple(
                Interval.from_json(i, f"{what} running[{n}]")
                for n, i in enumerate(data.get("running") or [])
            ),
            volumes=tuple(
                Volume.from_json(v, f"{what} volumes[{n}]")
                for n, v in enumerate(data.get("volumes") or [])
            ),
            public_ipv4=bool(data.get("public_ipv4", False)),
            cpu_credits=data.get("cpu_credits"),
            surplus_credits=None
            if data.get("surplus_credits") is None
            else tuple(
                CreditCharge.from_json(c, f"{what} surplus_credits[{n}]")
                for n, c in enumerate(data["surplus_credits"])
            ),
        )


# Kinds of price
INSTANCE = "instance"
VOLUME = "volume"
IPV4 = "ipv4"
CREDITS = "credits"  # surplus CPU credits, USD per vCPU-hour


@dataclass(frozen=True)
class PriceFact:
    """A price and where it came from. ``usd`` is per hour (instances, addresses), per
    GB-month (volumes) or per vCPU-hour (surplus CPU credits); None: unknown, and
    ``reason`` says why. A spot price holds from ``start`` (in force since) to ``end``
    (the next change); on-demand prices have neither."""

    kind: str
    usd: float | None
    source: str
    instance_type: str = ""
    market: str = ON_DEMAND
    zone: str = ""
    volume_type: str = ""
    start: datetime | None = None
    end: datetime | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "usd": self.usd, "source": self.source}
        if self.kind == INSTANCE:
            data.update(instance_type=self.instance_type, market=self.market, zone=self.zone)
        if self.kind == VOLUME:
            data["volume_type"] = self.volume_type
        if self.start is not None or self.end is not None:
            data.update(start=iso(self.start), end=iso(self.end))
        if self.reason:
            data["reason"] = self.reason
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> PriceFact:
        kind = str(_need(data, "kind", what))
        if kind not in (INSTANCE, VOLUME, IPV4, CREDITS):
            raise LedgerError(f"{what}: kind {kind!r} is not instance, volume, ipv4 or credits")
        usd = data.get("usd")
        if usd is not None and (not isinstance(usd, int | float) or usd < 0):
            raise LedgerError(f"{what}: usd must be a non-negative number or null")
        return cls(
            kind=kind,
            usd=None if usd is None else float(usd),
            source=str(data.get("source", "")),
            instance_type=str(data.get("instance_type", "")),
            market=str(data.get("market", ON_DEMAND)),
            zone=str(data.get("zone", "")),
            volume_type=str(data.get("volume_type", "")),
            start=_maybe_iso(data.get("start"), f"{what} start"),
            end=_maybe_iso(data.get("end"), f"{what} end"),
            reason=str(data.get("reason", "")),
        )


@dataclass(frozen=True)
class Pod:
    """One pod of a job: what it reserved (its requests) while it held a node."""

    name: str
    role: str  # driver | executor
    cpu: float
    memory_bytes: int
    ran: Interval

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "cpu": self.cpu,
            "memory_bytes": self.memory_bytes,
            "ran": self.ran.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> Pod:
        return cls(
            name=str(data.get("name", "")),
            role=str(data.get("role", "")),
            cpu=float(_need(data, "cpu", what)),
            memory_bytes=int(_need(data, "memory_bytes", what)),
            ran=Interval.from_json(_need(data, "ran", what), f"{what} ran"),
        )


@dataclass(frozen=True)
class Job:
    job_id: str
    app: str
    state: str
    pods: tuple[Pod, ...]
    source: str = ""  # where the pods' times come from (event log, record, cluster)
    #: From its submission to the controller's admission (None: not known, or never
    #: queued); ``end`` None while it still waits.
    queued: Interval | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "app": self.app,
            "state": self.state,
            "source": self.source,
            "queued": self.queued.to_json() if self.queued else None,
            "pods": [p.to_json() for p in self.pods],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> Job:
        return cls(
            job_id=str(_need(data, "job_id", what)),
            app=str(data.get("app", "")),
            state=str(data.get("state", "")),
            source=str(data.get("source", "")),
            queued=(
                Interval.from_json(data["queued"], f"{what} queued")
                if data.get("queued") is not None
                else None
            ),
            pods=tuple(
                Pod.from_json(p, f"{what} pods[{n}]") for n, p in enumerate(data.get("pods") or [])
            ),
        )


@dataclass(frozen=True)
class ScaleEvent:
    """A change the cluster's controller made to the workers' group: ``grow`` (desired
    count raised) or ``shrink`` (``instance`` terminated, desired lowered with it)."""

    at: datetime
    kind: str  # grow | shrink
    desired_from: int
    desired_to: int
    maximum: int = 0  # the group's maximum then (0: not known)
    instance: str = ""  # shrink: the instance terminated
    node: str = ""
    reason: str = ""
    #: shrink: the instance's type and zone, and when the controller first saw it in
    #: the group (its interval when EC2 no longer lists the instance).
    instance_type: str = ""
    zone: str = ""
    since: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "kind": self.kind,
            "from": self.desired_from,
            "to": self.desired_to,
            "maximum": self.maximum,
            "instance": self.instance,
            "node": self.node,
            "reason": self.reason,
            "instance_type": self.instance_type,
            "zone": self.zone,
            "since": iso(self.since),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], what: str) -> ScaleEvent:
        kind = str(_need(data, "kind", what))
        if kind not in SCALE_KINDS:
            raise LedgerError(f"{what}: kind {kind!r} is not one of {', '.join(SCALE_KINDS)}")
        try:
            return cls(
                at=parse_iso(_need(data, "at", what), f"{what} at"),
                kind=kind,
                desired_from=int(_need(data, "from", what)),
                desired_to=int(_need(data, "to", what)),
                maximum=int(data.get("maximum") or 0),
                instance=str(data.get("instance") or ""),
                node=str(data.get("node") or ""),
                reason=str(data.get("reason") or ""),
                instance_type=str(data.get("instance_type") or ""),
                zone=str(data.get("zone") or ""),
                since=_maybe_iso(data.get("since"), f"{what} since"),
            )
        except (TypeError, ValueError):
            raise LedgerError(f"{what}: from, to and maximum are whole numbers") from None


SCALE_KINDS = ("grow", "shrink")


@dataclass(frozen=True)
class Ledger:
    cluster: str
    region: str
    generated: datetime  # open intervals run to here
    instances: tuple[Instance, ...] = ()
    prices: tuple[PriceFact, ...] = ()
    jobs: tuple[Job, ...] = ()
    notes: tuple[str, ...] = field(default=())  # facts that could not be gathered, and why
    scaling: tuple[ScaleEvent, ...] = ()  # the workers' group's changes, oldest first

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "cluster": self.cluster,
            "region": self.region,
            "generated": iso(self.generated),
            "instances": [i.to_json() for i in self.instances],
            "prices": [p.to_json() for p in self.prices],
            "jobs": [j.to_json() for j in self.jobs],
            "scaling": [e.to_json() for e in self.scaling],
            "notes": list(self.notes),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"

    @classmethod
    def from_json(cls, data: Any) -> Ledger:
        if not isinstance(data, dict):
            raise LedgerError("a ledger is a JSON object")
        schema = data.get("schema")
        if schema != SCHEMA:
            raise LedgerError(f"schema {schema!r} is not {SCHEMA!r}")
        return cls(
            cluster=str(_need(data, "cluster", "ledger")),
            region=str(data.get("region", "")),
            generated=parse_iso(_need(data, "generated", "ledger"), "generated"),
            instances=_many(Instance.from_json, data.get("instances"), "instances"),
            prices=_many(PriceFact.from_json, data.get("prices"), "prices"),
            jobs=_many(Job.from_json, data.get("jobs"), "jobs"),
            notes=tuple(str(n) for n in data.get("notes") or []),
            scaling=_many(ScaleEvent.from_json, data.get("scaling"), "scaling"),
        )

    @classmethod
    def loads(cls, text: str) -> Ledger:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LedgerError(f"not JSON ({exc})") from None
        return cls.from_json(data)


def _need(data: Mapping[str, Any], key: str, what: str) -> Any:
    if not isinstance(data, Mapping):
        raise LedgerError(f"{what}: expected an object")
    if data.get(key) is None:
        raise LedgerError(f"{what}: {key!r} is missing")
    return data[key]


def _many(parse: Any, items: Iterable[Any] | None, what: str) -> tuple[Any, ...]:
    return tuple(parse(item, f"{what}[{n}]") for n, item in enumerate(items or []))
