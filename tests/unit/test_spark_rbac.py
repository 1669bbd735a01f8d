"""Spark's RBAC manifest: valid for every supported Kubernetes, namespaced, minimal."""

from __future__ import annotations

import pytest
import yaml

from sparkube.spark.rbac import render_spark_rbac
from sparkube.spec import SUPPORTED_KUBERNETES


def documents(text: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("minor", SUPPORTED_KUBERNETES)
def test_valid_against_the_kubernetes_schema(minor: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in documents(render_spark_rbac()):
        kubernetes_validate.validate(doc, f"{minor}.0", strict=True)


def test_namespaced_least_privilege() -> None:
    docs = {d["kind"]: d for d in documents(render_spark_rbac("jobs", "runner"))}
    assert set(docs) == {"Namespace", "ServiceAccount", "Role", "RoleBinding"}
    role = docs["Role"]
    assert role["metadata"]["namespace"] == "jobs"  # type: ignore[index]
    rules = role["rules"]  # type: ignore[index]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}  # fmt: skip
    # each one proved needed by tests/bed/test_5_rbac.py
    assert granted == {
        *(("", "pods", v) for v in ("get", "list", "watch", "create", "deletecollection")),
        ("", "configmaps", "create"), ("", "configmaps", "deletecollection"),
        ("", "services", "deletecollection"), ("", "persistentvolumeclaims", "deletecollection"),
    }  # fmt: skip
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert "secrets" not in rule["resources"]
    binding = docs["RoleBinding"]
    assert binding["roleRef"]["kind"] == "Role"  # type: ignore[index]
    assert binding["subjects"] == [  # type: ignore[index]
        {"kind": "ServiceAccount", "name": "runner", "namespace": "jobs"}
    ]
    labels = docs["Namespace"]["metadata"]["labels"]  # type: ignore[index]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_unsafe_values_are_refused() -> None:
    with pytest.raises(ValueError, match="unsafe value"):
        render_spark_rbac("spark\nkind: ClusterRoleBinding")
