"""Finding clusters and their resources by tag (STYLE.md #4: tags are the state).

Everything a cluster owns carries ``sparkube:cluster=NAME``; EC2 resources are found
with tag filters, IAM and S3 (which cannot filter by tag) by their deterministic names.
Nothing here needs the local ``SPARKUBE_HOME``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sparkube.aws import iam, instances, keys, network, storage, workergroup
from sparkube.aws import tags as T
from sparkube.aws.session import AwsClients
from sparkube.model import ClusterInfo, Node

log = logging.getLogger(__name__)


def expires_at(nodes: list[Node] | tuple[Node, ...]) -> datetime | None:
    values = [n.tags.get(T.EXPIRES) for n in nodes if n.tags.get(T.EXPIRES)]
    if not values:
        return None
    return min(datetime.fromisoformat(v) for v in values if v)


def describe_cluster(clients: AwsClients, cluster: str) -> ClusterInfo:
    """What exists of ``cluster`` in the clients' region (reads only)."""
    ec2 = clients.ec2
    nodes = instances.describe_nodes(ec2, cluster=cluster)
    group = network.find_group(ec2, cluster)
    key = keys.find_key_pair(ec2, cluster)
    iam_state = iam.find(clients.iam, cluster, clients.region)
    bucket_name = storage.bucket_name(cluster, clients.region, clients.account_id())
    bucket = bucket_name if storage.exists(clients.s3, bucket_name) else None
    group_tags = T.from_aws(group.get("Tags")) if group else {}
    worker_group = workergroup.find_group(clients.autoscaling, cluster)
    template = workergroup.find_template(ec2, cluster)
    return ClusterInfo(
        name=cluster,
        region=clients.region,
        nodes=tuple(sorted(nodes, key=_node_order)),
        security_group_id=str(group["GroupId"]) if group else None,
        key_name=key.name if key else None,
        bucket=bucket,
        instance_profile=iam_state.profile,
        role_name=iam_state.role,
        tags=group_tags,
        vpc_id=str(group["VpcId"]) if group and group.get("VpcId") else None,
        expires_at=expires_at(nodes),
        operator_cidrs=network.operator_cidrs_of(group) if group else (),
        worker_group=worker_group,
        launch_template=template,
    )


def _node_order(node: Node) -> tuple[int, int, str]:
    if node.role == "control-plane":
        return (0, 0, node.name)
    number = node.name.rsplit("-", 1)[-1]
    return (1, int(number) if number.isdigit() else 0, node.name)


def is_empty(info: ClusterInfo) -> bool:
    return not (
        info.nodes
        or info.security_group_id
        or info.key_name
        or info.bucket
        or info.instance_profile
        or info.role_name
        or info.worker_group
        or info.launch_template
    )


def infra_complete(info: ClusterInfo) -> bool:
    """Whether everything ``infra`` makes exists, with every node recorded running."""
    from sparkube.aws.settings import RECORDED

    try:
        workers = int(info.tags.get(RECORDED["workers"], "0"))
    except ValueError:
        workers = 0
    return bool(
        info.key_name
        and info.security_group_id
        and info.role_name
        and info.instance_profile
        and info.bucket
        and info.control_plane() is not None
        and len(info.workers()) >= workers
        and all(n.state == "running" for n in info.nodes)
        and not any(instances.is_unnamed(n.tags) for n in info.nodes)
    )


def leftovers(info: ClusterInfo, *, keep_data: bool = False) -> list[str]:
    """Human names of what still exists (the bucket only if not kept on purpose)."""
    out = [f"instance {n.instance_id} ({n.name}, {n.state})" for n in info.nodes]
    if info.worker_group:
        out.append(f"worker group {info.worker_group.name}")
    if info.launch_template:
        out.append(f"launch template {info.launch_template}")
    if info.security_group_id:
        out.append(f"security group {info.security_group_id}")
    if info.key_name:
        out.append(f"key pair {info.key_name}")
    if info.instance_profile:
        out.append(f"instance profile {info.instance_profile}")
    if info.role_name:
        out.append(f"IAM role {info.role_name}")
    if info.bucket and not keep_data:
        out.append(f"S3 bucket {info.bucket}")
    return out


@dataclass(frozen=True)
class ClusterSummary:
    """One line of ``sparkube ls``."""

    name: str
    region: str
    nodes: tuple[Node, ...]
    expires_at: datetime | None


def list_clusters(clients: AwsClients) -> list[ClusterSummary]:
    """Every sparkube cluster in the region: one DescribeInstances, one
    DescribeSecurityGroups (a cluster may have a group and no node yet)."""
    ec2: Any = clients.ec2
    by_cluster: dict[str, list[Node]] = {}
    for node in instances.describe_nodes(ec2):
        by_cluster.setdefault(node.tags.get(T.CLUSTER, "?"), []).append(node)
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": [T.CLUSTER]}])
    for group in groups.get("SecurityGroups", []):
        name = T.from_aws(group.get("Tags")).get(T.CLUSTER)
        if name:
            by_cluster.setdefault(name, [])
    return [
        ClusterSummary(
            name, clients.region, tuple(sorted(nodes, key=_node_order)), expires_at(nodes)
        )
        for name, nodes in sorted(by_cluster.items())
    ]
