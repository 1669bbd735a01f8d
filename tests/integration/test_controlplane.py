"""The test control plane is a real Kubernetes: SSA, RBAC, scheduling, spark-submit.

Uses the ``kube`` fixture (tests/fixtures/controlplane.py): skips when the binaries of
tools/kube/build.sh are not built.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from sparkube.spark.rbac import SPARK_NAMESPACE as SPARK_NAMESPACE_SHIPPED
from sparkube.spark.rbac import render_spark_rbac
from tests.fixtures.controlplane import (
    BASELINE_COLLECTIONS,
    BINARIES,
    BUILD_SCRIPT,
    INSTANCE_TYPE_ENV,
    NODE_SIZES,
    STALE_REASON,
    KubeControlPlane,
    binaries_problem,
    build_stamp,
    kube_bin_dir,
    node_instance_types,
    node_size,
)

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"
FORBIDDEN_FIXTURE = DATA / "spark_submit_forbidden.txt"
SPARK_IMAGE = "apache/spark:4.0.1-python3"
PI_APP = "local:///opt/spark/examples/src/main/python/pi.py"

SPARK_NAMESPACE = SPARK_NAMESPACE_SHIPPED
# The manifests sparkube itself applies in the addons phase: these tests prove that what
# we ship lets real spark-submit run (and that without the binding it cannot).
SPARK_MANIFESTS = render_spark_rbac()


def _lightkube_client(kube: KubeControlPlane) -> Any:
    lightkube = pytest.importorskip("lightkube")
    config = lightkube.KubeConfig.from_file(str(kube.kubeconfig))
    return lightkube.Client(config=config, field_manager="sparkube")


def _apply_spark_manifests(kube: KubeControlPlane, with_binding: bool = True) -> list[Any]:
    from lightkube import codecs

    client = _lightkube_client(kube)
    objs = codecs.load_all_yaml(SPARK_MANIFESTS)
    if not with_binding:
        objs = [o for o in objs if o.kind != "RoleBinding"]
    return [client.apply(o, field_manager="sparkube", force=True) for o in objs]


# --------------------------------------------------------------------------- basics


# --------------------------------------------------------------------------- binaries' stamp


def _build_sh_without_go(tmp_path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """Run tools/kube/build.sh against `cache` with a PATH that has no Go: it returns 0 at
    once when the cache is up to date, and dies (never builds) when it is not."""
    path_dir = tmp_path / "path"
    path_dir.mkdir(exist_ok=True)
    for tool in ("bash", "cat", "cut", "dirname", "sha256sum"):
        found = shutil.which(tool)
        assert found, f"{tool} not on PATH"
        link = path_dir / tool
        if not link.exists():
            link.symlink_to(found)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKUBE_KUBE_")}
    env.update(PATH=str(path_dir), SPARKUBE_KUBE_CACHE=str(cache))
    return subprocess.run(
        [str(path_dir / "bash"), str(BUILD_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_build_stamp_is_what_build_sh_accepts(tmp_path: Path) -> None:
    """A cache with our stamp (and fake binaries) is up to date for build.sh itself."""
    stamp = build_stamp()
    assert re.fullmatch(r"[0-9a-f]{16}", stamp)
    bin_dir = tmp_path / "cache" / kube_bin_dir().parent.name / "bin"
    bin_dir.mkdir(parents=True)
    for name in BINARIES:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / ".stamp").write_text(stamp + "\n")
    res = _build_sh_without_go(tmp_path, tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    assert "present in" in res.stdout
    assert binaries_problem(bin_dir) is None

    (bin_dir / ".stamp").write_text("0123456789abcdef\n")
    res = _build_sh_without_go(tmp_path, tmp_path / "cache")
    assert res.returncode != 0 and "'go' not found" in res.stderr  # would rebuild
    problem = binaries_problem(bin_dir)
    assert problem and problem.startswith(STALE_REASON)
    assert "bash tools/kube/build.sh" in problem and "0123456789abcdef" in problem
    assert binaries_problem(bin_dir, check_stamp=False) is None  # SPARKUBE_KUBE_BIN_DIR

    (bin_dir / ".stamp").unlink()
    problem = binaries_problem(bin_dir)
    assert problem and "stale" in problem and ".stamp is missing" in problem
    (bin_dir / "kwok").unlink()
    problem = binaries_problem(bin_dir)
    assert problem and "not built" in problem and "kwok" in problem


def test_build_stamp_matches_the_current_cache(tmp_path: Path) -> None:
    if os.environ.get("SPARKUBE_KUBE_BIN_DIR"):
        pytest.skip("SPARKUBE_KUBE_BIN_DIR is set: no build.sh cache to check")
    bin_dir = kube_bin_dir()
    if not (bin_dir / ".stamp").is_file():
        pytest.skip(f"no {bin_dir}/.stamp: run bash tools/kube/build.sh")
    cache = bin_dir.parent.parent
    res = _build_sh_without_go(tmp_path, cache)
    if res.returncode != 0:
        pytest.skip(f"the binaries in {bin_dir} are stale: run bash tools/kube/build.sh")
    assert "present in" in res.stdout
    assert (bin_dir / ".stamp").read_text().strip() == build_stamp()


# --------------------------------------------------------------------------- node sizes


def test_node_sizes_follow_sparkube_spec_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparkube.spec import ClusterSpec

    spec = ClusterSpec()
    monkeypatch.delenv(INSTANCE_TYPE_ENV, raising=False)
    assert node_instance_types() == (spec.instance_type, spec.control_plane_type)
    assert node_size(spec.instance_type) == ("2", "4Gi")  # t3.medium
    assert NODE_SIZES["m6i.xlarge"] == ("4", "16Gi")
    monkeypatch.setenv(INSTANCE_TYPE_ENV, "t3.large")
    assert node_instance_types() == ("t3.large", spec.control_plane_type)
    monkeypatch.setenv(INSTANCE_TYPE_ENV, "x9.huge")
    with pytest.raises(ValueError, match=r"'x9.huge'.*known: m6i.large, m6i.xlarge"):
        node_instance_types()


def test_nodes_are_sized_by_instance_type(kube: KubeControlPlane) -> None:
    cpu, memory = node_size(kube.instance_type)
    for name in kube.workers:
        node = kube.get(f"/api/v1/nodes/{name}")
        assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == kube.instance_type
        assert (node["status"]["capacity"]["cpu"], node["status"]["capacity"]["memory"]) == (
            cpu,
            memory,
        )
    kube.add_node("big-1", instance_type="m6i.xlarge")
    node = kube.get("/api/v1/nodes/big-1")
    assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "m6i.xlarge"
    alloc = node["status"]["allocatable"]
    assert (alloc["cpu"], alloc["memory"]) == ("4", "16Gi")
    assert kube.node_ready("big-1")


# --------------------------------------------------------------------------- reset()


def _created_objects(kube: KubeControlPlane) -> dict[str, dict[str, Any]]:
    """One object of every kind reset() must clean, by collection path."""
    labels = {"sparkube.test/reset": "true"}
    meta = {"name": "reset-probe", "labels": labels}
    pod_template = {
        "metadata": {"labels": {"app": "reset-probe"}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]},
    }
    rbac = "rbac.authorization.k8s.io"
    return {
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions": {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "probes.reset.sparkube.test", "labels": labels},
            "spec": {
                "group": "reset.sparkube.test",
                "scope": "Namespaced",
                "names": {"kind": "Probe", "plural": "probes", "singular": "probe"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        },
        "/apis/apiregistration.k8s.io/v1/apiservices": {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.probe.sparkube.test", "labels": labels},
            "spec": {
                "group": "probe.sparkube.test",
                "version": "v1beta1",
                "service": {"namespace": "kube-system", "name": "reset-probe", "port": 443},
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 10,
            },
        },
        f"/apis/{rbac}/v1/clusterroles": {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": meta,
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
        f"/apis/{rbac}/v1/clusterrolebindings": {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "reset-probe"},
            "subjects": [{"kind": "ServiceAccount", "name": "reset-probe", "namespace": "x"}],
        },
        "/apis/scheduling.k8s.io/v1/priorityclasses": {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": meta,
            "value": 1000,
        },
        "/apis/storage.k8s.io/v1/storageclasses": {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": meta,
            "provisioner": "sparkube.test/none",
        },
        "/apis/apps/v1/namespaces/kube-system/deployments": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "reset-probe"}},
                "template": pod_template,
            },
        },
        "/apis/apps/v1/namespaces/kube-system/daemonsets": {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": "reset-probe"}}, "template": pod_template},
        },
        "/api/v1/namespaces/kube-system/services": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": {"app": "reset-probe"}, "ports": [{"port": 443}]},
        },
        "/api/v1/namespaces/kube-system/serviceaccounts": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
        },
        "/api/v1/namespaces/kube-system/configmaps": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"k": "v"},
        },
    }


def _names(kube: KubeControlPlane, path: str) -> set[str]:
    return {o["metadata"]["name"] for o in kube.get(path)["items"]}


def test_reset_deletes_cluster_scoped_and_kube_system_objects(
    kube_control_plane: KubeControlPlane,
) -> None:
    kube = kube_control_plane
    kube.reset()
    before = {path: _names(kube, path) for path in BASELINE_COLLECTIONS}
    objects = _created_objects(kube)
    assert set(objects) == set(BASELINE_COLLECTIONS)
    for path, obj in objects.items():
        kube.api("POST", path, obj)
    created = kube.created_since_start()
    for path, obj in objects.items():
        assert obj["metadata"]["name"] in created.get(path, []), path

    t0 = time.monotonic()
    kube.reset()
    elapsed = time.monotonic() - t0
    assert not kube.created_since_start()
    for path, obj in objects.items():
        assert not kube.exists(f"{path}/{obj['metadata']['name']}"), path
    after = {path: _names(kube, path) for path in BASELINE_COLLECTIONS}
    assert after == before  # nothing of the system's own was touched
    assert "logs.kwok.x-k8s.io" in after[BASELINE_COLLECTIONS[0]]
    assert elapsed < 3.0, f"reset() took {elapsed:.1f} s"
    # the same CRD can be created again at once
    kube.api("POST", BASELINE_COLLECTIONS[0], objects[BASELINE_COLLECTIONS[0]])
    kube.reset()
    assert not kube.created_since_start()


def test_version_nodes_and_system_objects(kube: KubeControlPlane) -> None:
    assert kube.get("/version")["gitVersion"] == kube.kube_version == "v1.36.3"
    out = kube.kubectl("version", "-o", "json").stdout
    assert '"gitVersion": "v1.36.3"' in out  # client and server

    nodes = {n["metadata"]["name"]: n for n in kube.get("/api/v1/nodes")["items"]}
    assert set(kube.workers) == {"worker-1", "worker-2", "worker-3"} <= set(nodes)
    for name in kube.workers:
        alloc = nodes[name]["status"]["allocatable"]
        assert (alloc["cpu"], alloc["memory"], alloc["pods"]) == (
            *node_size(kube.instance_type),
            "110",
        )
        assert kube.node_ready(name)
    cp = nodes["control-plane"]
    assert cp["spec"]["taints"][0]["key"] == "node-role.kubernetes.io/control-plane"
    # controller-manager publishes the root CA into every namespace
    kube.wait_for(
        "kube-root-ca.crt in default",
        lambda: kube.exists("/api/v1/namespaces/default/configmaps/kube-root-ca.crt"),
    )


def test_server_side_apply_round_trip(kube: KubeControlPlane) -> None:
    client = _lightkube_client(kube)
    first = _apply_spark_manifests(kube)
    assert [o.kind for o in first] == ["Namespace", "ServiceAccount", "Role", "RoleBinding"]

    from lightkube.resources.rbac_authorization_v1 import Role

    role = client.get(Role, "spark-driver", namespace=SPARK_NAMESPACE)
    granted = {(r, v) for rule in role.rules for r in rule.resources for v in rule.verbs}
    assert ("pods", "create") in granted and ("configmaps", "create") in granted
    assert not any(r == "services" and v == "create" for r, v in granted)  # the driver's cut
    managers = {m.manager for m in role.metadata.managedFields}
    assert "sparkube" in managers

    second = _apply_spark_manifests(kube)
    before = {(o.kind, o.metadata.name): o.metadata.resourceVersion for o in first}
    after = {(o.kind, o.metadata.name): o.metadata.resourceVersion for o in second}
    assert before == after, "re-applying identical manifests must not change any object"

    # kubectl's server-side apply agrees (no diff, object unchanged)
    res = kube.kubectl(
        "apply", "--server-side", "--field-manager=sparkube", "-f", "-", input=SPARK_MANIFESTS
    )
    assert "serverside-applied" in res.stdout
    third = client.get(Role, "spark-driver", namespace=SPARK_NAMESPACE)
    assert third.metadata.resourceVersion == before[("Role", "spark-driver")]


# --------------------------------------------------------------------------- RBAC + kwok


def _pod(
    name: str, *, labels: dict[str, str] | None = None, node: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": "busybox:1.37",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ],
        "restartPolicy": "Never",
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def test_rbac_is_enforced_for_service_account_tokens(kube: KubeControlPlane) -> None:
    kube.create_namespace("team-a")
    kube.create_namespace("team-b")
    kube.create_service_account("team-a", "runner")
    kube.api(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-runner"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list"]}
            ],
        },
    )
    kube.api(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "pod-runner"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-runner",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "team-a"}],
        },
    )
    token = kube.token_for("team-a", "runner")

    created = kube.api("POST", "/api/v1/namespaces/team-a/pods", _pod("allowed"), token=token)
    assert created["metadata"]["namespace"] == "team-a"
    denied = kube.api(
        "POST", "/api/v1/namespaces/team-b/pods", _pod("denied"), token=token, ok_statuses=(403,)
    )
    assert denied["reason"] == "Forbidden"
    assert (
        'User "system:serviceaccount:team-a:runner" cannot create resource "pods"'
        in denied["message"]
    )
    # not even delete in its own namespace: the Role does not grant it
    refused = kube.api(
        "DELETE", "/api/v1/namespaces/team-a/pods/allowed", token=token, ok_statuses=(403,)
    )  # (a 2xx would also return here: the checks below tell the two apart)
    assert (refused.get("kind"), refused.get("code"), refused.get("reason")) == (
        "Status",
        403,
        "Forbidden",
    ), refused
    assert 'cannot delete resource "pods"' in refused["message"]
    assert kube.exists("/api/v1/namespaces/team-a/pods/allowed")

    # the scheduler binds the pod to a kwok worker, kwok runs it
    assert kube.wait_pod_phase("team-a", "allowed", "Running") == "Running"
    assert kube.pod("team-a", "allowed")["spec"]["nodeName"] in kube.workers


def test_pod_security_admission_is_enforced(kube: KubeControlPlane) -> None:
    kube.create_namespace("restricted", {"pod-security.kubernetes.io/enforce": "baseline"})
    pod = _pod("privileged")
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    denied = kube.api("POST", "/api/v1/namespaces/restricted/pods", pod, ok_statuses=(403,))
    assert 'violates PodSecurity "baseline:latest"' in denied["message"]


def test_pod_phases_by_label_and_by_helper(kube: KubeControlPlane) -> None:
    kube.create_namespace("phases")
    for name, phase in (("ok", "Succeeded"), ("bad", "Failed")):
        kube.api(
            "POST",
            "/api/v1/namespaces/phases/pods",
            _pod(name, labels={"sparkube.test/phase": phase}),
        )
    assert kube.wait_pod_phase("phases", "ok", ("Succeeded", "Failed")) == "Succeeded"
    assert kube.wait_pod_phase("phases", "bad", ("Succeeded", "Failed")) == "Failed"
    state = kube.pod("phases", "bad")["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["exitCode"] == 1

    kube.api(
        "POST",
        "/api/v1/namespaces/phases/pods",
        _pod("manual", labels={"sparkube.test/phase": "Running"}),
    )
    kube.wait_pod_phase("phases", "manual", "Running")
    time.sleep(1.5)
    assert kube.pod_phase("phases", "manual") == "Running"  # stays Running
    kube.set_pod_phase("phases", "manual", "Failed", exit_code=3)
    pod = kube.pod("phases", "manual")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


def test_nodes_can_be_added_not_ready_and_flipped(kube: KubeControlPlane) -> None:
    kube.add_node("late-1", cpu="2", memory="4Gi", ready=False)
    assert not kube.node_ready("late-1")
    kube.set_node_ready("late-1", True)
    assert kube.node_ready("late-1")

    kube.create_namespace("pinned")
    kube.api("POST", "/api/v1/namespaces/pinned/pods", _pod("on-late", node="late-1"))
    kube.wait_pod_phase("pinned", "on-late", "Running")

    kube.set_node_ready("worker-2", False)
    assert not kube.node_ready("worker-2")
    time.sleep(1)  # kwok must not take it back
    assert not kube.node_ready("worker-2")
    ready = [n for n in kube.workers if kube.node_ready(n)]
    assert ready == ["worker-1", "worker-3"]
    # reset() (run by the fixture) makes worker-2 Ready again and deletes late-1


def test_pod_logs_are_served_through_the_api_server(kube: KubeControlPlane) -> None:
    kube.create_namespace("logs")
    kube.api("POST", "/api/v1/namespaces/logs/pods", _pod("talker"))
    kube.wait_pod_phase("logs", "talker", "Running")
    assert kube.pod_logs("logs", "talker") == ""  # default: empty
    kube.set_pod_logs("logs", "talker", "Pi is roughly 3.141\ndone")
    kube.wait_for("logs", lambda: kube.pod_logs("logs", "talker") == "Pi is roughly 3.141\ndone\n")
    res = kube.kubectl("logs", "-n", "logs", "talker", "--tail=1")
    assert res.stdout == "done\n"


# --------------------------------------------------------------------------- spark-submit


def _spark_submit_cmd() -> Path:
    pyspark = pytest.importorskip("pyspark", reason="pyspark not installed")
    if shutil.which("java") is None:
        pytest.skip("java not on PATH (spark-submit needs Java 17)")
    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"


def _submitter(kube: KubeControlPlane) -> str:
    """A test-only account that may submit in cluster mode (pods, services, configmaps):
    the spark account's Role holds only what a driver does, and sparkube itself submits
    with the cluster's kubeconfig."""
    name = "test-submitter"
    ns = f"/api/v1/namespaces/{SPARK_NAMESPACE}"
    kube.api(
        "POST",
        f"{ns}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        ok_statuses=(409,),
    )
    kube.api(
        "POST",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{SPARK_NAMESPACE}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": SPARK_NAMESPACE}],
        },
        ok_statuses=(409,),
    )
    return name


def _spark_submit(
    kube: KubeControlPlane,
    tmp_path: Path,
    app_name: str,
    extra_conf: dict[str, str] | None = None,
    account: str | None = None,
) -> subprocess.CompletedProcess[str]:
    submit = _spark_submit_cmd()
    token_file = tmp_path / "token"
    token_file.write_text(kube.token_for(SPARK_NAMESPACE, account or _submitter(kube)))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    conf = {
        "spark.kubernetes.namespace": SPARK_NAMESPACE,
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        "spark.kubernetes.authenticate.submission.oauthTokenFile": str(token_file),
        "spark.kubernetes.authenticate.submission.caCertFile": str(kube.ca_file),
        "spark.kubernetes.container.image": SPARK_IMAGE,
        "spark.kubernetes.submission.waitAppCompletion": "true",
        "spark.kubernetes.report.interval": "1s",
        # keep the driver Running briefly so the watcher sees every phase
        "spark.kubernetes.driver.annotation.sparkube.test/delay": "2s",
        **(extra_conf or {}),
    }
    # The spark namespace enforces PodSecurity "restricted": sparkube's security contexts
    # reach Spark's pods through pod templates.
    from sparkube.spark.podspec import RESTRICTED_CONTAINER, RESTRICTED_POD

    for role in ("driver", "executor"):
        template = tmp_path / f"{role}-template.json"
        template.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "spec": {
                        "securityContext": RESTRICTED_POD,
                        "containers": [{"name": role, "securityContext": RESTRICTED_CONTAINER}],
                    },
                }
            )
        )
        conf[f"spark.kubernetes.{role}.podTemplateFile"] = str(template)
        conf[f"spark.kubernetes.{role}.podTemplateContainerName"] = role
    cmd = [
        str(submit),
        "--master",
        f"k8s://{kube.server}",
        "--deploy-mode",
        "cluster",
        "--name",
        app_name,
    ]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [PI_APP, "10"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBECONFIG", "SPARK_", "PYSPARK_"))
    }
    env.update(HOME=str(home), SPARK_LOCAL_IP="127.0.0.1")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180, check=False)


def _driver_pods(kube: KubeControlPlane) -> list[dict[str, Any]]:
    return list(
        kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/pods?labelSelector=spark-role%3Ddriver")[
            "items"
        ]
    )


def test_spark_submit_cluster_mode_runs_driver_to_success(
    kube: KubeControlPlane, tmp_path: Path
) -> None:
    _apply_spark_manifests(kube)
    res = _spark_submit(kube, tmp_path, "pi")
    output = res.stdout + res.stderr
    assert res.returncode == 0, output[-4000:]

    drivers = _driver_pods(kube)
    assert len(drivers) == 1
    driver = drivers[0]
    assert driver["status"]["phase"] == "Succeeded"
    assert driver["spec"]["nodeName"] in kube.workers
    assert driver["spec"]["serviceAccountName"] == "spark"
    requests = driver["spec"]["containers"][0]["resources"]["requests"]
    assert requests["cpu"] == "1"
    # spark-submit's watcher reported the phases it saw
    assert "phase: Running" in output and "phase: Succeeded" in output
    # cluster mode also created the driver's Service and ConfigMap
    assert kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/services")["items"]
    assert kube.get(f"/api/v1/namespaces/{SPARK_NAMESPACE}/configmaps")["items"]


def test_spark_submit_reports_failed_driver_but_exits_zero(
    kube: KubeControlPlane, tmp_path: Path
) -> None:
    """Spark 4.1.2 fact: spark-submit exits 0 even when the driver pod Failed, so
    whoever submits must read the driver's final phase / exit code itself."""
    _apply_spark_manifests(kube)
    res = _spark_submit(
        kube, tmp_path, "pi-fails", {"spark.kubernetes.driver.label.sparkube.test/phase": "Failed"}
    )
    output = res.stdout + res.stderr
    assert res.returncode == 0, output[-4000:]
    assert "phase: Failed" in output
    assert "exit code: 1" in output
    (driver,) = _driver_pods(kube)
    assert driver["status"]["phase"] == "Failed"


def _forbidden_signature(text: str) -> list[str]:
    """The lines that identify the failure, without ports, times and ids."""
    keep = [
        line.strip()
        for line in text.splitlines()
        if re.search(r"Exception|[Ff]orbidden|cannot be instantiated", line)
    ]
    return [
        re.sub(r"127\.0\.0\.1:\d+|spark-[0-9a-f]{16,}|pi-[0-9a-f]+-driver", "X", line)
        for line in keep
    ]


def test_spark_submit_without_role_binding_is_forbidden(
    kube: KubeControlPlane, tmp_path: Path
) -> None:
    _apply_spark_manifests(kube, with_binding=False)
    res = _spark_submit(kube, tmp_path, "pi", account="spark")
    output = res.stdout + res.stderr
    assert res.returncode != 0, output[-4000:]
    causes = "\n".join(line for line in output.splitlines() if "Exception" in line)
    assert "forbidden" in output.lower(), causes[-3000:] or output[-3000:]
    assert 'User "system:serviceaccount:spark:spark" cannot' in output
    assert not _driver_pods(kube)

    if os.environ.get("SPARKUBE_UPDATE_TEST_DATA") == "1":
        FORBIDDEN_FIXTURE.write_text(output)
    # The saved output (used by the diagnosis code's tests) still matches reality.
    saved = FORBIDDEN_FIXTURE.read_text()
    assert _forbidden_signature(output)[:3] == _forbidden_signature(saved)[:3]
