"""EC2 instances: type checks, the Ubuntu AMI, the control plane's RunInstances, the
launch settings the workers' launch template shares with it, waiters.

Every read of the cluster's nodes is one filtered ``DescribeInstances`` (by the cluster
tag), so the number of calls does not grow with the number of workers. A node's name is
its ``sparkube:node`` tag: the control plane's is set at launch, a worker of the group
(:mod:`sparkube.aws.workergroup`) gets ``worker-K`` right after the group launched it.
Workers launched by ``RunInstances`` before the group existed share their tags and are
named ``worker-{first + AmiLaunchIndex}`` (tag ``sparkube:first-worker``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sparkube.aws import tags as T
from sparkube.aws.errors import error_message, is_code, vcpu_error
from sparkube.errors import CloudError, ConfigError
from sparkube.model import CONTROL_PLANE, WORKER, Node, Role

log = logging.getLogger(__name__)

#: kubeadm's minimum (FACTS-KUBEADM.md): 2 vCPUs and 2 GiB.
MIN_VCPUS = 2
MIN_MEMORY_MIB = 2048
UBUNTU_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id"
)
#: Burstable families (t2, t3, t3a, t4g, ...): they earn CPU credits, and take a
#: CreditSpecification at launch. Other families have none and ignore the setting.
BURSTABLE = re.compile(r"^t\d[a-z]*\.")
#: Every node's root volume (encrypted, deleted with the instance).
ROOT_VOLUME_TYPE = "gp3"
LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
#: How long to retry a launch while EC2 cannot see a new instance profile yet.
PROFILE_PROPAGATION_DELAYS = (2.0, 4.0, 8.0, 15.0, 15.0, 20.0, 30.0, 30.0)

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class TypeInfo:
    name: str
    vcpus: int
    memory_mib: int
    architectures: tuple[str, ...]

    @property
    def arch(self) -> str:
        """Ubuntu's architecture name (``amd64`` or ``arm64``)."""
        return "arm64" if "arm64" in self.architectures else "amd64"


def is_burstable(instance_type: str) -> bool:
    return BURSTABLE.match(instance_type) is not None


def describe_types(ec2: Any, names: Iterable[str]) -> dict[str, TypeInfo]:
    """Facts about each instance type; unknown types are a :class:`ConfigError`."""
    wanted = sorted(set(names))
    try:
        response = ec2.describe_instance_types(InstanceTypes=wanted)
    except Exception as exc:
        if is_code(exc, "InvalidInstanceType"):
            raise ConfigError(
                f"Unknown EC2 instance type in {', '.join(wanted)} ({error_message(exc)}); "
                "use a type like t3.medium or m7i.large."
            ) from exc
        raise
    out: dict[str, TypeInfo] = {}
    for item in response.get("InstanceTypes", []):
        out[item["InstanceType"]] = TypeInfo(
            name=item["InstanceType"],
            vcpus=int(item["VCpuInfo"]["DefaultVCpus"]),
            memory_mib=int(item["MemoryInfo"]["SizeInMiB"]),
            architectures=tuple(item.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
        )
    missing = [n for n in wanted if n not in out]
    if missing:
        raise ConfigError(
            f"Unknown EC2 instance type {', '.join(missing)}; use a type like t3.medium."
        )
    return out


def check_kubeadm_minimum(info: TypeInfo, flag: str) -> None:
    if info.vcpus < MIN_VCPUS or info.memory_mib < MIN_MEMORY_MIB:
        raise ConfigError(
            f"{flag} {info.name} has {info.vcpus} vCPU and {info.memory_mib / 1024:g} GiB; "
            f"kubeadm needs at least {MIN_VCPUS} vCPUs and {MIN_MEMORY_MIB // 1024} GiB "
            "(try t3.medium)."
        )


def check_offered(ec2: Any, names: Iterable[str], region: str, zone: str | None) -> None:
    """Fail unless every type is offered in the region (or the subnet's zone)."""
    wanted = sorted(set(names))
    kind, location = ("availability-zone", zone) if zone else ("region", region)
    response = ec2.describe_instance_type_offerings(
        LocationType=kind,
        Filters=[
            {"Name": "instance-type", "Values": wanted},
            {"Name": "location", "Values": [location]},
        ],
    )
    offered = {o["InstanceType"] for o in response.get("InstanceTypeOfferings", [])}
    missing = [n for n in wanted if n not in offered]
    if missing:
        raise ConfigError(
            f"Instance type {', '.join(missing)} is not offered in {location}; choose "
            "another --instance-type or region."
        )


@dataclass(frozen=True)
class AmiInfo:
    image_id: str
    root_device: str
    architecture: str


def resolve_ami(ssm: Any, ec2: Any, *, arch: str, ami: str | None) -> AmiInfo:
    """The AMI to boot: ``--ami``, else Ubuntu 24.04 for ``arch`` from Canonical's SSM."""
    image_id = ami
    if image_id is None:
        name = UBUNTU_PARAMETER.format(arch=arch)
        try:
            image_id = str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except Exception as exc:
            if is_code(exc, "ParameterNotFound"):
                raise CloudError(
                    f"The Ubuntu 24.04 AMI parameter {name} is not available in "
                    f"{ssm.meta.region_name}; pass --ami with an Ubuntu 24.04 AMI id."
                ) from exc
            raise
    images = ec2.describe_images(ImageIds=[image_id]).get("Images", [])
    if not images:
        raise ConfigError(f"AMI {image_id} does not exist in {ec2.meta.region_name}; check --ami.")
    image = images[0]
    return AmiInfo(
        image_id, str(image.get("RootDeviceName") or "/dev/sda1"), str(image.get("Architecture"))
    )


def client_token(cluster: str, group_id: str, role: Role, first: int, count: int) -> str:
    """Deterministic for one launch of one cluster incarnation (the group id changes
    after ``down``), so a retried ``up`` never launches the same batch twice."""
    digest = hashlib.sha256(f"{cluster}:{group_id}:{role}:{first}:{count}".encode()).hexdigest()
    return f"sparkube-{digest[:40]}"


@dataclass(frozen=True)
class LaunchRequest:
    """One RunInstances call: ``count`` identical nodes of one role."""

    cluster: str
    role: Role
    count: int
    first_worker: int
    instance_type: str
    ami: AmiInfo
    key_name: str
    group_id: str
    instance_profile: str
    subnet_id: str | None
    user_data: bytes
    root_volume_gb: int
    spot: bool
    terminate_on_shutdown: bool
    tags: Mapping[str, str]
    #: vCPUs of one instance (for quota messages).
    vcpus: int = 0
    #: The VPC, when no subnet was given: where to look for another Availability Zone
    #: when EC2 has no capacity in the one it picked (see :func:`launch`).
    vpc_id: str | None = None
    #: CPU credit mode (``standard`` or ``unlimited``), sent only for burstable types:
    #: AWS launches t3, t3a and t4g as ``unlimited`` unless told, and surplus credits
    #: are billed beyond the hourly price.
    cpu_credits: str | None = None


def role_tags(cluster: str, role: Role, first_worker: int | None = None) -> dict[str, str]:
    """The tags that say what a node is: the control plane by name; a worker by role
    only (its group names it after launch) or, launched by RunInstances, by the number
    of the first worker of its batch."""
    if role == CONTROL_PLANE:
        return {T.ROLE: CONTROL_PLANE, T.NODE: CONTROL_PLANE, T.NAME: f"{cluster}-control-plane"}
    tags = {T.ROLE: WORKER, T.NAME: f"{cluster}-worker"}
    if first_worker is not None:
        tags[T.FIRST_WORKER] = str(first_worker)
    return tags


def instance_settings(req: LaunchRequest) -> dict[str, Any]:
    """What every node is launched with, by RunInstances (the control plane) and by the
    workers' launch template alike: the AMI and type, key, group, role, IMDSv2 with hop
    limit 2, the encrypted root volume, the CPU credit mode of burstable types, the
    shutdown behaviour and the market. ``UserData`` is the raw bytes (RunInstances
    encodes them; a launch template takes them base64-encoded)."""
    params: dict[str, Any] = {
        "ImageId": req.ami.image_id,
        "InstanceType": req.instance_type,
        "KeyName": req.key_name,
        "SecurityGroupIds": [req.group_id],
        "IamInstanceProfile": {"Name": req.instance_profile},
        "UserData": req.user_data,
        "MetadataOptions": {
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 2,
            "HttpEndpoint": "enabled",
            # the self-join reads its sparkube:node tag there (sparkube.nodes.selfjoin)
            "InstanceMetadataTags": "enabled",
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": req.ami.root_device,
                "Ebs": {
                    "VolumeType": ROOT_VOLUME_TYPE,
                    "VolumeSize": req.root_volume_gb,
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
    }
    if req.cpu_credits and is_burstable(req.instance_type):
        params["CreditSpecification"] = {"CpuCredits": req.cpu_credits}
    if req.terminate_on_shutdown:
        params["InstanceInitiatedShutdownBehavior"] = "terminate"
    if req.spot:
        # one-time and terminate: the only spot options an Auto Scaling group accepts
        params["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            },
        }
    return params


def node_tags(
    req: LaunchRequest, *, first_worker: int | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(instance tags, volume tags) of a launch."""
    role = role_tags(req.cluster, req.role, first_worker)
    instance_tags = {**req.tags, **role}
    volume_tags = {**req.tags, T.ROLE: req.role, T.NAME: role[T.NAME]}
    return instance_tags, volume_tags


def launch_parameters(req: LaunchRequest) -> dict[str, Any]:
    cluster = req.cluster
    instance_tags, volume_tags = node_tags(
        req, first_worker=None if req.role == CONTROL_PLANE else req.first_worker
    )
    tag_specs = [
        T.spec_for("instance", instance_tags),
        T.spec_for("volume", volume_tags),
        T.spec_for("network-interface", volume_tags),
    ]
    params: dict[str, Any] = {
        **instance_settings(req),
        "MinCount": req.count,
        "MaxCount": req.count,
        "ClientToken": client_token(cluster, req.group_id, req.role, req.first_worker, req.count),
        "TagSpecifications": tag_specs,
    }
    if req.subnet_id:
        params["SubnetId"] = req.subnet_id
    if req.spot:
        tag_specs.append(T.spec_for("spot-instances-request", volume_tags))
    return params


def template_data(req: LaunchRequest) -> dict[str, Any]:
    """The workers' ``LaunchTemplateData``: :func:`instance_settings` with the user data
    base64-encoded and the tags of the group's instances and their volumes (the group
    names each worker after launch)."""
    instance_tags, volume_tags = node_tags(req, first_worker=None)
    data = instance_settings(req)
    # The market is the group's (its MixedInstancesPolicy: on-demand first, then spot):
    # Auto Scaling refuses a template asking for spot in a mixed group.
    data.pop("InstanceMarketOptions", None)
    data["UserData"] = base64.b64encode(req.user_data).decode()
    data["TagSpecifications"] = [
        T.spec_for("instance", instance_tags),
        T.spec_for("volume", volume_tags),
    ]
    return data


def _profile_not_visible(exc: BaseException) -> bool:
    return is_code(exc, "InvalidParameterValue") and bool(
        re.search(r"iam instance profile|instance profile", error_message(exc), re.I)
    )


#: Launches of the same batch after earlier ones were terminated (see :func:`launch`).
MAX_TOKEN_GENERATIONS = 20


def launch(
    ec2: Any, req: LaunchRequest, *, sleep: Sleep, note: Callable[[str], None] | None = None
) -> list[str]:
    """Run one batch; when EC2 has no capacity for it in the Availability Zone it chose
    and no subnet was given, try the VPC's other zones (those AWS names first).

    Why: ``InsufficientInstanceCapacity`` is per type and zone, and AWS's own advice is
    to ask another zone; a user who left the subnet to EC2 did not choose the zone, so
    sparkube may. A subnet given with ``--subnet-id`` is kept: the error then says what
    to change. One batch always lands in one zone (one RunInstances call); nodes of a
    cluster may end up in two zones, which costs cross-zone traffic, not correctness.
    Each zone's attempt has its own deterministic ClientToken.
    """
    params = launch_parameters(req)
    try:
        return _run(ec2, req, params, sleep=sleep)
    except Exception as exc:
        if not is_code(exc, *CAPACITY_CODES) or req.subnet_id or not req.vpc_id:
            raise
        failed_zone, suggested = capacity_zones(error_message(exc))
        candidates = other_zone_subnets(ec2, req.vpc_id, failed_zone, suggested)
        tried = [failed_zone or "the zone EC2 chose"]
        for subnet_id, zone in candidates:
            if note is not None:
                note(f"no {req.instance_type} capacity in {tried[-1]}; trying {zone}")
            zone_params = {
                **params,
                "SubnetId": subnet_id,
                "ClientToken": f"{params['ClientToken'][:49]}-"
                + hashlib.sha256(subnet_id.encode()).hexdigest()[:8],
            }
            try:
                return _run(ec2, req, zone_params, sleep=sleep)
            except Exception as again:
                if not is_code(again, *CAPACITY_CODES):
                    raise
                tried.append(zone)
        raise CloudError(
            f"AWS has no spare {req.instance_type} capacity in {ec2.meta.region_name} right "
            f"now (tried {', '.join(tried)}); try another --instance-type, fewer workers, or "
            "later ('sparkube up' resumes)."
        ) from exc


#: EC2's answers when a zone has no room for the type (on-demand and spot alike).
CAPACITY_CODES = ("InsufficientInstanceCapacity", "InsufficientCapacity")
_ZONE = r"[a-z]{2}(?:-[a-z]+)+-\d+[a-z]"


def capacity_zones(message: str) -> tuple[str | None, list[str]]:
    """(the zone that had no capacity, the zones AWS suggests) from EC2's message, e.g.
    "... in the Availability Zone you requested (us-east-1a). ... You can currently get
    t3.medium capacity by not specifying an Availability Zone in your request or choosing
    us-east-1b, us-east-1c." Either part may be missing."""
    failed = re.search(rf"Availability Zone you requested \(({_ZONE})\)", message)
    choosing = re.search(r"choosing (.+?)\.?\s*$", message)
    suggested = re.findall(_ZONE, choosing.group(1)) if choosing else []
    return (failed.group(1) if failed else None), suggested


def other_zone_subnets(
    ec2: Any, vpc_id: str, failed_zone: str | None, suggested: Sequence[str]
) -> list[tuple[str, str]]:
    """One public subnet (default-for-zone, or mapping public IPs) per other zone of the
    VPC as (subnet, zone): the zones AWS suggested first, in its order, then the rest."""
    response = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "state", "Values": ["available"]},
        ]
    )
    by_zone: dict[str, str] = {}
    for subnet in sorted(
        response.get("Subnets", []), key=lambda s: (not s.get("DefaultForAz"), s["SubnetId"])
    ):
        zone = str(subnet["AvailabilityZone"])
        if zone == failed_zone or zone in by_zone:
            continue
        if subnet.get("DefaultForAz") or subnet.get("MapPublicIpOnLaunch"):
            by_zone[zone] = str(subnet["SubnetId"])
    order = [z for z in suggested if z in by_zone] + sorted(
        z for z in by_zone if z not in suggested
    )
    return [(by_zone[z], z) for z in order]


def _run(ec2: Any, req: LaunchRequest, params: dict[str, Any], *, sleep: Sleep) -> list[str]:
    """One RunInstances of a batch; retry while EC2 cannot see a new instance profile yet.

    The ClientToken is deterministic, so a retried ``up`` never launches a batch twice;
    when the batch it names was launched before and is gone since (a spot worker
    reclaimed, a node terminated by hand), EC2 answers ``IdempotentInstanceTerminated``
    and the next generation of the token is used, still deterministic.
    """
    params = dict(params)
    base_token = params["ClientToken"]
    generation = 0
    delays = list(PROFILE_PROPAGATION_DELAYS)
    while True:
        try:
            response = ec2.run_instances(**params)
        except Exception as exc:
            if is_code(exc, "IdempotentInstanceTerminated") and generation < MAX_TOKEN_GENERATIONS:
                generation += 1
                params["ClientToken"] = f"{base_token[:60]}-{generation}"
                continue
            if _profile_not_visible(exc) and delays:
                delay = delays.pop(0)
                log.info("instance profile not visible to EC2 yet; retrying in %.0f s", delay)
                sleep(delay)
                continue
            if is_code(exc, "VcpuLimitExceeded"):
                limit = re.search(r"limit of (\d+)", error_message(exc))
                raise vcpu_error(
                    needed=req.count * req.vcpus,
                    allowed=int(limit.group(1)) if limit else None,
                    region=ec2.meta.region_name,
                    spot=req.spot,
                ) from exc
            if is_code(exc, "IdempotentParameterMismatch"):
                raise CloudError(
                    "AWS still remembers an earlier, different launch of these nodes; wait "
                    "a minute and run 'sparkube up' again."
                ) from exc
            raise
        return [str(i["InstanceId"]) for i in response.get("Instances", [])]


def wait_running(ec2: Any, instance_ids: Sequence[str], *, delay: int = 5) -> None:
    """One filtered DescribeInstances per poll, for all nodes (botocore's waiter)."""
    if not instance_ids:
        return
    ec2.get_waiter("instance_running").wait(
        InstanceIds=list(instance_ids), WaiterConfig={"Delay": delay, "MaxAttempts": 120}
    )


def wait_terminated(ec2: Any, instance_ids: Sequence[str], *, delay: int = 5) -> None:
    if not instance_ids:
        return
    ec2.get_waiter("instance_terminated").wait(
        InstanceIds=list(instance_ids), WaiterConfig={"Delay": delay, "MaxAttempts": 120}
    )


def node_name(tags: Mapping[str, str], launch_index: int) -> tuple[str, Role]:
    role: Role = CONTROL_PLANE if tags.get(T.ROLE) == CONTROL_PLANE else WORKER
    if tags.get(T.NODE):
        return tags[T.NODE], role
    if role == CONTROL_PLANE:
        return CONTROL_PLANE, role
    first = int(tags.get(T.FIRST_WORKER) or 1)
    return f"worker-{first + launch_index}", role


def is_unnamed(tags: Mapping[str, str]) -> bool:
    """A worker its group launched that ``up`` has not named yet (no ``sparkube:node``)."""
    return tags.get(T.ROLE) == WORKER and not tags.get(T.NODE) and not tags.get(T.FIRST_WORKER)


def to_node(item: Mapping[str, Any]) -> Node:
    tags = T.from_aws(item.get("Tags"))
    name, role = node_name(tags, int(item.get("AmiLaunchIndex") or 0))
    if is_unnamed(tags):
        name = str(item["InstanceId"])  # until 'up' names it worker-K
    launch_time = item.get("LaunchTime")
    return Node(
        name=name,
        role=role,
        instance_id=str(item["InstanceId"]),
        instance_type=str(item.get("InstanceType", "")),
        state=str(item.get("State", {}).get("Name", "unknown")),
        public_ip=item.get("PublicIpAddress"),
        private_ip=item.get("PrivateIpAddress"),
        public_dns=item.get("PublicDnsName") or None,
        launch_time=launch_time if isinstance(launch_time, datetime) else None,
        availability_zone=item.get("Placement", {}).get("AvailabilityZone"),
        spot=item.get("InstanceLifecycle") == "spot",
        image_id=item.get("ImageId"),
        subnet_id=item.get("SubnetId") or None,
        tags=tags,
    )


def describe_nodes(
    ec2: Any, *, cluster: str | None = None, instance_ids: Sequence[str] | None = None
) -> list[Node]:
    """Live (not terminated) nodes of a cluster, or of every sparkube cluster."""
    filters: list[dict[str, Any]] = [{"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
    if cluster is not None:
        filters += T.cluster_filter(cluster)
    else:
        filters.append({"Name": "tag-key", "Values": [T.CLUSTER]})
    kwargs: dict[str, Any] = {"Filters": filters}
    if instance_ids:
        kwargs["InstanceIds"] = list(instance_ids)
    nodes: list[Node] = []
    for page in ec2.get_paginator("describe_instances").paginate(**kwargs):
        for reservation in page.get("Reservations", []):
            nodes.extend(to_node(i) for i in reservation.get("Instances", []))
    return nodes


def terminate(ec2: Any, instance_ids: Sequence[str]) -> None:
    for start in range(0, len(instance_ids), 1000):
        ec2.terminate_instances(InstanceIds=list(instance_ids[start : start + 1000]))
