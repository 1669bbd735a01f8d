"""Settings recorded in tags; a re-run adopts them unless the user sets them (no AWS)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sparkube.aws import settings
from sparkube.env import Environment
from sparkube.errors import ConfigError, UsageError
from sparkube.model import ClusterInfo, Node
from sparkube.spec import ClusterSpec, load_spec

CREATED = ClusterSpec(
    name="c",
    workers=3,
    instance_type="m6i.large",
    control_plane_type="t3.large",
    spot=True,
    ttl=timedelta(hours=4),
    root_volume_gb=60,
    kubernetes_version="1.35",
    pod_cidr="10.100.0.0/16",
    tags={"team": "data"},
)


def _group(spec: ClusterSpec = CREATED, **extra: str) -> dict[str, str]:
    return {
        "sparkube:cluster": spec.name,
        "Name": "sparkube-c",
        "team": "data",
        **settings.settings_tags(spec),
        **extra,
    }


def _node(name: str, itype: str, *, spot: bool = False, **tags: str) -> Node:
    role = "control-plane" if name == "control-plane" else "worker"
    return Node(name, role, instance_type=itype, spot=spot, image_id="ami-00000001", tags=tags)


def _info(*nodes: Node, group: dict[str, str] | None = None) -> ClusterInfo:
    return ClusterInfo(
        "c",
        "us-east-1",
        nodes=nodes,
        security_group_id="sg-1" if group is not None else None,
        tags=group or {},
        vpc_id="vpc-1" if group is not None else None,
        operator_cidrs=("203.0.113.7/32",) if group is not None else (),
    )


def _flags(tmp_path: Path, **flags: object) -> ClusterSpec:
    env = Environment(environ={}, cwd=tmp_path, interactive=False)
    return load_spec(env=env, flags={"name": "c", **flags})


def test_recorded_tags_are_plain_strings_aws_accepts() -> None:
    tags = settings.settings_tags(CREATED)
    assert tags["sparkube:workers"] == "3"
    assert tags["sparkube:spot"] == "true"
    assert tags["sparkube:ttl"] == "4h"
    assert "sparkube:ami" not in tags  # optional fields only when set
    for key, value in tags.items():
        assert len(key) <= 128 and len(value) <= 256
        assert all(ch.isalnum() or ch in " +-=._:/@" for ch in key + value)


def test_a_plain_rerun_adopts_the_interrupted_clusters_settings(tmp_path: Path) -> None:
    # Interrupted after the control plane was launched, before the workers.
    info = _info(_node("control-plane", "t3.large"), group=_group())
    spec = settings.adopt(_flags(tmp_path), info)
    assert spec.workers == 3
    assert spec.instance_type == "m6i.large"
    assert spec.control_plane_type == "t3.large"
    assert spec.spot is True
    assert spec.ttl == timedelta(hours=4)
    assert spec.root_volume_gb == 60
    assert spec.kubernetes_version == "1.35"
    assert spec.pod_cidr == "10.100.0.0/16"
    assert spec.tags == {"team": "data"}
    assert spec.vpc_id == "vpc-1"
    assert spec.allow_cidrs == ("203.0.113.7/32",)
    settings.check_matches(spec, info)  # nothing differs


def test_explicit_values_win_and_differences_are_named(tmp_path: Path) -> None:
    info = _info(_node("control-plane", "t3.large"), group=_group())
    spec = settings.adopt(_flags(tmp_path, instance_type="t3.xlarge", ttl="2h"), info)
    assert spec.instance_type == "t3.xlarge"
    assert spec.workers == 3  # not given: adopted
    with pytest.raises(ConfigError) as err:
        settings.check_matches(spec, info)
    message = str(err.value)
    assert "worker type m6i.large (asked t3.xlarge)" in message
    assert "TTL 4h (asked 2h)" in message
    assert "control-plane" not in message


def test_explicit_same_values_and_more_workers_are_fine(tmp_path: Path) -> None:
    nodes = (
        _node("control-plane", "t3.large"),
        *(_node(f"worker-{i}", "m6i.large", spot=True) for i in (1, 2, 3)),
    )
    info = _info(*nodes, group=_group())
    spec = settings.adopt(_flags(tmp_path, workers=5, instance_type="m6i.large"), info)
    settings.check_matches(spec, info)
    assert spec.workers == 5
    with pytest.raises(UsageError, match="remove-node worker-3"):
        settings.check_matches(settings.adopt(_flags(tmp_path, workers=2), info), info)


def test_environment_and_file_count_as_explicit(tmp_path: Path) -> None:
    (tmp_path / "sparkube.yaml").write_text("control_plane_type: m6i.large\n")
    env = Environment(environ={"SPARKUBE_WORKERS": "1"}, cwd=tmp_path, interactive=False)
    given = load_spec(env=env, flags={"name": "c"})
    info = _info(_node("control-plane", "t3.large"), group=_group())
    spec = settings.adopt(given, info)
    assert spec.workers == 1
    with pytest.raises(ConfigError, match=r"control-plane type t3.large \(asked m6i.large\)"):
        settings.check_matches(spec, info)


def test_nodes_win_over_the_record_and_fill_in_for_old_clusters(tmp_path: Path) -> None:
    # A cluster made before settings were recorded: only node facts exist.
    nodes = (
        _node("control-plane", "t3.large", **{"sparkube:kubernetes": "1.37"}),
        _node("worker-1", "m6i.large", **{"sparkube:root-gb": "80"}),
        _node("worker-2", "m6i.large", **{"sparkube:root-gb": "80"}),
    )
    info = _info(*nodes, group={"sparkube:cluster": "c"})
    spec = settings.adopt(_flags(tmp_path), info)
    assert (spec.workers, spec.instance_type, spec.control_plane_type) == (
        2,
        "m6i.large",
        "t3.large",
    )
    assert (spec.kubernetes_version, spec.root_volume_gb, spec.spot) == ("1.37", 80, False)
    assert spec.ttl is None


def test_a_worker_lost_since_is_replaced_on_resume(tmp_path: Path) -> None:
    nodes = (_node("control-plane", "t3.large"), _node("worker-1", "m6i.large", spot=True))
    spec = settings.adopt(_flags(tmp_path), _info(*nodes, group=_group()))
    assert spec.workers == 3


def test_nothing_exists_nothing_adopted(tmp_path: Path) -> None:
    given = _flags(tmp_path)
    assert settings.adopt(given, _info()) is given


def test_a_tampered_record_is_ignored(tmp_path: Path) -> None:
    info = _info(group=_group(**{"sparkube:workers": "lots", "sparkube:ttl": "soon"}))
    spec = settings.adopt(_flags(tmp_path), info)
    assert spec.workers == 2 and spec.ttl is None
    assert spec.instance_type == "m6i.large"


def test_an_explicit_ami_other_than_the_nodes_is_a_difference(tmp_path: Path) -> None:
    info = _info(_node("control-plane", "t3.medium"), group={"sparkube:cluster": "c"})
    with pytest.raises(ConfigError, match=r"AMI ami-00000001 \(asked ami-0123456789abcdef0\)"):
        settings.check_matches(
            settings.adopt(_flags(tmp_path, ami="ami-0123456789abcdef0"), info), info
        )


def test_cpu_credits_are_recorded_adopted_and_a_different_one_refused(tmp_path: Path) -> None:
    created = CREATED.model_copy(update={"cpu_credits": "standard"})
    group = _group(created)
    assert group["sparkube:cpu-credits"] == "standard"
    info = _info(_node("control-plane", "t3.large"), group=group)
    resumed = settings.adopt(_flags(tmp_path), info)  # a plain 'up' keeps the cluster's
    assert resumed.cpu_credits == "standard"
    settings.check_matches(resumed, info)
    other = settings.adopt(_flags(tmp_path, cpu_credits="unlimited"), info)
    with pytest.raises(ConfigError) as err:
        settings.check_matches(other, info)
    assert "CPU credits standard (asked unlimited)" in str(err.value)
    # a cluster recorded before the setting existed: nothing to compare, the default holds
    old = _info(_node("control-plane", "t3.large"), group=_group())
    old.tags.pop("sparkube:cpu-credits")
    assert settings.adopt(_flags(tmp_path), old).cpu_credits == "unlimited"  # as AWS ran it
