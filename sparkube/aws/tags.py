"""Tag names and helpers. Cloud tags are sparkube's source of truth (STYLE.md #4)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CLUSTER = "sparkube:cluster"
ROLE = "sparkube:role"
NODE = "sparkube:node"
#: Workers launched together share tags; a worker's number is this + its AmiLaunchIndex.
FIRST_WORKER = "sparkube:first-worker"
#: What AWS tags every instance of an Auto Scaling group with (the group's name).
GROUP = "aws:autoscaling:groupName"
EXPIRES = "sparkube:expires-at"
KUBERNETES = "sparkube:kubernetes"
ROOT_GB = "sparkube:root-gb"
#: On the security group: the last phase of ``up`` completed for the current nodes.
DONE = "sparkube:done"
NAME = "Name"


def base_tags(cluster: str, extra: Mapping[str, str], **more: str) -> dict[str, str]:
    tags = dict(extra)
    tags[CLUSTER] = cluster
    tags.update(more)
    return tags


def to_aws(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def spec_for(resource_type: str, tags: Mapping[str, str]) -> dict[str, Any]:
    return {"ResourceType": resource_type, "Tags": to_aws(tags)}


def from_aws(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or ()}


def cluster_filter(cluster: str) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{CLUSTER}", "Values": [cluster]}]
