"""The controller's code from this machine into the cluster's bucket and out again, as the
init container does it: the pyenv built by pip from scripts/test.sh's wheelhouse (no
index), both zips uploaded once to the session's moto S3, fetched by the init program
with instance-metadata credentials (moto serves IMDSv2 too) and checked, then imported
by a Python that sees only those two folders and the standard library. The manifest is
applied to the test control plane, where PodSecurity admission takes its pod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sparkube.controller import bundle, deploy
from sparkube.spark.podspec import Endpoints
from tests.fixtures.controlplane import KubeControlPlane
from tests.fixtures.moto_server import REGION, MotoAws
from tests.fixtures.wheels import controller_wheels_missing

pytestmark = pytest.mark.integration

BUCKET = "sparkube-controller-code"
#: What ``python -m sparkube.controller`` imports, with nothing but the two folders and
#: the standard library on the path (-I -S: no site-packages, no PYTHON* variables).
IMPORT_CHECK = """
import importlib, pkgutil, sys
sys.path[:0] = [sys.argv[1] + "/sparkube", sys.argv[1] + "/pyenv"]
import sparkube.controller
laptop = {"sparkube.controller.bundle", "sparkube.controller.deploy"}
for m in pkgutil.walk_packages(sparkube.controller.__path__, "sparkube.controller."):
    if m.name not in laptop and not m.name.endswith(".__main__"):
        importlib.import_module(m.name)
import lightkube, boto3, botocore.session
botocore.session.get_session().create_client(
    "autoscaling", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
)
assert sparkube.__file__.startswith(sys.argv[1]), sparkube.__file__
heavy = sorted({"typer", "rich", "pydantic", "asyncssh", "pyspark"} & set(sys.modules))
assert not heavy, heavy
print("imported", len(sys.modules))
"""

RUN_MAIN = """
import runpy, sys
sys.path[:0] = [sys.argv[1] + "/sparkube", sys.argv[1] + "/pyenv"]
runpy.run_module("sparkube.controller", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> bundle.ControllerCode:
    import os

    from tests.fixtures.wheels import local_index, wheelhouse

    reason = controller_wheels_missing()
    if reason:
        if os.environ.get("SPARKUBE_REQUIRE_STANDINS"):
            pytest.fail(reason)
        pytest.skip(reason)
    cache = tmp_path_factory.mktemp("xdg-cache")
    environ = {**os.environ, **local_index(wheelhouse()), "XDG_CACHE_HOME": str(cache)}
    return bundle.build(bundle.target_for("t3.medium"), environ=environ)


def _init(code: bundle.ControllerCode, moto: MotoAws, folder: Path) -> Any:
    environ = {
        "PATH": "/usr/bin:/bin",
        "SPARKUBE_JARS": deploy.fetch_lines(code, BUCKET),
        "SPARKUBE_S3_REGION": REGION,
        "SPARKUBE_S3_ENDPOINT": moto.url,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": moto.url,
    }
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", deploy.init_source(), str(folder)],
        env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_code_travels_through_the_bucket_and_imports_alone(
    code: bundle.ControllerCode, moto_aws: MotoAws, tmp_path: Path
) -> None:
    s3: Any = moto_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    first = bundle.ensure_in_bucket(s3, BUCKET, code)
    assert first.uploaded == 2
    assert bundle.ensure_in_bucket(s3, BUCKET, code).uploaded == 0  # up again: nothing sent
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="controller/")["Contents"]
    assert {o["Key"] for o in listed} == {a.key for a in code.artifacts}

    folder = tmp_path / "code"
    done = _init(code, moto_aws, folder)
    assert done.returncode == 0, done.stderr
    assert "controller code ready" in done.stdout
    assert (folder / "sparkube" / "sparkube" / "controller" / "__init__.py").is_file()
    assert (folder / "pyenv" / "lightkube").is_dir()

    imported = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_CHECK, str(folder)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported")
    # ``python -m sparkube.controller`` itself, outside a cluster: it gets past its
    # imports (it stops at the missing in-cluster configuration, or runs on)
    run = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", RUN_MAIN, str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, err = run.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        run.kill()
        _, err = run.communicate()
    else:  # no service account here: lightkube's configuration, after every import
        assert "lightkube.core.exceptions.ConfigError" in err, err
    assert "ModuleNotFoundError" not in err and "ImportError" not in err, err

    # A second run (the pod restarted, its emptyDir kept) fetches nothing again.
    again = _init(code, moto_aws, folder)
    assert again.returncode == 0, again.stderr

    # Other bytes under the key: refused with one line naming the zip and the digests.
    s3.put_object(Bucket=BUCKET, Key=code.env.key, Body=b"not the environment")
    torn = _init(code, moto_aws, tmp_path / "torn")
    assert torn.returncode == 1
    line = torn.stderr.strip()
    assert "\n" not in line and "pyenv.zip" in line and code.env.sha256 in line, line


def test_the_manifest_is_admitted_by_the_api_server(
    kube: KubeControlPlane, code: bundle.ControllerCode
) -> None:
    """Applied server-side to the test control plane (twice: nothing changes), and the
    Deployment's pod passes PodSecurity ``restricted`` in its namespace (a dry-run
    create of the pod its template makes)."""
    from sparkube.kube.apply import apply_manifest
    from sparkube.kube.client import client_from_kubeconfig
    from sparkube.spark.rbac import render_spark_rbac

    client = client_from_kubeconfig(kube.kubeconfig)
    apply_manifest(client, render_spark_rbac())  # the jobs' namespace, as up has it first
    scaling = deploy.Scaling("sparkube-c-workers", 1.9, 3 * 2**30, 10, "http://10.0.0.1:5000")
    text = deploy.render(
        code, cluster="c", bucket=BUCKET, region=REGION, endpoints=Endpoints(), scaling=scaling
    )
    applied = apply_manifest(client, text)
    assert len(applied) == 11, applied  # (a Role and its binding in kube-system among them)
    path = f"/apis/apps/v1/namespaces/{deploy.NAMESPACE}/deployments/{deploy.NAME}"
    assert kube.get(path)["metadata"]["generation"] == 1
    (main,) = kube.get(path)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["SPARKUBE_WORKER_GROUP"] == "sparkube-c-workers"
    assert env["SPARKUBE_WORKER_SHAPE"] == f"1.9,{3 * 2**30}"
    assert env["SPARKUBE_IDLE_SECONDS"] == "600"
    assert env["AWS_ENDPOINT_URL"] == "http://10.0.0.1:5000"
    apply_manifest(client, text)
    assert kube.get(path)["metadata"]["generation"] == 1  # the spec did not change
    template = kube.get(path)["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dry", **template["metadata"]},
           "spec": template["spec"]}  # fmt: skip
    made = kube.api("POST", f"/api/v1/namespaces/{deploy.NAMESPACE}/pods?dryRun=All", pod)
    assert made["metadata"]["name"] == "dry"
    # the same pod as root is refused there: the namespace enforces "restricted"
    pod["spec"]["securityContext"] = {**pod["spec"]["securityContext"], "runAsUser": 0}
    refused = kube.api(
        "POST", f"/api/v1/namespaces/{deploy.NAMESPACE}/pods?dryRun=All", pod,
        ok_statuses=(403,),
    )  # fmt: skip
    assert "restricted" in refused["message"], refused
