"""The cluster's network: VPC choice, the per-cluster security group and its rules.

Ingress: all traffic from the group itself (node to node), SSH (22) and the Kubernetes
API (6443) from the operator's CIDRs only. Nothing is ever opened to 0.0.0.0/0 or ::/0.
The operator's address is detected once with checkip.amazonaws.com through an
injectable :data:`IpDetector`; tests never call the real one.
"""

from __future__ import annotations

import ipaddress
import logging
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparkube.aws import tags as T
from sparkube.aws.errors import is_code
from sparkube.errors import ConfigError

log = logging.getLogger(__name__)

#: Returns the caller's public IPv4/IPv6 address as text; raises OSError if it cannot.
IpDetector = Callable[[], str]
CHECKIP_URL = "https://checkip.amazonaws.com/"
OPERATOR_PORTS = (22, 6443)
#: ``SPARKUBE_DETECT_IP=off`` forbids the lookup (air-gapped machines, the test suite).
DETECT_VAR = "SPARKUBE_DETECT_IP"


def checkip() -> str:
    with urllib.request.urlopen(CHECKIP_URL, timeout=5) as response:
        return str(response.read().decode().strip())


def operator_cidrs(
    allow_cidrs: Sequence[str],
    detector: IpDetector | None,
    environ: Mapping[str, str],
) -> tuple[str, ...]:
    """The CIDRs allowed to reach SSH/API: the given ones, else the detected IP /32."""
    if allow_cidrs:
        cidrs = tuple(allow_cidrs)
    else:
        if detector is None or environ.get(DETECT_VAR, "").lower() in ("off", "0", "false"):
            raise ConfigError(
                "Cannot detect your public IP address here; pass --allow-cidr with the "
                "address you connect from (e.g. --allow-cidr 203.0.113.7/32)."
            )
        try:
            address = ipaddress.ip_address(detector().strip())
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"Could not detect your public IP address ({exc}); pass --allow-cidr "
                "with the address you connect from."
            ) from None
        cidrs = (f"{address}/{address.max_prefixlen}",)
    refuse_open(cidrs)
    return cidrs


def refuse_open(cidrs: Sequence[str]) -> None:
    """:class:`ConfigError` (exit 2) for a CIDR that is the whole internet (0.0.0.0/0,
    ::/0 or any other /0). Needs no AWS call: ``plan`` runs it on every path, offline
    included, and ``up`` before asking AWS anything."""
    for cidr in cidrs:
        if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            raise ConfigError(
                f"--allow-cidr '{cidr}' would open SSH and the Kubernetes API to the whole "
                "internet; pass your own address or network instead."
            )


def group_name(cluster: str) -> str:
    return f"sparkube-{cluster}"


@dataclass(frozen=True)
class Placement:
    vpc_id: str
    subnet_id: str | None


def resolve_placement(ec2: Any, *, vpc_id: str | None, subnet_id: str | None) -> Placement:
    """Where instances go: the subnet's VPC, the given VPC, else the default VPC."""
    if subnet_id:
        subnets = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        vpc = str(subnets[0]["VpcId"])
        if vpc_id and vpc_id != vpc:
            raise ConfigError(f"Subnet {subnet_id} is in {vpc}, not in --vpc-id {vpc_id}.")
        return Placement(vpc, subnet_id)
    if vpc_id:
        ec2.describe_vpcs(VpcIds=[vpc_id])
        return Placement(vpc_id, None)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise ConfigError(
            f"There is no default VPC in {ec2.meta.region_name}; pass --vpc-id and "
            "--subnet-id of a VPC with a public subnet."
        )
    return Placement(str(vpcs[0]["VpcId"]), None)


def vpc_cidrs(ec2: Any, vpc_id: str) -> tuple[str, ...]:
    """The VPC's associated IPv4 and IPv6 CIDR blocks: every address a node can have
    (the kubelet-serving approver allows certificates for these only)."""
    vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    out: list[str] = []
    for vpc in vpcs:
        for assoc in vpc.get("CidrBlockAssociationSet") or []:
            if assoc.get("CidrBlockState", {}).get("State", "associated") == "associated":
                out.append(str(assoc["CidrBlock"]))
        for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
            if assoc.get("Ipv6CidrBlockState", {}).get("State", "associated") == "associated":
                out.append(str(assoc["Ipv6CidrBlock"]))
        if not out and vpc.get("CidrBlock"):
            out.append(str(vpc["CidrBlock"]))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Rule:
    """One ingress rule: a port range from a CIDR, or everything from a group."""

    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    group_id: str | None = None
    description: str = ""

    def describe(self) -> str:
        ports = "all traffic" if self.protocol == "-1" else f"tcp/{self.from_port}"
        source = f"from {self.cidr}" if self.cidr else "from the cluster's own group"
        return f"{ports} {source}"

    def to_permission(self) -> dict[str, Any]:
        perm: dict[str, Any] = {"IpProtocol": self.protocol}
        if self.from_port is not None:
            perm["FromPort"] = self.from_port
            perm["ToPort"] = self.to_port
        if self.group_id:
            perm["UserIdGroupPairs"] = [{"GroupId": self.group_id, "Description": self.description}]
        elif self.cidr and ipaddress.ip_network(self.cidr).version == 6:
            perm["Ipv6Ranges"] = [{"CidrIpv6": self.cidr, "Description": self.description}]
        elif self.cidr:
            perm["IpRanges"] = [{"CidrIp": self.cidr, "Description": self.description}]
        return perm

    def key(self) -> tuple[str, int | None, str | None, str | None]:
        return (self.protocol, self.from_port, self.cidr, self.group_id)


def wanted_rules(group_id: str, cidrs: Sequence[str]) -> list[Rule]:
    rules = [Rule("-1", None, None, group_id=group_id, description="sparkube: node to node")]
    for port in OPERATOR_PORTS:
        what = "SSH" if port == 22 else "Kubernetes API"
        for cidr in cidrs:
            rules.append(Rule("tcp", port, port, cidr=cidr, description=f"sparkube: {what}"))
    return rules


def existing_rules(group: Mapping[str, Any]) -> set[tuple[str, int | None, str | None, str | None]]:
    keys: set[tuple[str, int | None, str | None, str | None]] = set()
    for perm in group.get("IpPermissions", []):
        proto = str(perm.get("IpProtocol"))
        port = perm.get("FromPort") if proto != "-1" else None
        for r in perm.get("IpRanges", []):
            keys.add((proto, port, r["CidrIp"], None))
        for r in perm.get("Ipv6Ranges", []):
            keys.add((proto, port, r["CidrIpv6"], None))
        for pair in perm.get("UserIdGroupPairs", []):
            keys.add((proto, port, None, pair["GroupId"]))
    return keys


def operator_cidrs_of(group: Mapping[str, Any]) -> tuple[str, ...]:
    """The CIDRs a group lets reach SSH, in a stable order."""
    found = {
        cidr
        for proto, port, cidr, _ in existing_rules(group)
        if proto == "tcp" and port == OPERATOR_PORTS[0] and cidr
    }
    return tuple(sorted(found))


def find_group(ec2: Any, cluster: str) -> dict[str, Any] | None:
    groups = ec2.describe_security_groups(Filters=T.cluster_filter(cluster))["SecurityGroups"]
    return dict(groups[0]) if groups else None


def ensure_security_group(
    ec2: Any,
    cluster: str,
    *,
    vpc_id: str,
    cidrs: Sequence[str],
    tags: Mapping[str, str],
) -> str:
    """Create the group if missing and add the rules it lacks; return its id."""
    group = find_group(ec2, cluster)
    if group is None:
        name = group_name(cluster)
        try:
            created = ec2.create_security_group(
                GroupName=name,
                Description=f"sparkube cluster {cluster}: nodes and operator access",
                VpcId=vpc_id,
                TagSpecifications=[T.spec_for("security-group", {**tags, T.NAME: name})],
            )
        except Exception as exc:
            if is_code(exc, "InvalidGroup.Duplicate"):
                raise ConfigError(
                    f"A security group named {name} exists in {vpc_id} without sparkube's "
                    "tags; delete it or use another cluster name."
                ) from exc
            raise
        group = {"GroupId": created["GroupId"], "IpPermissions": []}
    group_id = str(group["GroupId"])
    have = existing_rules(group)
    missing = [r for r in wanted_rules(group_id, cidrs) if r.key() not in have]
    if missing:
        try:
            ec2.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=[r.to_permission() for r in missing]
            )
        except Exception as exc:
            if not is_code(exc, "InvalidPermission.Duplicate"):
                raise
    return group_id
