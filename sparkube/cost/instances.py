"""The instances, volumes and addresses of the ledger: what AWS bills, from EC2 and from
the facts sparkube keeps in the cluster's bucket.

EC2 knows only each instance's latest start (``LaunchTime``) and, once it stopped or
was terminated, when (``StateTransitionReason``); it forgets a terminated instance
after about an hour. So the write commands (``up``, ``down``) that start, stop or end
instances merge what EC2 says into ``ledger/instances.json`` in the bucket at each
change (:func:`record_instances`), and the read commands merge EC2's current view into
those records in memory only (:func:`instance_facts`), writing nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sparkube.aws import tags as T
from sparkube.aws.instances import is_burstable
from sparkube.cost.ledger import (
    CONTROL_PLANE,
    ON_DEMAND,
    SPOT,
    WORKER,
    CreditCharge,
    Instance,
    Interval,
    LedgerError,
    Volume,
)

#: One object for all of the cluster's instances: one read and at most one write per
#: ``up`` or ``down``, however many workers (only one of them runs at a time).
KEY = "ledger/instances.json"
_REASON_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)")
RUNNING_STATES = ("pending", "running")


def transition_time(reason: str | None) -> datetime | None:
    """When an instance stopped or was terminated, from EC2's ``StateTransitionReason``
    ("User initiated (2026-12-06 10:00:00 GMT)")."""
    m = _REASON_TIME.search(reason or "")
    if not m:
        return None
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def cluster_instances(ec2: Any, cluster: str) -> list[Mapping[str, Any]]:
    """Every instance EC2 still shows for the cluster, terminated ones included."""
    items: list[Mapping[str, Any]] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=T.cluster_filter(cluster)):
        for reservation in page.get("Reservations", []):
            items.extend(reservation.get("Instances", []))
    return items


def _volumes(ec2: Any, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    if not ids:
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    try:
        pages = ec2.get_paginator("describe_volumes").paginate(VolumeIds=list(ids))
        for page in pages:
            for vol in page.get("Volumes", []):
                out[vol["VolumeId"]] = vol
    except Exception as exc:  # one deleted volume fails the whole call: ask one by one
        if "InvalidVolume.NotFound" not in str(exc):
            raise
        for vid in ids:
            with contextlib.suppress(Exception):
                for vol in ec2.describe_volumes(VolumeIds=[vid]).get("Volumes", []):
                    out[vol["VolumeId"]] = vol
    return out


def _credit_modes(ec2: Any, items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    ids = [
        str(i["InstanceId"])
        for i in items
        if is_burstable(str(i.get("InstanceType", "")))
        and i.get("State", {}).get("Name") != "terminated"
    ]
    if not ids:
        return {}
    response = ec2.describe_instance_credit_specifications(InstanceIds=ids)
    return {
        str(s["InstanceId"]): str(s["CpuCredits"])
        for s in response.get("InstanceCreditSpecifications", [])
    }


#: CloudWatch answers at most 1440 datapoints a call: 60 days of hours.
_CHUNK = timedelta(hours=1440)


def surplus_credits(
    cloudwatch: Any, instance_id: str, start: datetime, end: datetime
) -> tuple[CreditCharge, ...]:
    """The surplus CPU credits ``instance_id`` was charged, hour by hour, between start
    and end (CloudWatch ``AWS/EC2 CPUSurplusCreditsCharged``, kept 455 days at this
    period). Hours with nothing charged are left out."""
    charges: list[CreditCharge] = []
    at = start.replace(minute=0, second=0, microsecond=0)
    hour = timedelta(hours=1)
    end = end.replace(minute=0, second=0, microsecond=0) + hour  # whole hours, the last too
    while at < end:
        until = min(end, at + _CHUNK)
        response = cloudwatch.get_metric_statistics(
            Namespace="AWS/EC2",
            MetricName="CPUSurplusCreditsCharged",
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            StartTime=at,
            EndTime=until,
            Period=3600,
            Statistics=["Sum"],
        )
        for point in response.get("Datapoints", []):
            stamp, credits = point.get("Timestamp"), float(point.get("Sum") or 0.0)
            if isinstance(stamp, datetime) and credits > 0:
                stamp = stamp.astimezone(UTC)
                charges.append(CreditCharge(stamp, stamp + timedelta(hours=1), credits))
        at = until
    return tuple(sorted(charges, key=lambda c: c.start))


def _current(item: Mapping[str, Any], now: datetime) -> tuple[Interval | None, str]:
    """The interval EC2 knows (the latest start to its stop or termination), and a note
    when its end is not known."""
    state = str(item.get("State", {}).get("Name", ""))
    launched = item.get("LaunchTime")
    if not isinstance(launched, datetime):
        return None, ""
    launched = launched.astimezone(UTC)
    if state in RUNNING_STATES:
        return Interval(launched, None), ""
    ended = transition_time(item.get("StateTransitionReason"))
    if ended is None or ended < launched:
        return Interval(launched, None), (
            f"{item['InstanceId']} is {state} but EC2 does not say since when; counted as "
            "running up to now (an upper bound)"
        )
    return Interval(launched, ended), ""


def merge_intervals(
    recorded: Sequence[Interval], current: Interval | None, instance_id: str
) -> tuple[tuple[Interval, ...], list[str]]:
    """The recorded intervals brought up to date with EC2's current one."""
    notes: list[str] = []
    if current is None:
        return tuple(recorded), notes
    out: list[Interval] = []
    for i in sorted(recorded, key=lambda i: i.start):
        if i.start >= current.start:
            continue  # the same run (EC2 knows it better) or a glitch
        if i.end is None:
            notes.append(
                f"{instance_id} stopped between {i.start:%Y-%m-%d %H:%M} and "
                f"{current.start:%Y-%m-%d %H:%M} UTC without sparkube seeing when; counted "
                "as running until it started again (an upper bound)"
            )
            i = Interval(i.start, current.start)
        out.append(i)
    out.append(current)
    return tuple(out), notes


def _from_ec2(
    item: Mapping[str, Any],
    recorded: Instance | None,
    sizes: Mapping[str, tuple[float, int]],
    volumes: Mapping[str, Mapping[str, Any]],
    credits: Mapping[str, str],
    now: datetime,
) -> tuple[Instance, list[str]]:
    from sparkube.aws.instances import to_node

    node = to_node(item)
    iid = node.instance_id
    current, note = _current(item, now)
    running, notes = merge_intervals(recorded.running if recorded else (), current, iid)
    if note:
        notes.append(note)
    state = node.state
    ended = running[-1].end if running and state in ("shutting-down", "terminated") else None
    vcpus, memory = sizes.get(node.instance_type, (0.0, 0))
    if recorded is not None and not vcpus:
        vcpus, memory = recorded.vcpus, recorded.memory_bytes
    first = running[0].start if running else None
    vols: list[Volume] = []
    old = {v.volume_id: v for v in (recorded.volumes if recorded else ())}
    for mapping in item.get("BlockDeviceMappings") or []:
        vid = (mapping.get("Ebs") or {}).get("VolumeId")
        if not vid:
            continue
        vol = volumes.get(vid)
        kept = old.pop(vid, None)
        if vol is not None:
            created = vol.get("CreateTime")
            start = created.astimezone(UTC) if isinstance(created, datetime) else first
            vols.append(Volume(vid, str(vol.get("VolumeType", "gp3")), int(vol.get("Size", 0)),
                               (Interval(start or now, None),)))  # fmt: skip
        elif kept is not None:
            vols.append(kept)
    vols += old.values()  # recorded, gone from the instance: keep what was recorded
    if state in ("shutting-down", "terminated"):
        # deleted with the instance (sparkube's root volumes: DeleteOnTermination)
        vols = [
            v if v.existed[-1].end is not None
            else Volume(v.volume_id, v.volume_type, v.size_gb,
                        (*v.existed[:-1], Interval(v.existed[-1].start, ended or now)))
            for v in vols
        ]  # fmt: skip
    public = bool(item.get("PublicIpAddress")) or bool(recorded and recorded.public_ipv4)
    return (
        Instance(
            instance_id=iid,
            name=node.name,
            role=CONTROL_PLANE if node.role == CONTROL_PLANE else WORKER,
            instance_type=node.instance_type,
            market=SPOT if node.spot else ON_DEMAND,
            zone=node.availability_zone or (recorded.zone if recorded else ""),
            vcpus=vcpus,
            memory_bytes=memory,
            running=running,
            volumes=tuple(vols),
            public_ipv4=public,
            cpu_credits=credits.get(iid) or (recorded.cpu_credits if recorded else None),
        ),
        notes,
    )


def _with_credits(clients: Any, inst: Instance, now: datetime, notes: list[str]) -> Instance:
    """An unlimited-mode instance with the surplus credits it was charged (kept unknown,
    with a note, when CloudWatch cannot be read)."""
    if inst.cpu_credits != "unlimited" or not inst.running:
        return inst
    end = max((r.end or now for r in inst.running), default=now)
    try:
        charges = surplus_credits(
            clients.client("cloudwatch"), inst.instance_id, inst.running[0].start, end
        )
    except Exception as exc:
        notes.append(f"the surplus CPU credits of {inst.instance_id} could not be read ({exc})")
        return inst
    return dataclasses.replace(inst, surplus_credits=charges)


def recorded_instances(s3: Any, bucket: str) -> dict[str, Instance]:
    """The instance facts kept in the bucket (empty when there are none)."""
    from sparkube.aws.s3 import get_text

    text = get_text(s3, bucket, KEY)
    out: dict[str, Instance] = {}
    if not text:
        return out
    with contextlib.suppress(ValueError, AttributeError):
        items = json.loads(text).get("instances") or []
        for n, item in enumerate(items):
            with contextlib.suppress(LedgerError, ValueError, TypeError):
                inst = Instance.from_json(item, f"{KEY} instances[{n}]")
                out[inst.instance_id] = inst
    return out


def type_sizes(ec2: Any, types: Iterable[str]) -> dict[str, tuple[float, int]]:
    from sparkube.aws.instances import describe_types

    wanted = sorted({t for t in types if t})
    if not wanted:
        return {}
    return {
        name: (float(info.vcpus), info.memory_mib * 2**20)
        for name, info in describe_types(ec2, wanted).items()
    }


def instance_facts(
    clients: Any,
    cluster: str,
    bucket: str | None,
    now: datetime | None = None,
    recorded: Mapping[str, Instance] | None = None,
) -> tuple[list[Instance], list[str]]:
    """Every instance the cluster ever had that sparkube or EC2 knows of, with its
    billed intervals, volumes, address and credit mode. Reads only."""
    now = now or datetime.now(UTC)
    ec2 = clients.ec2
    if recorded is None:
        recorded = recorded_instances(clients.s3, bucket) if bucket else {}
    recorded = dict(recorded)
    items = cluster_instances(ec2, cluster)
    sizes = type_sizes(ec2, [str(i.get("InstanceType", "")) for i in items])
    vol_ids = [
        str((m.get("Ebs") or {}).get("VolumeId"))
        for i in items
        for m in i.get("BlockDeviceMappings") or []
        if (m.get("Ebs") or {}).get("VolumeId")
    ]
    volumes = _volumes(ec2, vol_ids)
    notes: list[str] = []
    try:
        credits = _credit_modes(ec2, items)
    except Exception as exc:
        credits = {}
        notes.append(f"the instances' CPU credit modes could not be read ({exc})")
    out: list[Instance] = []
    for item in items:
        inst, more = _from_ec2(
            item, recorded.pop(str(item["InstanceId"]), None), sizes, volumes, credits, now
        )
        out.append(inst)
        notes += more
    out = [_with_credits(clients, inst, now, notes) for inst in out]
    for inst in recorded.values():  # gone from EC2: what sparkube recorded
        if inst.running and inst.running[-1].end is None:
            notes.append(
                f"{inst.instance_id} ({inst.name}) is gone from EC2 and its end was not "
                "recorded; counted as running up to now (an upper bound)"
            )
        out.append(inst)
    out.sort(key=lambda i: (i.role != CONTROL_PLANE, i.running[0].start if i.running else now))
    return out, notes


def record_instances(clients: Any, cluster: str, bucket: str) -> bool:
    """Write the cluster's instance facts, brought up to date with EC2, to the bucket
    (the write commands call this after they start, stop or end instances). True when
    they changed."""
    from sparkube.aws.s3 import put_json

    recorded = recorded_instances(clients.s3, bucket)
    facts, _ = instance_facts(clients, cluster, bucket, recorded=recorded)
    if {i.instance_id: i for i in facts} == recorded:
        return False
    put_json(clients.s3, bucket, KEY, {"instances": [i.to_json() for i in facts]})
    return True
