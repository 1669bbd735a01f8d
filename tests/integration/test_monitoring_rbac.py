"""kube-opex-analytics' ClusterRole grants exactly the collector's reads: take one away
and that read is refused.

The collector (backend.py ``pull_k8s``, release 25.10.0 that sparkube deploys) makes five
collection GETs per poll with its service-account token: namespaces, nodes, pods, and
metrics.k8s.io nodes and pods. The test's image stand-in makes the same five
(tests/fixtures/procnode/opex_standin.py ``READS``); here they are made with the token of
an account bound to the ClusterRole sparkube ships (sparkube/manifests, rendered by
sparkube.monitoring.addons), then to that role without each resource in turn, against
the session's process cluster: a real API server with the real metrics-server behind
metrics.k8s.io, so RBAC is decided for real, aggregated API included.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from sparkube.monitoring.addons import render_opex
from tests.fixtures.procnode.opex_standin import READS
from tests.fixtures.procnodes import ProcessCluster

pytestmark = pytest.mark.integration

RBAC = "/apis/rbac.authorization.k8s.io/v1"
Grant = tuple[str, str]  # (apiGroup, resource)


def shipped_role() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(render_opex(0.25)) if d]
    return next(d for d in docs if d["kind"] == "ClusterRole")


def grants(role: dict[str, Any]) -> list[Grant]:
    return [(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]]


def without(role: dict[str, Any], removed: Grant) -> list[dict[str, Any]]:
    rules = []
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            kept = [r for r in rule["resources"] if (group, r) != removed]
            if kept:
                rules.append({"apiGroups": [group], "resources": kept, "verbs": rule["verbs"]})
    return rules


def read_grant(path: str) -> Grant:
    group = "metrics.k8s.io" if path.startswith("/apis/metrics.k8s.io/") else ""
    return group, path.rstrip("/").rsplit("/", 1)[1]


class Reader:
    """A service account whose ClusterRole the test sets, and the collector's reads."""

    def __init__(self, pc: ProcessCluster) -> None:
        self.pc = pc
        self.name = f"opex-rbac-{secrets.token_hex(3)}"
        self.namespace = pc.kube.create_namespace(self.name)
        pc.kube.api(
            "POST",
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "collector"}},
        )
        self.token = pc.kube.token_for(self.namespace, "collector")

    def bind(self, rules: list[dict[str, Any]]) -> None:
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": self.name},
            "rules": rules,
        }
        path = f"{RBAC}/clusterroles/{self.name}"
        if self.pc.kube.exists(path):
            self.pc.kube.api("PUT", path, role)
        else:
            self.pc.kube.api("POST", f"{RBAC}/clusterroles", role)
            self.pc.kube.api(
                "POST",
                f"{RBAC}/clusterrolebindings",
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": self.name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": self.name,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "collector", "namespace": self.namespace}
                    ],
                },
            )

    def statuses(self) -> dict[str, int]:
        """Each read's HTTP status with this account's token."""
        out = {}
        for what, path in READS.items():
            res = self.pc.kube.api("GET", path, token=self.token, ok_statuses=(403, 404, 503))
            out[what] = int(res.get("code", 200)) if res.get("kind") == "Status" else 200
        return out

    def settle(self, expected: dict[str, int]) -> dict[str, int]:
        """The statuses once the API server's RBAC caches have the new role (at most 15 s)."""
        seen: dict[str, int] = {}

        def matches() -> bool:
            seen.update(self.statuses())
            return seen == expected

        with contextlib.suppress(TimeoutError):
            self.pc.kube.wait_for("the role to take effect", matches, timeout=15, interval=0.5)
        return seen

    def close(self) -> None:
        for kind in ("clusterrolebindings", "clusterroles"):
            self.pc.kube.api("DELETE", f"{RBAC}/{kind}/{self.name}", ok_statuses=(404,))
        self.pc.delete_namespace(self.namespace)


@pytest.fixture(scope="module")
def reader(process_cluster: ProcessCluster) -> Iterator[Reader]:
    r = Reader(process_cluster)
    try:
        yield r
    finally:
        r.close()


def test_the_reads_are_exactly_what_the_role_grants() -> None:
    assert sorted(read_grant(p) for p in READS.values()) == sorted(grants(shipped_role()))
    assert {v for rule in shipped_role()["rules"] for v in rule["verbs"]} == {"list"}


def test_the_shipped_role_allows_every_read(reader: Reader) -> None:
    reader.bind(shipped_role()["rules"])
    assert reader.settle(dict.fromkeys(READS, 200)) == dict.fromkeys(READS, 200)


@pytest.mark.parametrize("what", sorted(READS))
def test_without_its_grant_that_read_is_refused(reader: Reader, what: str) -> None:
    removed = read_grant(READS[what])
    reader.bind(without(shipped_role(), removed))
    expected = {w: (403 if w == what else 200) for w in READS}
    assert reader.settle(expected) == expected, f"without {removed}"
