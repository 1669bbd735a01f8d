"""The kubelet-serving approver addon: schema-valid, pinned, least privilege, configured
for the cluster (its VPC's CIDRs, sparkube's node names), on the control plane."""

from __future__ import annotations

import re

import pytest
import yaml

from sparkube.kube import approver

CIDRS = ("172.31.0.0/16", "2600:1f18:abcd:1200::/56")


def docs() -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(approver.render_csr_approver(CIDRS)) if d]


def deployment() -> dict:  # type: ignore[type-arg]
    return next(d for d in docs() if d["kind"] == "Deployment")


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0", "1.37.0"])
def test_validates_against_the_kubernetes_schema(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in docs():
        kubernetes_validate.validate(doc, version, strict=True)


def test_pinned_image_configured_for_this_cluster() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/postfinance/kubelet-csr-approver:v1.2.14"
    args = container["args"]
    assert "-provider-ip-prefixes=172.31.0.0/16,2600:1f18:abcd:1200::/56" in args
    assert f"-provider-regex={approver.NODE_NAME_REGEX}" in args
    assert "-allowed-dns-names=1" in args and "-bypass-dns-resolution=true" in args
    assert not any(a.startswith(("-skip-deny-step", "-bypass-hostname-check")) for a in args)
    # on the control plane, so it is there before any worker joins
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
            "effect": "NoSchedule"} in pod["tolerations"]  # fmt: skip
    assert deployment()["spec"]["replicas"] == 1
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_node_name_regex_is_sparkubes_naming() -> None:
    regex = re.compile(approver.NODE_NAME_REGEX)
    # the names `up` gives, and the instance ids self-joined workers register under
    for name in ("control-plane", "worker-1", "worker-12", "i-0a1b2c3d", "i-0123456789abcdef0"):
        assert regex.fullmatch(name)
    for name in (
        "worker-0",
        "worker-",
        "ip-10-0-0-1",
        "control-plane.evil",
        "kubernetes",
        "i-",
        "i-0a1b2c3",
        "i-0123456789abcdef01",
        "i-0A1B2C3D",
        "i-0a1b2c3d.evil",
    ):
        assert not regex.search(name), name  # fmt: skip


def test_rbac_is_least_privilege() -> None:
    (role,) = [d for d in docs() if d["kind"] == "ClusterRole"]
    assert role["rules"] == [
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["certificates.k8s.io"],
         "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
         "resourceNames": ["kubernetes.io/kubelet-serving"], "verbs": ["approve"]},
    ]  # fmt: skip
    (binding,) = [d for d in docs() if d["kind"] == "ClusterRoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kubelet-csr-approver", "namespace": "kube-system"}
    ]


def test_refuses_to_render_without_a_vpc_or_with_a_bad_cidr() -> None:
    with pytest.raises(ValueError):
        approver.render_csr_approver(())
    with pytest.raises(ValueError):
        approver.render_csr_approver(("172.31.0.0/16,0.0.0.0/0",))


def test_the_test_bed_builds_the_version_sparkube_names() -> None:
    from pathlib import Path

    env = Path(__file__).resolve().parents[2] / "tools" / "nodes" / "versions.env"
    values = dict(
        line.split("=", 1)
        for line in env.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert values["CSR_APPROVER_VERSION"] == approver.APPROVER_VERSION
