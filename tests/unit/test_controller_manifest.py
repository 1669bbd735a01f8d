"""The controller's code bundle and manifest (sparkube.controller.bundle, .deploy):
deterministic, pinned, valid, least privilege, restricted."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkube.controller import bundle, deploy
from sparkube.spark import jarfetch, packages
from sparkube.spark.podspec import Endpoints
from sparkube.spec import SUPPORTED_KUBERNETES

BUCKET = "sparkube-c-eu-west-1-abcd1234"
TARGET = packages.Target("3.11", "x86_64")


def code(env: bytes = b"env") -> bundle.ControllerCode:
    return bundle.ControllerCode(
        code=bundle.Artifact(bundle.CODE_NAME, bundle.package_zip()),
        env=bundle.Artifact(bundle.ENV_NAME, env),
        target=TARGET,
        requirements=("lightkube==1.0.1",),
    )


def docs(endpoints: Endpoints = Endpoints(), env: bytes = b"env") -> list[dict[str, Any]]:
    return deploy.documents(
        code(env), cluster="c", bucket=BUCKET, region="eu-west-1", endpoints=endpoints
    )


def one(kind: str, namespace: str | None = None) -> dict[str, Any]:
    found = [
        d
        for d in docs()
        if d["kind"] == kind and (namespace is None or d["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, (kind, namespace, found)
    return found[0]


def test_the_package_zip_is_deterministic_and_holds_the_whole_package() -> None:
    first, again = bundle.package_zip(), bundle.package_zip()
    assert first == again
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    for needed in (
        "sparkube/__init__.py",
        "sparkube/controller/__init__.py",
        "sparkube/controller/__main__.py",
        "sparkube/spark/jarfetch.py",
        "sparkube/manifests/sparkube-controller.yaml",  # package data comes along
    ):
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # every module of the installed package, nothing from outside it
    root = Path(bundle.sparkube.__file__).parent
    modules = {f"sparkube/{p.relative_to(root).as_posix()}" for p in root.rglob("*.py")}
    assert modules <= set(names)
    assert all(n.startswith("sparkube/") for n in names)


def test_the_requirements_are_the_installed_pins_for_the_image_python() -> None:
    lines = bundle.requirement_lines(TARGET)
    assert all("==" in x for x in lines), lines  # each one at the version installed here
    names = {x.split("==")[0] for x in lines}
    assert {"lightkube", "lightkube-models", "boto3", "botocore", "pyyaml"} <= names
    # lightkube's httpx2[http2,ws]: extras followed; markers read for Python 3.11 on Linux
    assert {"httpx2", "h2", "wsproto", "typing-extensions"} <= names
    assert not names & {"exceptiongroup", "httpx2-jsfetch", "awscrt"}
    # nothing of the CLI: the controller runs without them
    assert not names & {"typer", "rich", "pydantic", "pydantic-core", "asyncssh", "pyspark"}
    import importlib.metadata

    assert f"boto3=={importlib.metadata.version('boto3')}" in lines
    # the index is asked for exactly those wheels (scripts/test.sh's download too)
    args = bundle.pip_download_args(TARGET)
    assert args[:5] == ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11"]
    assert "manylinux2014_x86_64" in args
    assert bundle.target_for("m7g.large").machine == "aarch64"


@pytest.mark.parametrize("minor", SUPPORTED_KUBERNETES)
def test_valid_against_the_kubernetes_schema(minor: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in docs():
        kubernetes_validate.validate(doc, f"{minor}.0", strict=True)


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (group, resource, verb, ",".join(rule.get("resourceNames", [])))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rights_are_exactly_what_the_controller_uses() -> None:
    # (each proved needed against the real API server: tests/integration/test_controller.py)
    assert _granted(one("ClusterRole")) == {
        ("", "nodes", "list", ""), ("", "nodes", "watch", ""),
        ("", "nodes", "patch", ""), ("", "nodes", "delete", ""),  # a worker it removes
        ("", "pods", "list", ""), ("", "pods", "watch", ""),
    }  # fmt: skip
    # a bootstrap token for the self-join, no read of any Secret
    assert _granted(one("Role", "kube-system")) == {("", "secrets", "create", "")}
    assert _granted(one("Role", "spark")) == {
        ("batch", "jobs", "list", ""), ("batch", "jobs", "watch", ""),
        ("batch", "jobs", "patch", ""),
    }  # fmt: skip
    assert _granted(one("Role", deploy.NAMESPACE)) == {
        ("coordination.k8s.io", "leases", "create", ""),
        ("coordination.k8s.io", "leases", "get", "sparkube-controller"),
        ("coordination.k8s.io", "leases", "update", "sparkube-controller"),
    }
    subject = [{"kind": "ServiceAccount", "name": deploy.NAME, "namespace": deploy.NAMESPACE}]
    for kind, namespace in (
        ("ClusterRoleBinding", None), ("RoleBinding", "spark"), ("RoleBinding", deploy.NAMESPACE),
        ("RoleBinding", "kube-system"),
    ):  # fmt: skip
        binding = one(kind, namespace)
        assert binding["subjects"] == subject
        assert binding["roleRef"]["name"] == deploy.NAME
    names = {(d["kind"], d["metadata"]["name"]) for d in docs()}
    assert ("ServiceAccount", deploy.NAME) in names
    # the controller's powers live outside the jobs' namespace (drivers create pods
    # there, and a pod may run as any service account of its namespace)
    assert one("ServiceAccount")["metadata"]["namespace"] == deploy.NAMESPACE != "spark"
    labels = one("Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_one_restricted_pod_on_the_control_plane() -> None:
    dep = one("Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == deploy.NAME
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
            "effect": "NoSchedule"} in pod["tolerations"]  # fmt: skip
    assert pod["terminationGracePeriodSeconds"] == 10
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork")
    for c in pod["initContainers"] + pod["containers"]:
        assert c["image"] == bundle.IMAGE
        sc = c["securityContext"]
        assert sc == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}  # fmt: skip
        assert c["resources"]["limits"]["memory"] == "256Mi"
        assert "ports" not in c
    assert pod["volumes"] == [{"name": "code", "emptyDir": {"sizeLimit": "512Mi"}}]
    main = pod["containers"][0]
    assert main["command"] == ["python3", "-m", "sparkube.controller"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in main["env"]}
    assert env["PYTHONPATH"] == "/opt/sparkube/sparkube:/opt/sparkube/pyenv"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["SPARKUBE_JOBS_NAMESPACE"] == "spark" and env["SPARKUBE_CLUSTER"] == "c"
    assert main["volumeMounts"] == [{"name": "code", "mountPath": "/opt/sparkube",
                                     "readOnly": True}]  # fmt: skip


def test_the_image_is_pinned_to_a_patch_release() -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", bundle.IMAGE)
    assert bundle.IMAGE.split(":")[1].startswith(bundle.PYTHON + ".")


def test_the_init_container_reads_the_pinned_objects_with_the_node_role() -> None:
    c = code()
    init = one("Deployment")["spec"]["template"]["spec"]["initContainers"][0]
    assert init["command"][:2] == ["python3", "-c"] and init["command"][3] == "/opt/sparkube"
    program = init["command"][2]
    compile(program, "init", "exec")  # a whole program
    assert "def role_credentials" in program and "def s3_request" in program
    assert program.startswith(Path(jarfetch.__file__).read_text().split("\nif __name__")[0])
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["SPARKUBE_JARS"].splitlines() == [
        f"sparkube.zip {c.code.size} {c.code.sha256} s3://{BUCKET}/controller/{c.code.sha256}/"
        "sparkube.zip",
        f"pyenv.zip 3 {c.env.sha256} s3://{BUCKET}/controller/{c.env.sha256}/pyenv.zip",
    ]
    assert env["SPARKUBE_S3_REGION"] == "eu-west-1"
    assert "SPARKUBE_S3_ENDPOINT" not in env  # AWS's own S3 endpoint
    dump = yaml.safe_dump_all(docs())
    assert "X-Amz-" not in dump and "AWS_ACCESS_KEY" not in dump and "AWS_SECRET" not in dump
    elsewhere = docs(Endpoints(s3="http://10.0.0.1:5000"))
    init = next(d for d in elsewhere if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert {"name": "SPARKUBE_S3_ENDPOINT", "value": "http://10.0.0.1:5000"} in init[
        "initContainers"
    ][0]["env"]


def test_the_spec_changes_only_with_the_code() -> None:
    assert docs() == docs()  # up again: the same objects, nothing rolls
    assert docs(env=b"other") != docs()


def test_manifests_shows_the_controller_without_building_anything(tmp_path: Path) -> None:
    """``sparkube manifests``: the package's real digest; the environment's from the
    local cache once an ``up`` built it, a word before that (nothing is built)."""
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    before = bundle.for_review(TARGET, environ=environ)
    assert before.code.sha256 == bundle.Artifact("x", bundle.package_zip()).sha256
    assert before.env.sha256 == "BUILT-BY-UP" and not list(tmp_path.rglob("*"))
    lines = bundle.requirement_lines(TARGET)
    cached = bundle.env_cache(environ) / f"{packages.env_key(lines, TARGET)}.zip"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"built")
    after = bundle.for_review(TARGET, environ=environ)
    assert after.env.sha256 == bundle.Artifact("x", b"built").sha256
