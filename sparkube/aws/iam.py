"""The nodes' IAM role and instance profile: S3 access to the cluster's bucket, and
reading the cluster's join parameter (``sparkube.aws.joinparam``); nothing else.

IAM is global while clusters are regional, so names carry the region. IAM cannot filter
by tag, so resources are found by their deterministic name and checked by tag.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sparkube.aws import tags as T
from sparkube.aws.errors import is_code
from sparkube.errors import CloudError

log = logging.getLogger(__name__)

POLICY_NAME = "sparkube-bucket"
JOIN_POLICY_NAME = "sparkube-join"
CONTROLLER_POLICY_NAME = "sparkube-controller"
PATH = "/sparkube/"

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def role_name(cluster: str, region: str) -> str:
    return f"sparkube-{cluster}-{region}"


def bucket_policy(bucket: str) -> dict[str, Any]:
    """The inline policy: list the bucket, read/write/delete its objects; nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListClusterBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
            {
                "Sid": "UseClusterObjects",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
        ],
    }


def join_policy(parameter_arn: str) -> dict[str, Any]:
    """The inline policy of the self-join: read the cluster's join parameter (decrypted
    with the account's default SSM key, whose key policy lets SSM decrypt for any
    principal of the account allowed to read the parameter)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadJoinParameter",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": parameter_arn,
            }
        ],
    }


def controller_policy(group_arn: str, parameter_arn: str, control_plane_arn: str) -> dict[str, Any]:
    """The inline policy of the in-cluster controller: read groups, set the workers'
    group's desired count and terminate one of its instances
    (``sparkube.controller.group``), and write the join parameter with a renewed token
    (``sparkube.controller.jointoken``); only with credentials the control plane's own
    instance holds (its instance profile through the metadata service:
    ``ec2:SourceInstanceARN``), so the workers, which share the role, cannot. Auto
    Scaling's Describe calls take no resource."""
    only_there = {"StringEquals": {"ec2:SourceInstanceARN": control_plane_arn}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadGroups",
                "Effect": "Allow",
                "Action": "autoscaling:DescribeAutoScalingGroups",
                "Resource": "*",
                "Condition": only_there,
            },
            {
                "Sid": "ScaleWorkers",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": group_arn,
                "Condition": only_there,
            },
            {
                "Sid": "RenewJoinToken",
                "Effect": "Allow",
                "Action": "ssm:PutParameter",
                "Resource": parameter_arn,
                "Condition": only_there,
            },
        ],
    }


def put_controller_policy(iam: Any, cluster: str, region: str, document: Mapping[str, Any]) -> bool:
    """Write :func:`controller_policy` onto the nodes' role unless it is there already
    (each ``up`` looks: the control plane may have been replaced). True when written."""
    name = role_name(cluster, region)
    try:
        got = iam.get_role_policy(RoleName=name, PolicyName=CONTROLLER_POLICY_NAME)
        have = got["PolicyDocument"]
        if (json.loads(have) if isinstance(have, str) else have) == document:
            return False
    except Exception as exc:
        if not is_code(exc, "NoSuchEntity"):
            raise
    iam.put_role_policy(
        RoleName=name, PolicyName=CONTROLLER_POLICY_NAME, PolicyDocument=json.dumps(document)
    )
    return True


@dataclass(frozen=True)
class IamState:
    role: str | None
    role_tags: dict[str, str]
    profile: str | None
    profile_roles: tuple[str, ...]
    policies: tuple[str, ...]


def find(iam: Any, cluster: str, region: str) -> IamState:
    """What exists of the role and profile (role/profile named for the cluster and region)."""
    name = role_name(cluster, region)
    role: str | None = None
    role_tags: dict[str, str] = {}
    policies: tuple[str, ...] = ()
    try:
        got = iam.get_role(RoleName=name)["Role"]
        role_tags = T.from_aws(got.get("Tags"))
        if role_tags.get(T.CLUSTER) == cluster:
            role = name
            policies = tuple(iam.list_role_policies(RoleName=name)["PolicyNames"])
    except Exception as exc:
        if not is_code(exc, "NoSuchEntity"):
            raise
    profile: str | None = None
    profile_roles: tuple[str, ...] = ()
    try:
        got = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        if role is not None or T.from_aws(got.get("Tags")).get(T.CLUSTER) == cluster:
            profile = name
            profile_roles = tuple(str(r["RoleName"]) for r in got.get("Roles", []))
    except Exception as exc:
        if not is_code(exc, "NoSuchEntity"):
            raise
    return IamState(role, role_tags, profile, profile_roles, policies)


def ensure(
    iam: Any,
    cluster: str,
    region: str,
    *,
    bucket: str,
    join_parameter_arn: str,
    tags: Mapping[str, str],
) -> tuple[str, str]:
    """Role, inline bucket and join-parameter policies and instance profile; return
    (role, profile) names."""
    name = role_name(cluster, region)
    state = find(iam, cluster, region)
    aws_tags = T.to_aws({**tags, T.NAME: name})
    if state.role is None:
        try:
            iam.create_role(
                RoleName=name,
                Path=PATH,
                AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description=f"sparkube cluster {cluster} nodes ({region})",
                Tags=aws_tags,
            )
        except Exception as exc:
            if is_code(exc, "EntityAlreadyExists"):
                raise CloudError(
                    f"An IAM role named {name} exists without sparkube's tags; delete it or "
                    "use another cluster name."
                ) from exc
            raise
    if POLICY_NAME not in state.policies:
        iam.put_role_policy(
            RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(bucket_policy(bucket))
        )
    if JOIN_POLICY_NAME not in state.policies:  # also on a cluster made before it existed
        iam.put_role_policy(
            RoleName=name,
            PolicyName=JOIN_POLICY_NAME,
            PolicyDocument=json.dumps(join_policy(join_parameter_arn)),
        )
    if state.profile is None:
        try:
            iam.create_instance_profile(InstanceProfileName=name, Path=PATH, Tags=aws_tags)
        except Exception as exc:
            if not is_code(exc, "EntityAlreadyExists"):
                raise
    if name not in state.profile_roles:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name, name


def delete(iam: Any, cluster: str, region: str) -> list[str]:
    """Remove profile and role (in IAM's dependency order); return what was deleted."""
    state = find(iam, cluster, region)
    deleted: list[str] = []
    if state.profile is not None:
        for role in state.profile_roles:
            iam.remove_role_from_instance_profile(InstanceProfileName=state.profile, RoleName=role)
        iam.delete_instance_profile(InstanceProfileName=state.profile)
        deleted.append(f"instance profile {state.profile}")
    if state.role is not None:
        for policy in state.policies:
            iam.delete_role_policy(RoleName=state.role, PolicyName=policy)
        attached = iam.list_attached_role_policies(RoleName=state.role)["AttachedPolicies"]
        for policy in attached:
            iam.detach_role_policy(RoleName=state.role, PolicyArn=policy["PolicyArn"])
        iam.delete_role(RoleName=state.role)
        deleted.append(f"IAM role {state.role}")
    return deleted
