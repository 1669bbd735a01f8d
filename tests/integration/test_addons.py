"""The addons phase against the real test control plane: applied, idempotent, and the
Spark service account can do what Spark needs in its namespace and nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sparkube.env import Environment
from sparkube.errors import ClusterError
from sparkube.kube.termination import NTH_IMAGE, NTH_NAME
from sparkube.progress import RecordingReporter
from sparkube.spark.phase import run_addons_phase
from tests.fixtures.controlplane import KubeControlPlane

pytestmark = pytest.mark.integration

SA = "system:serviceaccount:spark:spark"


def can(kube: KubeControlPlane, *args: str) -> bool:
    """The API server's answer to ``kubectl auth can-i ARGS`` as the Spark service account.

    kubectl says "yes" with exit 0 and "no" with exit 1; anything else (an unknown
    resource, a connection error, a bad flag: exit 1 too, but no plain "no") is an error
    here, so a broken check can never pass as a "no"."""
    result = kube.kubectl("auth", "can-i", *args, f"--as={SA}", check=False)
    answer = (result.returncode, result.stdout.strip())
    if answer == (0, "yes"):
        return True
    if answer == (1, "no"):
        return False
    raise AssertionError(
        f"kubectl auth can-i {' '.join(args)} gave no yes/no answer: exit {result.returncode},"
        f" stdout {result.stdout!r}, stderr {result.stderr!r}"
    )


def install_kubeconfig(kube: KubeControlPlane, env: Environment) -> Path:
    target = env.cluster_dir("sparkube", create=True) / "kubeconfig"
    shutil.copyfile(kube.kubeconfig, target)
    return target


def test_addons_phase_applies_spark_rbac_idempotently(
    kube: KubeControlPlane, sparkube_env: Environment
) -> None:
    install_kubeconfig(kube, sparkube_env)
    reporter = RecordingReporter()
    summary = run_addons_phase(env=sparkube_env, cluster="sparkube", reporter=reporter)
    assert "4 objects" in summary
    role = kube.get("/apis/rbac.authorization.k8s.io/v1/namespaces/spark/roles/spark-driver")
    version = role["metadata"]["resourceVersion"]

    run_addons_phase(env=sparkube_env, cluster="sparkube", reporter=reporter)
    again = kube.get("/apis/rbac.authorization.k8s.io/v1/namespaces/spark/roles/spark-driver")
    assert again["metadata"]["resourceVersion"] == version  # re-applying changes nothing
    # no spot workers: no termination handler
    assert not kube.exists(f"/apis/apps/v1/namespaces/kube-system/daemonsets/{NTH_NAME}")

    # What the driver uses, in its namespace (tests/bed/test_5_rbac.py proves each):
    for verb, resource in [
        ("get", "pods"), ("create", "pods"), ("watch", "pods"), ("deletecollection", "pods"),
        ("create", "configmaps"), ("deletecollection", "services"),
    ]:  # fmt: skip
        assert can(kube, verb, resource, "-n", "spark"), (verb, resource)
    # ... and nothing beyond it:
    assert not can(kube, "delete", "pods", "-n", "spark")
    assert not can(kube, "create", "services", "-n", "spark")
    assert not can(kube, "patch", "networkpolicies.networking.k8s.io", "-n", "spark")
    # (kubectl reads "pods/log" as a pod named "log": subresources need --subresource)
    assert not can(kube, "get", "pods", "--subresource=log", "-n", "spark")
    assert not can(kube, "create", "pods", "-n", "default")
    assert not can(kube, "get", "secrets", "-n", "spark")
    assert not can(kube, "list", "nodes")
    assert not can(kube, "create", "rolebindings", "-n", "spark")
    assert not can(kube, "create", "pods", "--subresource=exec", "-n", "spark")


def test_addons_phase_applies_the_termination_handler_with_spot_workers(
    kube: KubeControlPlane, sparkube_env: Environment
) -> None:
    """spot: aws-node-termination-handler too (its account, ClusterRole, binding and
    DaemonSet), once: applied again, nothing changes."""
    install_kubeconfig(kube, sparkube_env)
    reporter = RecordingReporter()
    summary = run_addons_phase(env=sparkube_env, cluster="sparkube", reporter=reporter,
                               spot=True)  # fmt: skip
    assert summary.startswith(f"{NTH_NAME}, spark namespace") and "8 objects" in summary, summary
    paths = [
        f"/api/v1/namespaces/kube-system/serviceaccounts/{NTH_NAME}",
        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{NTH_NAME}",
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{NTH_NAME}",
        f"/apis/apps/v1/namespaces/kube-system/daemonsets/{NTH_NAME}",
    ]

    def versions() -> list[str]:
        # the objects' versions, and the DaemonSet's spec generation: its status is the
        # controller manager's to update meanwhile (a new resourceVersion, no change)
        got = [kube.get(p)["metadata"] for p in paths]
        return [m["resourceVersion"] for m in got[:-1]] + [str(got[-1]["generation"])]

    before = versions()
    run_addons_phase(env=sparkube_env, cluster="sparkube", reporter=reporter, spot=True)
    assert versions() == before
    ds = kube.get(paths[-1])
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == NTH_IMAGE
    # kwok's workers are no spot workers: it runs on none of them
    assert ds["status"].get("desiredNumberScheduled", 0) == 0


def test_addons_phase_without_kubeconfig_says_what_to_do(sparkube_env: Environment) -> None:
    with pytest.raises(ClusterError, match="run sparkube up to complete the kubernetes phase"):
        run_addons_phase(env=sparkube_env, cluster="sparkube", reporter=RecordingReporter())
