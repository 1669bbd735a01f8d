"""The workers' Auto Scaling group and its launch template, both ``sparkube-NAME-workers``.

Workers are not launched one RunInstances at a time any more: ``up`` keeps a launch
template (the same AMI, type, key, security group, instance profile, IMDSv2 with hop
limit 2, encrypted root volume, CPU credit mode, shutdown behaviour, market and user
data the control plane's RunInstances gets, :func:`sparkube.aws.instances.instance_settings`)
and a group between the cluster's minimum and maximum. So a worker that goes (a spot
reclaim, a failed instance) is replaced by AWS, and a scaler can later change the
group's desired capacity without sparkube on a laptop.

Every step looks before it acts, so an interrupted ``up`` is finished by the next:

- the template is found by name; a version whose description carries the hash of what
  it should hold is reused, else a new version is made the default (``ClientToken``
  deterministic per content), so a settings change on resume never touches running
  workers, only the ones launched next;
- the group is found by name and created, or updated where its size or template
  version differs (the desired capacity only ever rises to the minimum, or falls to the
  maximum);
- ``up`` waits for the group to have its desired capacity in service and for those
  instances to run (waiters, no sleeps), then names each new one ``worker-K`` (the
  smallest K free) with its ``sparkube:node`` tag, which discovery, the approver's
  name rule and the phases after ``infra`` read as before.

With a TTL, a scheduled action sets the group to zero at the expiry time: the workers
power themselves off then (the TTL timer), and a group would otherwise replace them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from sparkube.aws import instances
from sparkube.aws import tags as T
from sparkube.aws.errors import error_message, is_code
from sparkube.errors import CloudError
from sparkube.model import Node, WorkerGroup

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
#: Seconds after launch before the group's EC2 health check counts.
HEALTH_CHECK_GRACE_S = 300
#: The scheduled action that empties the group at the cluster's expiry (``--ttl``).
TTL_ACTION = "sparkube-ttl"
#: How long ``up`` waits for the group to have its instances in service (5 s polls).
WAIT_DELAY_S = 5
WAIT_ATTEMPTS = 120

_WAITERS = WaiterModel(
    {
        "version": 2,
        "waiters": {
            "GroupAtDesiredCapacity": {
                "operation": "DescribeAutoScalingGroups",
                "delay": WAIT_DELAY_S,
                "maxAttempts": WAIT_ATTEMPTS,
                "acceptors": [
                    {
                        "matcher": "path",
                        "argument": "length(AutoScalingGroups[0].Instances"
                        "[?LifecycleState=='InService']) >= AutoScalingGroups[0].DesiredCapacity",
                        "expected": True,
                        "state": "success",
                    },
                    {
                        "matcher": "path",
                        "argument": "length(AutoScalingGroups) == `0`",
                        "expected": True,
                        "state": "failure",
                    },
                ],
            },
            # (botocore ships no waiter for Auto Scaling)
            "GroupNotExists": {
                "operation": "DescribeAutoScalingGroups",
                "delay": WAIT_DELAY_S,
                "maxAttempts": WAIT_ATTEMPTS,
                "acceptors": [
                    {
                        "matcher": "path",
                        "argument": "length(AutoScalingGroups) == `0`",
                        "expected": True,
                        "state": "success",
                    }
                ],
            },
        },
    }
)


def group_name(cluster: str) -> str:
    return f"sparkube-{cluster}-workers"


template_name = group_name


def _describe_template(ec2: Any, cluster: str) -> dict[str, Any] | None:
    try:
        found = ec2.describe_launch_templates(LaunchTemplateNames=[template_name(cluster)])
    except Exception as exc:
        if is_code(exc, "InvalidLaunchTemplateName.NotFoundException", "NotFoundException"):
            return None
        raise
    items = found.get("LaunchTemplates", [])
    return items[0] if items else None


def find_template(ec2: Any, cluster: str) -> str | None:
    """The id of the cluster's launch template, if there is one (its tag checked)."""
    item = _describe_template(ec2, cluster)
    if item is None or T.from_aws(item.get("Tags")).get(T.CLUSTER) not in (None, cluster):
        return None
    return str(item["LaunchTemplateId"])


def on_demand_shares(item: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """A group's on-demand base and percentage above it, from its MixedInstancesPolicy
    as DescribeAutoScalingGroups gives it (AWS's defaults, 0 and 100, where absent);
    (None, None) for a group of one market (no policy). Read by ``up`` and by the
    controller alike."""
    mixed = item.get("MixedInstancesPolicy")
    if not mixed:
        return None, None
    share = mixed.get("InstancesDistribution") or {}
    return (
        int(share.get("OnDemandBaseCapacity", 0)),
        int(share.get("OnDemandPercentageAboveBaseCapacity", 100)),
    )


def _to_group(item: Mapping[str, Any]) -> WorkerGroup:
    mixed = item.get("MixedInstancesPolicy") or {}
    template = (
        item.get("LaunchTemplate")
        or (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
        or {}
    )
    base, above = on_demand_shares(item)
    return WorkerGroup(
        name=str(item["AutoScalingGroupName"]),
        min_size=int(item["MinSize"]),
        max_size=int(item["MaxSize"]),
        desired=int(item["DesiredCapacity"]),
        template_version=str(template["Version"]) if template.get("Version") else None,
        instance_ids=tuple(str(i["InstanceId"]) for i in item.get("Instances", [])),
        status=item.get("Status") or None,
        on_demand_base=base,
        on_demand_above=above,
    )


def find_group(autoscaling: Any, cluster: str) -> WorkerGroup | None:
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name(cluster)])
    items = found.get("AutoScalingGroups", [])
    return _to_group(items[0]) if items else None


def template_hash(data: Mapping[str, Any]) -> str:
    """What a template version holds, in its description: a resume compares this."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sparkube " + hashlib.sha256(text.encode()).hexdigest()[:32]


def _version(ec2: Any, template_id: str, which: str) -> dict[str, Any]:
    versions = ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=[which]
    )["LaunchTemplateVersions"]
    return dict(versions[0])


def ensure_template(
    ec2: Any, cluster: str, data: Mapping[str, Any], tags: Mapping[str, str]
) -> tuple[str, str]:
    """The launch template holding ``data`` as its default version: (id, version)."""
    description = template_hash(data)
    token = description.replace(" ", "-")[:64]
    item = _describe_template(ec2, cluster)
    if item is None:
        try:
            made = ec2.create_launch_template(
                LaunchTemplateName=template_name(cluster),
                LaunchTemplateData=dict(data),
                VersionDescription=description,
                ClientToken=token,
                TagSpecifications=[T.spec_for("launch-template", tags)],
            )["LaunchTemplate"]
            return str(made["LaunchTemplateId"]), str(made["LatestVersionNumber"])
        except Exception as exc:
            if not is_code(exc, "InvalidLaunchTemplateName.AlreadyExistsException"):
                raise
            item = _describe_template(ec2, cluster)  # made by a run just before
            assert item is not None
    template_id = str(item["LaunchTemplateId"])
    default = str(item["DefaultVersionNumber"])
    if _version(ec2, template_id, default).get("VersionDescription") == description:
        return template_id, default
    latest = str(item["LatestVersionNumber"])
    if latest != default and _version(ec2, template_id, latest).get("VersionDescription") == (
        description
    ):
        number = latest  # made by an interrupted run, not yet the default
    else:
        made = ec2.create_launch_template_version(
            LaunchTemplateId=template_id,
            LaunchTemplateData=dict(data),
            VersionDescription=description,
            ClientToken=token,
        )["LaunchTemplateVersion"]
        number = str(made["VersionNumber"])
    ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=number)
    log.info("launch template %s: version %s is the default now", template_id, number)
    return template_id, number


def _profile_not_visible(exc: BaseException) -> bool:
    """What CreateAutoScalingGroup answers while a new instance profile is not visible
    to EC2 yet ("You must use a valid fully-formed launch template. Value (...) for
    parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name")."""
    return is_code(exc, "ValidationError", "InvalidParameterValue") and bool(
        re.search(r"iamInstanceProfile|instance profile", error_message(exc), re.I)
    )


#: With spot workers, the group keeps this many on-demand workers (the first it
#: launches) before any spot one: the drivers' pool (see :data:`sparkube.model.MARKET_LABEL`).
ON_DEMAND_BASE = 1
#: AWS's recommended spot allocation: the pools least likely to be interrupted soon,
#: among the cheapest.
SPOT_ALLOCATION = "price-capacity-optimized"


def mixed_policy(template: Mapping[str, str], instance_type: str, base: int) -> dict[str, Any]:
    """The group's ``MixedInstancesPolicy`` for spot workers: ``base`` on-demand
    instances, every one above them spot. The template then carries no market options
    (Auto Scaling refuses a template asking for spot in a mixed group)."""
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": dict(template),
            "Overrides": [{"InstanceType": instance_type}],
        },
        "InstancesDistribution": {
            "OnDemandAllocationStrategy": "prioritized",
            "OnDemandBaseCapacity": base,
            "OnDemandPercentageAboveBaseCapacity": 0,
            "SpotAllocationStrategy": SPOT_ALLOCATION,
        },
    }


def ensure_group(
    autoscaling: Any,
    cluster: str,
    *,
    template_id: str,
    version: str,
    min_size: int,
    max_size: int,
    subnet_id: str,
    tags: Mapping[str, str],
    sleep: Sleep,
    spot_type: str | None = None,
) -> tuple[WorkerGroup, bool]:
    """The group between ``min_size`` and ``max_size`` launching ``version`` of the
    template: (the group, whether this call changed it). ``spot_type``: spot workers of
    that instance type above :data:`ON_DEMAND_BASE` on-demand ones (:func:`mixed_policy`)."""
    name = group_name(cluster)
    group = find_group(autoscaling, cluster)
    if group is not None and group.status:
        raise CloudError(
            f"The worker group {name} is being deleted ({group.status}); wait until "
            "'sparkube down' has finished, then run 'sparkube up' again."
        )
    template = {"LaunchTemplateId": template_id, "Version": version}
    base = ON_DEMAND_BASE if spot_type else None
    above = 0 if spot_type else None
    launch: dict[str, Any] = (
        {"MixedInstancesPolicy": mixed_policy(template, spot_type, ON_DEMAND_BASE)}
        if spot_type
        else {"LaunchTemplate": template}
    )
    if group is None:
        delays = list(instances.PROFILE_PROPAGATION_DELAYS)
        while True:
            try:
                autoscaling.create_auto_scaling_group(
                    AutoScalingGroupName=name,
                    **launch,
                    MinSize=min_size,
                    MaxSize=max_size,
                    DesiredCapacity=min_size,
                    VPCZoneIdentifier=subnet_id,
                    HealthCheckType="EC2",
                    HealthCheckGracePeriod=HEALTH_CHECK_GRACE_S,
                    Tags=[
                        {
                            "ResourceId": name,
                            "ResourceType": "auto-scaling-group",
                            "Key": key,
                            "Value": value,
                            "PropagateAtLaunch": True,
                        }
                        for key, value in tags.items()
                    ],
                )
                break
            except Exception as exc:
                if is_code(exc, "AlreadyExists"):
                    break  # made by a run just before: checked below
                if _profile_not_visible(exc) and delays:
                    delay = delays.pop(0)
                    log.info("instance profile not visible to EC2 yet; retrying in %.0f s", delay)
                    sleep(delay)
                    continue
                raise
        group = find_group(autoscaling, cluster)
        if group is None:
            raise CloudError(
                f"AWS did not show the worker group {name} it had just made; run "
                "'sparkube up' again."
            )
        if (group.min_size, group.max_size, group.template_version, group.on_demand_base,
                group.on_demand_above) == (min_size, max_size, version, base, above):  # fmt: skip
            return group, True
    update: dict[str, Any] = {}
    if group.min_size != min_size:
        update["MinSize"] = min_size
    if group.max_size != max_size:
        update["MaxSize"] = max_size
    desired = min(max(group.desired, min_size), max_size)
    if desired != group.desired:
        update["DesiredCapacity"] = desired
    if (group.template_version, group.on_demand_base, group.on_demand_above) != (
        version,
        base,
        above,
    ):  # (a fall-back to on-demand for want of spot capacity ends here too)
        update.update(launch)
    if not update:
        return group, False
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, **update)
    log.info("worker group %s updated: %s", name, sorted(update))
    found = find_group(autoscaling, cluster)
    return (found or group), True


def schedule_expiry(autoscaling: Any, cluster: str, expires_at: datetime) -> bool:
    """At the cluster's expiry, the group goes to zero (its workers power themselves off
    then; the group must not replace them). Looks first; whether it wrote."""
    found = autoscaling.describe_scheduled_actions(
        AutoScalingGroupName=group_name(cluster), ScheduledActionNames=[TTL_ACTION]
    ).get("ScheduledUpdateGroupActions", [])
    for action in found:
        start = action.get("StartTime")
        if (
            isinstance(start, datetime)
            and start == expires_at
            and (action.get("MinSize"), action.get("MaxSize"), action.get("DesiredCapacity"))
            == (0, 0, 0)
        ):
            return False
    autoscaling.put_scheduled_update_group_action(
        AutoScalingGroupName=group_name(cluster),
        ScheduledActionName=TTL_ACTION,
        StartTime=expires_at,
        MinSize=0,
        MaxSize=0,
        DesiredCapacity=0,
    )
    return True


#: What Auto Scaling says when EC2 has no spot capacity for the group (the activity's
#: status message: "Could not launch Spot Instances. InsufficientInstanceCapacity - There
#: is no Spot capacity available that matches your request", "MaxSpotInstanceCountExceeded").
SPOT_SHORTAGE = re.compile(
    r"Could not launch Spot Instances|no Spot capacity|MaxSpotInstanceCountExceeded", re.I
)
#: Waiter rounds of this many polls (1 minute) between looks at the group's failures.
ROUND_ATTEMPTS = 12


def fall_back_to_on_demand(autoscaling: Any, cluster: str) -> bool:
    """Let a mixed group launch on-demand instances above its base too (EC2 has no spot
    capacity for it); whether it changed. The next ``up`` puts spot back."""
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name(cluster)])
    items = found.get("AutoScalingGroups", [])
    _, above = on_demand_shares(items[0]) if items else (None, None)
    if above is None or above >= 100:
        return False
    mixed = dict(items[0]["MixedInstancesPolicy"])
    share = dict(mixed.get("InstancesDistribution") or {})
    share["OnDemandPercentageAboveBaseCapacity"] = 100
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group_name(cluster),
        MixedInstancesPolicy={"LaunchTemplate": mixed["LaunchTemplate"],
                              "InstancesDistribution": share},
    )  # fmt: skip
    return True


def wait_in_service(
    autoscaling: Any, cluster: str, *, on_fallback: Callable[[str], None] | None = None
) -> WorkerGroup:
    """Wait until the group has its desired capacity in service; say why it has not
    (its latest failed launch) when it does not within 10 minutes. Each minute without
    it, a spot group whose latest launch failed for want of spot capacity is let launch
    on-demand instead (:func:`fall_back_to_on_demand`; ``on_fallback`` gets AWS's
    words), once."""
    name = group_name(cluster)
    waiter = create_waiter_with_client("GroupAtDesiredCapacity", _WAITERS, autoscaling)
    left = WAIT_ATTEMPTS
    fell_back = False
    while True:
        rounds = min(ROUND_ATTEMPTS, left)
        try:
            waiter.wait(
                AutoScalingGroupNames=[name],
                WaiterConfig={"Delay": WAIT_DELAY_S, "MaxAttempts": rounds},
            )
            break
        except WaiterError as exc:
            left -= rounds
            gone = "Max attempts exceeded" not in str(exc)
            why = latest_failure(autoscaling, name)
            if not gone and not fell_back and why and SPOT_SHORTAGE.search(why):
                fell_back = True
                if fall_back_to_on_demand(autoscaling, cluster):
                    log.warning("worker group %s: no spot capacity (%s): on-demand", name, why)
                    if on_fallback is not None:
                        on_fallback(why)
                    left = max(left, ROUND_ATTEMPTS)
                    continue
            if left > 0 and not gone:
                continue
            raise CloudError(
                f"The worker group {name} did not reach its size within "
                f"{WAIT_DELAY_S * WAIT_ATTEMPTS // 60} minutes ({why or exc}); "
                "run 'sparkube up' again to keep waiting, or 'sparkube down' to remove "
                "the cluster."
            ) from exc
    group = find_group(autoscaling, cluster)
    if group is None:
        raise CloudError(f"The worker group {name} is gone; run 'sparkube up' again.")
    return group


def latest_failure(autoscaling: Any, name: str) -> str | None:
    """The message of the group's latest failed or cancelled scaling activity."""
    try:
        found = autoscaling.describe_scaling_activities(AutoScalingGroupName=name, MaxRecords=5)
    except Exception as exc:
        log.info("scaling activities not readable: %s", exc)
        return None
    for activity in found.get("Activities", []):
        if activity.get("StatusCode") in ("Failed", "Cancelled"):
            return str(activity.get("StatusMessage") or activity.get("Description") or "")
    return None


def name_new_workers(
    ec2: Any, cluster: str, nodes: Sequence[Node], *, launched: Collection[str]
) -> list[str]:
    """Tag each worker of ``launched`` (the instances this ``up`` saw the group launch)
    that is not named yet ``worker-K`` (the smallest K no live worker has), oldest
    first; return the names given. Workers launched otherwise (the controller grew the
    group, or an ``up`` stopped before naming them) keep their instance id as their
    name: they join by themselves under it (``sparkube.nodes.selfjoin``), and a name
    given later would not be their node's."""
    taken = {n.name for n in nodes if n.role == "worker"}
    unnamed = sorted(
        (
            n
            for n in nodes
            if n.instance_id in launched
            and instances.is_unnamed(n.tags)
            and n.state in instances.LIVE_STATES
        ),
        key=lambda n: (n.launch_time.timestamp() if n.launch_time else 0.0, n.instance_id),
    )
    given: list[str] = []
    number = 1
    for node in unnamed:
        while f"worker-{number}" in taken:
            number += 1
        name = f"worker-{number}"
        taken.add(name)
        ec2.create_tags(
            Resources=[node.instance_id],
            Tags=T.to_aws({T.NODE: name, T.NAME: f"{cluster}-{name}"}),
        )
        given.append(name)
    return given


def start_delete(autoscaling: Any, cluster: str, group: WorkerGroup) -> None:
    """Ask AWS to delete the group and its instances (ForceDelete); idempotent."""
    if group.status:
        return  # already being deleted
    try:
        autoscaling.delete_auto_scaling_group(
            AutoScalingGroupName=group_name(cluster), ForceDelete=True
        )
    except Exception as exc:
        if not (is_code(exc, "ValidationError") and "not found" in error_message(exc)):
            raise


def finish_delete(
    autoscaling: Any, ec2: Any, cluster: str, *, group: WorkerGroup | None
) -> list[str]:
    """Wait until the group is gone (AWS removes it once its instances terminated),
    then delete the launch template; what was deleted. Idempotent."""
    deleted: list[str] = []
    name = group_name(cluster)
    if group is not None:
        waiter = create_waiter_with_client("GroupNotExists", _WAITERS, autoscaling)
        waiter.wait(AutoScalingGroupNames=[name])
        deleted.append(f"worker group {name}")
    template_id = find_template(ec2, cluster)
    if template_id is not None:
        try:
            ec2.delete_launch_template(LaunchTemplateId=template_id)
        except Exception as exc:
            if not is_code(exc, "InvalidLaunchTemplateId.NotFound"):
                raise
        deleted.append(f"launch template {template_name(cluster)}")
    return deleted
