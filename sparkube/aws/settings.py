"""A cluster's settings, recorded in its tags so that ``up`` can resume without flags.

``sparkube up --workers 3 --instance-type m6i.large`` interrupted, then a plain
``sparkube up``: the second run must finish *that* cluster, not one built from the
defaults. So the first ``up`` records the settings that define the cluster as tags on
its security group (the first cloud resource that can carry them, created before any
instance), and every later ``up``/``plan`` starts from what exists:

- a field the user did not set (no flag, variable or file key: pydantic's
  ``model_fields_set``) takes the recorded value (:func:`adopt`);
- a field the user set to something else is a "different spec" error that says what
  differs (:func:`check_matches`), except ``workers`` (the worker group's minimum:
  larger adds workers, smaller is refused with the way to remove nodes),
  ``max_workers`` (any value from the minimum up updates the group; one left out that
  the new minimum passes follows the minimum, as it does on a new cluster),
  ``idle_minutes`` (a new value goes to the controller) and
  ``allow_cidrs`` (given CIDRs are added to the security group, nothing is revoked).

What the nodes themselves show (instance types, spot, image, the Kubernetes/root-volume
tags they were launched with) wins over the group's record, which only fills in what
no node shows yet (an ``up`` interrupted before its workers were launched) and what a
node cannot show (worker count, TTL, pod CIDR).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sparkube.aws import tags as T
from sparkube.errors import ConfigError, UsageError
from sparkube.model import ClusterInfo
from sparkube.spec import ClusterSpec, format_duration

log = logging.getLogger(__name__)

#: Spec field -> the security-group tag that records it.
RECORDED: dict[str, str] = {
    "workers": "sparkube:workers",
    "max_workers": "sparkube:max-workers",
    "idle_minutes": "sparkube:idle-minutes",
    "instance_type": "sparkube:instance-type",
    "control_plane_type": "sparkube:control-plane-type",
    "spot": "sparkube:spot",
    "cpu_credits": "sparkube:cpu-credits",
    "kubernetes_version": T.KUBERNETES,
    "containerd": "sparkube:containerd",
    "root_volume_gb": T.ROOT_GB,
    "ttl": "sparkube:ttl",
    "ami": "sparkube:ami",
    "subnet_id": "sparkube:subnet",
    "cni": "sparkube:cni",
    "pod_cidr": "sparkube:pod-cidr",
    "kubernetes_apt_repo": "sparkube:kubernetes-apt-repo",
    "registry_mirrors": "sparkube:registry-mirrors",
    "containerd_release_url": "sparkube:containerd-release-url",
}
#: AWS's limit on a tag value.
TAG_VALUE_MAX = 256
#: Fields compared with what exists (a user-set value that differs is an error), and
#: how a message names them.
COMPARED: dict[str, str] = {
    "control_plane_type": "control-plane type",
    "instance_type": "worker type",
    "spot": "spot workers",
    "cpu_credits": "CPU credits",
    "kubernetes_version": "Kubernetes",
    "containerd": "containerd source",
    "root_volume_gb": "root volume",
    "ami": "AMI",
    "ttl": "TTL",
    "vpc_id": "VPC",
    "subnet_id": "subnet",
    "cni": "CNI",
    "pod_cidr": "pod CIDR",
    "tags": "tags",
}


def settings_tags(spec: ClusterSpec) -> dict[str, str]:
    """The tags recording ``spec`` (optional fields only when set)."""
    out: dict[str, str] = {}
    for field, tag in RECORDED.items():
        value = getattr(spec, field)
        if field == "max_workers":
            value = spec.max_count  # recorded as in force: the minimum when not set
        if value is None:
            continue
        if field == "ttl":
            value = format_duration(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif field == "containerd_release_url":
            if value == ClusterSpec.model_fields[field].default:
                continue  # the default is not recorded
        elif field == "kubernetes_apt_repo":
            # the default is not recorded; a custom one as used (no braces in a tag)
            if value == ClusterSpec.model_fields[field].default:
                continue
            value = spec.kubernetes_apt_url
        elif field == "registry_mirrors":
            if not value:
                continue
            value = " ".join(f"{registry}={url}" for registry, url in value.items())
        if len(str(value)) > TAG_VALUE_MAX:
            log.warning("not recording %s in a tag: longer than %d", field, TAG_VALUE_MAX)
            continue
        out[tag] = str(value)
    return out


def _user_tags(group_tags: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in group_tags.items()
        if not k.startswith(("sparkube:", "aws:")) and k != T.NAME
    }


def _uniform(values: set[Any]) -> Any:
    return next(iter(values)) if len(values) == 1 else None


def recorded_values(info: ClusterInfo) -> dict[str, Any]:
    """What the existing cluster says about each spec field (raw, not validated).

    Empty for a cluster that does not exist. Node facts win over the group's record.
    """
    out: dict[str, Any] = {}
    if info.security_group_id is not None:
        for field, tag in RECORDED.items():
            if info.tags.get(tag):
                out[field] = info.tags[tag]
        out["tags"] = _user_tags(info.tags)
        if info.operator_cidrs:
            out["allow_cidrs"] = info.operator_cidrs
    if info.vpc_id:
        out["vpc_id"] = info.vpc_id
    cp, workers = info.control_plane(), info.workers()
    if cp is not None and cp.instance_type:
        out["control_plane_type"] = cp.instance_type
    if workers:
        out["workers"] = max(len(workers), _int(out.get("workers")))
        itype = _uniform({w.instance_type for w in workers if w.instance_type})
        if itype:
            out["instance_type"] = itype
        spot = _uniform({w.spot for w in workers})
        if spot is not None:
            out["spot"] = spot
    for field, tag in (("kubernetes_version", T.KUBERNETES), ("root_volume_gb", T.ROOT_GB)):
        value = _uniform({n.tags[tag] for n in info.nodes if n.tags.get(tag)})
        if value is not None:
            out[field] = value
    return out


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _validated(spec: ClusterSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Each recorded value as the spec would hold it; unusable ones are dropped."""
    base = spec.model_dump(exclude_unset=True)
    out: dict[str, Any] = {}
    for field, raw in values.items():
        try:
            trial = ClusterSpec.model_validate({**base, field: raw})
        except ValidationError:
            log.warning("ignoring recorded %s=%r: not a valid value", field, raw)
            continue
        out[field] = getattr(trial, field)
    return out


def adopt(spec: ClusterSpec, info: ClusterInfo) -> ClusterSpec:
    """``spec`` with every field the user did not set taken from the existing cluster."""
    explicit = spec.model_fields_set
    recorded = _validated(spec, recorded_values(info))
    if "subnet_id" in explicit:
        recorded.pop("vpc_id", None)  # the subnet decides; compared by the provider
    update = {
        field: value
        for field, value in recorded.items()
        if field not in explicit and getattr(spec, field) != value
    }
    if "max_workers" in update:
        minimum = update.get("workers", spec.workers)
        if update["max_workers"] < minimum:
            # the maximum left out follows a minimum raised past it (as on a new cluster)
            update["max_workers"] = minimum
    if not update:
        return spec
    log.info("adopting the existing cluster's settings: %s", sorted(update))
    return spec.model_copy(update=update)


def _show(field: str, value: Any) -> str:
    if value is None:
        return "none"
    if field == "ttl":
        return format_duration(value)
    if field == "spot":
        return "yes" if value else "no"
    if field == "root_volume_gb":
        return f"{value} GiB"
    if field == "tags":
        return "{" + ", ".join(f"{k}={v}" for k, v in sorted(value.items())) + "}"
    return str(value)


def check_matches(spec: ClusterSpec, info: ClusterInfo, extra_diffs: Sequence[str] = ()) -> None:
    """Refuse an ``up`` whose spec differs from the cluster that exists.

    Call after :func:`adopt`: only fields the user set can still differ.
    """
    recorded = _validated(spec, recorded_values(info))
    diffs = []
    for field, label in COMPARED.items():
        if field not in recorded:
            continue
        have, asked = recorded[field], getattr(spec, field)
        if field == "vpc_id" and asked is None:
            continue  # the subnet's or the default VPC: compared by the provider
        if have != asked:
            diffs.append(f"{label} {_show(field, have)} (asked {_show(field, asked)})")
    images = sorted({n.image_id for n in info.nodes if n.image_id})
    if spec.ami and "ami" not in recorded and images and images != [spec.ami]:
        diffs.append(f"AMI {', '.join(images)} (asked {spec.ami})")
    diffs += extra_diffs
    if diffs:
        raise ConfigError(
            f"Cluster {spec.name} already exists in {info.region} with a different spec: "
            + "; ".join(diffs)
            + ". Leave those settings out to keep the cluster's, use another --cluster "
            f"name, or 'sparkube down -c {spec.name}' first."
        )
    if spec.max_workers is not None and spec.max_workers < spec.workers:
        raise ConfigError(
            f"--max-workers {spec.max_workers} is less than cluster {spec.name}'s minimum "
            f"of {spec.workers} workers; give a maximum of at least {spec.workers}, or "
            "leave it out."
        )
    have_workers = len(info.workers())
    if spec.workers < have_workers:
        raise UsageError(
            f"Cluster {spec.name} has {have_workers} workers and --workers {spec.workers} "
            f"would remove {have_workers - spec.workers}; 'up' only adds nodes. Remove "
            f"workers with 'sparkube remove-node worker-{have_workers}' (not available "
            "yet), or 'sparkube down' then 'up'."
        )
