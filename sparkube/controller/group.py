"""The controller's hands on the worker group: read it as :mod:`scaling` sees it, and
carry out a :class:`~sparkube.controller.scaling.ScalePlan` with the two Auto Scaling
calls it needs (the control plane's instance role allows just these, on this group).

``SetDesiredCapacity`` grows the group (``HonorCooldown`` off: the queue, not a
cooldown, says when). ``TerminateInstanceInAutoScalingGroup`` with
``ShouldDecrementDesiredCapacity`` removes the exact idle instance the plan names and
lowers the desired count with it, so the group does not launch a replacement; letting
Auto Scaling pick which instance goes could take a node holding an executor's shuffle
files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sparkube.aws.errors import is_code
from sparkube.aws.workergroup import on_demand_shares
from sparkube.controller.scaling import Group, GroupInstance, ScalePlan
from sparkube.cost.ledger import ScaleEvent

log = logging.getLogger("sparkube.controller")


def read_group(autoscaling: Any, name: str) -> Group | None:
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    items = found.get("AutoScalingGroups") or []
    if not items:
        return None
    item = items[0]
    return Group(
        name=str(item["AutoScalingGroupName"]),
        minimum=int(item["MinSize"]),
        maximum=int(item["MaxSize"]),
        desired=int(item["DesiredCapacity"]),
        instances=tuple(
            GroupInstance(
                str(i["InstanceId"]),
                str(i.get("LifecycleState") or ""),
                str(i.get("InstanceType") or ""),
                str(i.get("AvailabilityZone") or ""),
            )
            for i in item.get("Instances") or []
        ),
        on_demand_base=on_demand_shares(item)[0],
    )


def carry_out(
    autoscaling: Any,
    group: Group,
    plan: ScalePlan,
    *,
    before_terminate: Callable[[str], None] = lambda _node: None,
    after_terminate: Callable[[str], None] = lambda _node: None,
    not_terminated: Callable[[str], None] = lambda _node: None,
    events: list[ScaleEvent] | None = None,
    first_seen: Mapping[str, float] | None = None,
) -> list[str]:
    """Make the plan's changes; what was done, one line each (for the log). A change
    Auto Scaling refuses for now (an activity in progress, a size it will not take) is
    logged and left for the next cycle, which starts from the group as it then is.
    ``before_terminate(node)`` / ``after_terminate(node)`` run around each instance's
    termination (cordon the node first; remove its Node object once AWS took the
    instance), ``not_terminated(node)`` when AWS refused it for now (uncordon).
    ``events``: each change AWS took is appended to it, for the ledger (with the
    terminated instance's type, zone and ``first_seen`` time, epoch seconds)."""
    import datetime as dt

    done: list[str] = []
    desired_now = group.desired

    def said(*words: str) -> str:
        return next((r for r in plan.reasons if all(w in r for w in words)), "")

    def record(event: ScaleEvent) -> None:
        if events is not None:
            events.append(event)

    if plan.desired is not None and plan.desired != group.desired:
        desired = max(group.minimum, min(group.maximum, plan.desired))
        try:
            autoscaling.set_desired_capacity(
                AutoScalingGroupName=group.name, DesiredCapacity=desired, HonorCooldown=False
            )
            done.append(f"group {group.name}: desired {group.desired} -> {desired}")
            record(ScaleEvent(dt.datetime.now(dt.UTC), "grow", group.desired, desired,
                              maximum=group.maximum, reason=said("->")))  # fmt: skip
            desired_now = desired
        except Exception as exc:
            if not is_code(exc, "ScalingActivityInProgress", "ValidationError"):
                raise
            log.warning("group %s: desired %d not set now: %s", group.name, desired, exc)
    for instance, node in plan.terminate:
        before_terminate(node)
        try:
            autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=instance, ShouldDecrementDesiredCapacity=True
            )
        except Exception as exc:
            not_terminated(node)
            if not is_code(exc, "ScalingActivityInProgress", "ValidationError"):
                raise
            log.warning("group %s: %s not terminated now: %s", group.name, instance, exc)
            continue
        done.append(f"group {group.name}: worker {node} ({instance}) terminated")
        member = next((i for i in group.instances if i.instance_id == instance), None)
        seen = (first_seen or {}).get(instance)
        record(
            ScaleEvent(
                dt.datetime.now(dt.UTC), "shrink", desired_now, desired_now - 1,
                maximum=group.maximum, instance=instance, node=node, reason=said(instance),
                instance_type=member.instance_type if member else "",
                zone=member.zone if member else "",
                since=dt.datetime.fromtimestamp(seen, dt.UTC) if seen else None,
            )
        )  # fmt: skip
        desired_now -= 1
        after_terminate(node)
    return done
