"""The spot-interruption addon (aws-node-termination-handler in IMDS mode): schema-valid,
pinned, least privilege, on the spot workers only, with the settings docs/DESIGN.md
gives. What the program does with them: tests/integration/test_termination_handler.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkube.env import Environment
from sparkube.kube import termination

REPO = Path(__file__).resolve().parents[2]


def docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(termination.render_termination_handler()) if d]


def daemonset() -> dict[str, Any]:
    (ds,) = [d for d in docs() if d["kind"] == "DaemonSet"]
    return ds


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0", "1.37.0"])
def test_validates_against_the_kubernetes_schema(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in docs():
        kubernetes_validate.validate(doc, version, strict=True)


def test_what_it_is_made_of() -> None:
    assert [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs()] == [
        ("ServiceAccount", "aws-node-termination-handler", "kube-system"),
        ("ClusterRole", "aws-node-termination-handler", None),
        ("ClusterRoleBinding", "aws-node-termination-handler", None),
        ("DaemonSet", "aws-node-termination-handler", "kube-system"),
    ]


def test_pinned_image_on_the_spot_workers_only() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "public.ecr.aws/aws-ec2/aws-node-termination-handler:v1.25.6"
    assert container["image"] == termination.NTH_IMAGE
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", "sparkube.io/market": "spot"}
    assert termination.MARKET_LABEL == "sparkube.io/market"
    # it stays on the node it cordons (and one tainted for any other reason)
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "system-node-critical"
    # the metadata service of its own instance, whatever the hop limit
    assert pod["hostNetwork"] is True
    assert pod["serviceAccountName"] == "aws-node-termination-handler"


def test_settings() -> None:
    (container,) = daemonset()["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env == {
        "NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
        "NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        # IMDS mode: no queue
        "ENABLE_SQS_TERMINATION_DRAINING": "false",
        # a spot notice drains; a rebalance recommendation only cordons
        "ENABLE_SPOT_INTERRUPTION_DRAINING": "true",
        "ENABLE_REBALANCE_MONITORING": "true",
        "ENABLE_REBALANCE_DRAINING": "false",
        "ENABLE_SCHEDULED_EVENT_DRAINING": "true",
        "ENABLE_ASG_LIFECYCLE_DRAINING": "false",
        # the drain starts 120 s before the notice's time and waits for the pods as long;
        # each pod keeps its own grace period (executors: time to migrate their blocks)
        "NODE_TERMINATION_GRACE_PERIOD": "120",
        "POD_TERMINATION_GRACE_PERIOD": "-1",
        "DELETE_LOCAL_DATA": "true",
        "IGNORE_DAEMON_SETS": "true",
        "CORDON_ONLY": "false",
        # the taint says what came (sparkube's controller reads it); no events
        "TAINT_NODE": "true",
        "EMIT_KUBERNETES_EVENTS": "false",
        "METADATA_TRIES": "3",
        "JSON_LOGGING": "true",
        "LOG_LEVEL": "info",
        "ENABLE_PROMETHEUS_SERVER": "false",
        "ENABLE_PROBES_SERVER": "false",
    }
    assert container["resources"]["requests"] == {"cpu": "10m", "memory": "48Mi"}
    assert container["resources"]["limits"] == {"memory": "128Mi"}


def test_restricted_as_far_as_host_networking_allows() -> None:
    pod = daemonset()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "volumes" not in pod  # no hostPath
    assert not any(k in pod for k in ("hostPID", "hostIPC"))


def test_rbac_is_least_privilege() -> None:
    (role,) = [d for d in docs() if d["kind"] == "ClusterRole"]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get"]},
    ]
    (binding,) = [d for d in docs() if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == "aws-node-termination-handler"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "aws-node-termination-handler",
         "namespace": "kube-system"}
    ]  # fmt: skip


def test_shown_and_applied_with_spot_workers_only() -> None:
    assert termination.termination_documents(False) == {}
    (text,) = termination.termination_documents(True).values()
    assert text == termination.render_termination_handler()


def test_sparkube_manifests_shows_it_with_spot_workers(cli: Any, sparkube_env: Environment) -> None:
    plain = cli("manifests")
    assert plain.exit_code == 0, plain.stderr
    assert "aws-node-termination-handler" not in plain.stdout
    spot_env = dataclasses.replace(
        sparkube_env, environ={**sparkube_env.environ, "SPARKUBE_SPOT": "true"}
    )
    spot = cli("manifests", env=spot_env)
    assert spot.exit_code == 0, spot.stderr
    assert "# --- spot interruptions: aws-node-termination-handler v1.25.6" in spot.stdout
    assert termination.NTH_IMAGE in spot.stdout


def test_the_test_bed_builds_the_version_sparkube_names() -> None:
    env = REPO / "tools" / "nodes" / "versions.env"
    values = dict(
        line.split("=", 1)
        for line in env.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert values["NTH_VERSION"] == termination.NTH_VERSION
