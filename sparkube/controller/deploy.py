"""The controller's Deployment and rights (``manifests/sparkube-controller.yaml``).

The init container runs :mod:`sparkube.spark.jarfetch`'s fetch program (standard
library only) in the controller's Python image: it reads both zips of
:mod:`sparkube.controller.bundle` from ``s3://BUCKET/controller/SHA256/NAME`` with the
node's instance role (IMDSv2 credentials, its own Signature Version 4), checks each
against the size and SHA-256 pinned in the spec, and unpacks them into the emptyDir the
controller imports from. The spec names the code only by those digests, so it changes
exactly when the code or its requirements do: ``up`` run again applies the same object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sparkube.controller import bundle
from sparkube.controller.bundle import IMAGE, ControllerCode
from sparkube.errors import ClusterError, SparkubeError
from sparkube.manifests import render_manifest
from sparkube.spark import jarfetch
from sparkube.spark.podspec import Endpoints
from sparkube.spark.rbac import SPARK_NAMESPACE

NAMESPACE = "sparkube-system"
NAME = "sparkube-controller"
#: The emptyDir the code is unpacked into: ``sparkube/`` and ``pyenv/`` (and the zips).
CODE_MOUNT = "/opt/sparkube"

_MAIN_GUARD = '\nif __name__ == "__main__":\n'


def _fetch_functions() -> str:
    source = Path(jarfetch.__file__).read_text(encoding="utf-8")
    head, sep, _ = source.rpartition(_MAIN_GUARD)
    if not sep:
        raise RuntimeError("sparkube.spark.jarfetch has no main guard to cut")
    return head


#: The init container's program: jarfetch's functions, then fetch, check and unpack.
UNPACK = """
import shutil
import zipfile


def unpack(folder):
    started = time.monotonic()
    items = parse(os.environ.get("SPARKUBE_JARS", ""))
    try:
        fetch_all(items, os.path.join(folder, "zips"))
    except JarError as exc:
        print(f"sparkube: controller code: {exc}", file=sys.stderr, flush=True)
        return 1
    for name, _size, sha256, _urls in items:
        into = os.path.join(folder, name[: -len(".zip")])
        shutil.rmtree(into, ignore_errors=True)
        with zipfile.ZipFile(os.path.join(folder, "zips", name)) as zf:
            zf.extractall(into)
        print(f"sparkube: {name} {sha256[:12]} unpacked into {into}", flush=True)
    print(f"sparkube: controller code ready in {time.monotonic() - started:.1f} s", flush=True)
    return 0


sys.exit(unpack(sys.argv[1]))
"""


def init_source() -> str:
    return _fetch_functions() + UNPACK


def fetch_lines(code: ControllerCode, bucket: str) -> str:
    """``NAME SIZE SHA256 s3://BUCKET/KEY`` per zip (jarfetch's input)."""
    return "\n".join(f"{a.name} {a.size} {a.sha256} s3://{bucket}/{a.key}" for a in code.artifacts)


@dataclass(frozen=True)
class Scaling:
    """What the controller needs to grow and shrink the workers' group
    (``sparkube.controller.scaling``): the group, what one new worker offers (a worker's
    allocatable CPU and memory), the idle time, and where it reaches Auto Scaling
    (None: AWS's own endpoint; tests give the bed's moto)."""

    group: str
    cpu: float
    memory: int
    idle_minutes: int
    aws_endpoint: str | None = None

    def environ(self) -> list[dict[str, str]]:
        out = [
            {"name": "SPARKUBE_WORKER_GROUP", "value": self.group},
            {"name": "SPARKUBE_WORKER_SHAPE", "value": f"{self.cpu:g},{self.memory}"},
            {"name": "SPARKUBE_IDLE_SECONDS", "value": str(self.idle_minutes * 60)},
        ]
        if self.aws_endpoint:
            out.append({"name": "AWS_ENDPOINT_URL", "value": self.aws_endpoint})
        return out


def documents(
    code: ControllerCode,
    *,
    cluster: str,
    bucket: str,
    region: str,
    endpoints: Endpoints,
    scaling: Scaling | None = None,
) -> list[dict[str, Any]]:
    text = render_manifest(
        NAME,
        {
            "NAMESPACE": NAMESPACE,
            "JOBS_NAMESPACE": SPARK_NAMESPACE,
            "IMAGE": IMAGE,
            "CLUSTER": cluster,
            "REGION": region,
        },
    )
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        init = doc["spec"]["template"]["spec"]["initContainers"][0]
        init["command"] = ["python3", "-c", init_source(), CODE_MOUNT]
        init["env"] = [
            {"name": "SPARKUBE_JARS", "value": fetch_lines(code, bucket)},
            {"name": "SPARKUBE_S3_REGION", "value": region},
            *([{"name": "SPARKUBE_S3_ENDPOINT", "value": endpoints.s3}] if endpoints.s3 else []),
        ]
        if scaling is not None:
            main = doc["spec"]["template"]["spec"]["containers"][0]
            main["env"] = [
                *main["env"],
                *scaling.environ(),
                {"name": "SPARKUBE_BUCKET", "value": bucket},  # (its scale events)
            ]
    return docs


def render(code: ControllerCode, **settings: Any) -> str:
    """:func:`documents` (the same keyword settings) as one YAML stream."""
    return yaml.safe_dump_all(documents(code, **settings), sort_keys=False)


def deploy(
    client: Any,
    s3: Any,
    *,
    cluster: str,
    bucket: str,
    region: str,
    control_plane_type: str,
    endpoints: Endpoints,
    environ: Mapping[str, str],
    scaling: Scaling | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[list[str], str]:
    """Build (or take from the cache) the controller's code for the control plane, put
    what the bucket lacks there, and apply the manifest (server-side, idempotent).
    Returns the objects applied and one line saying what was done."""
    from sparkube.kube.apply import apply_manifest

    started = time.monotonic()
    target = bundle.target_for(control_plane_type)
    try:
        code = bundle.build(target, environ=environ)
    except SparkubeError as exc:  # pip: no wheel, no index
        raise ClusterError(
            f"The controller's Python packages could not be built for {target.describe()} "
            f"({exc.message}); check pip's index settings (PIP_INDEX_URL, PIP_FIND_LINKS) "
            "and run 'sparkube up' again."
        ) from None
    stocked = bundle.ensure_in_bucket(s3, bucket, code, progress=progress)
    manifest = render(
        code, cluster=cluster, bucket=bucket, region=region, endpoints=endpoints, scaling=scaling
    )
    applied = apply_manifest(client, manifest)
    said = (
        f"code {code.code.sha256[:12]} + {len(code.requirements)} packages for "
        f"{target.describe()} in s3://{bucket}/{bundle.BUCKET_PREFIX} "
        f"({stocked.uploaded} uploaded, {time.monotonic() - started:.1f} s)"
    )
    return applied, said
