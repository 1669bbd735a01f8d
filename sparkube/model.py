"""Typed records passed between layers (never boto3 or Kubernetes response dicts).

The AWS layer builds :class:`Node` and :class:`ClusterInfo` from tags; the node,
Kubernetes and Spark layers consume them. Addresses a test or a bastion reaches another
way are applied with :meth:`ClusterInfo.with_address_overrides`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Role = Literal["control-plane", "worker"]
CONTROL_PLANE: Role = "control-plane"
WORKER: Role = "worker"


@dataclass(frozen=True)
class Node:
    """One machine of a cluster, addressed by its sparkube name (``control-plane``,
    ``worker-1``, ...)."""

    name: str
    role: Role
    instance_id: str = ""
    instance_type: str = ""
    state: str = "unknown"
    public_ip: str | None = None
    private_ip: str | None = None
    public_dns: str | None = None
    launch_time: datetime | None = None
    availability_zone: str | None = None
    spot: bool = False
    #: Where SSH should connect; the public IP unless overridden.
    ssh_host: str | None = None
    ssh_port: int = 22
    image_id: str | None = None
    subnet_id: str | None = None
    #: The instance's tags (``sparkube:*``, ``Name`` and the user's own).
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The address sparkube connects to (override, else public, else private IP)."""
        host = self.ssh_host or self.public_ip or self.private_ip
        if host is None:
            raise ValueError(f"node {self.name} has no address yet")
        return host


#: The node label every worker gets at join: the EC2 market it runs on (``spot`` or
#: ``on-demand``, the instance metadata's ``instance-life-cycle``). Drivers of a cluster
#: with spot workers require ``on-demand``: an interruption never takes a driver.
MARKET_LABEL = "sparkube.io/market"
SPOT = "spot"
ON_DEMAND = "on-demand"


@dataclass(frozen=True)
class WorkerGroup:
    """The cluster's Auto Scaling group of workers and its launch template."""

    name: str
    min_size: int
    max_size: int
    desired: int
    #: The launch template version the group launches (a number as text).
    template_version: str | None = None
    #: The group's instances, as the group lists them.
    instance_ids: tuple[str, ...] = ()
    #: AWS's status of the group (``Delete in progress`` while it goes), else None.
    status: str | None = None
    #: With spot workers: the on-demand instances the group keeps before it launches
    #: spot ones (its MixedInstancesPolicy); None: one market, the template's.
    on_demand_base: int | None = None
    #: With spot workers: the percentage of on-demand above the base (0; 100 after a
    #: fall-back for want of spot capacity).
    on_demand_above: int | None = None


@dataclass(frozen=True)
class ClusterInfo:
    """What exists of a cluster, found by tags."""

    name: str
    region: str
    nodes: tuple[Node, ...] = ()
    security_group_id: str | None = None
    key_name: str | None = None
    bucket: str | None = None
    instance_profile: str | None = None
    role_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    vpc_id: str | None = None
    #: When the nodes terminate themselves (``--ttl``), if they do.
    expires_at: datetime | None = None
    #: The CIDRs the security group lets reach SSH (the operator's).
    operator_cidrs: tuple[str, ...] = ()
    #: The workers' Auto Scaling group, and the id of their launch template.
    worker_group: WorkerGroup | None = None
    launch_template: str | None = None

    @property
    def done_phase(self) -> str | None:
        """The last phase of ``up`` completed for the current nodes (tag on the group)."""
        return self.tags.get("sparkube:done") or None

    def control_plane(self) -> Node | None:
        return next((n for n in self.nodes if n.role == CONTROL_PLANE), None)

    def workers(self) -> list[Node]:
        return sorted(
            (n for n in self.nodes if n.role == WORKER),
            key=lambda n: (len(n.name), n.name),
        )

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def with_address_overrides(self, overrides: Mapping[str, str]) -> ClusterInfo:
        """Reach nodes at other addresses: ``{"worker-1": "10.200.0.3:22"}``."""
        nodes = []
        for node in self.nodes:
            target = overrides.get(node.name)
            if target is None:
                nodes.append(node)
                continue
            host, _, port = target.rpartition(":") if ":" in target else (target, "", "")
            nodes.append(
                dataclasses.replace(node, ssh_host=host or target, ssh_port=int(port or 22))
            )
        return dataclasses.replace(self, nodes=tuple(nodes))
