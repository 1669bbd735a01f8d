"""The controller's code on the cluster, brought there the way a job's code is.

sparkube publishes no image of its own: the controller runs in a pinned official Python
image (:data:`IMAGE`), and its code comes from the cluster's bucket as two zips:

- ``sparkube.zip``: sparkube's own installed package, every file under ``sparkube/``
  but bytecode, zipped deterministically (sorted, fixed times and modes): the same code
  gives the same bytes, hence the same object and the same Deployment;
- ``pyenv.zip``: the controller's third-party requirements (:data:`REQUIREMENTS` and
  everything they need on the image's Python), each pinned to the version installed
  with sparkube here, built by :mod:`sparkube.spark.packages` for the image's Python
  and the control plane's CPU (wheels only), cached locally under the hash of what was
  asked for, as a job's ``--pip`` environment is.

Both go to the bucket content-addressed, ``controller/SHA256/NAME`` (one List call, then
only what is missing is uploaded): the Deployment pins each object's size and SHA-256,
so a key never names other bytes than the spec expects. Its init container fetches them
with the node's instance role (the fetch program of :mod:`sparkube.spark.jarfetch`,
which signs its GETs itself: no keys in the spec, no presigned URL to expire), checks
both digests and unpacks them (:mod:`sparkube.controller.deploy`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sparkube
from sparkube.spark import packages
from sparkube.spark.bundles import zip_bytes

#: The image the controller runs in: Docker's official Python image, pinned to a patch
#: release. Its minor version is the one the pyenv is built for (:data:`PYTHON`).
IMAGE = "python:3.11.14-slim-bookworm"
PYTHON = "3.11"
#: What the controller imports beyond the standard library and sparkube itself; their
#: own requirements come along (:func:`requirement_lines`). Nothing of the CLI (typer,
#: rich, pydantic, asyncssh) belongs here.
REQUIREMENTS = ("lightkube", "lightkube-models", "boto3", "botocore", "pyyaml")
#: The bucket folder of the controller's code: ``controller/SHA256/NAME``.
BUCKET_PREFIX = "controller/"
CODE_NAME = "sparkube.zip"
ENV_NAME = "pyenv.zip"


@dataclass(frozen=True)
class Artifact:
    """One zip of the controller's code, as the bucket keeps it."""

    name: str  # "sparkube.zip" or "pyenv.zip"
    data: bytes
    #: Not built yet (``sparkube manifests`` before any ``up``): the digest is a word.
    unbuilt: bool = False

    @property
    def sha256(self) -> str:
        return "BUILT-BY-UP" if self.unbuilt else hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def key(self) -> str:
        return f"{BUCKET_PREFIX}{self.sha256}/{self.name}"


@dataclass(frozen=True)
class ControllerCode:
    """sparkube's package and the controller's requirements, for one target."""

    code: Artifact
    env: Artifact
    target: packages.Target
    requirements: tuple[str, ...]

    @property
    def artifacts(self) -> tuple[Artifact, Artifact]:
        return (self.code, self.env)


def package_members(root: Path | None = None) -> dict[str, bytes]:
    """Every file of sparkube's installed package (``sparkube/...`` → bytes): the
    modules and the data they read (manifests, scripts, prices), no bytecode."""
    root = root or Path(sparkube.__file__).parent
    return {
        f"sparkube/{p.relative_to(root).as_posix()}": p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in (".pyc", ".pyo")
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def package_zip(root: Path | None = None) -> bytes:
    """The deterministic zip of sparkube's package: same files, same bytes."""
    return zip_bytes(package_members(root))


def _marker_environment(target: packages.Target) -> dict[str, str]:
    """PEP 508 marker values of the image's Python on the control plane."""
    return {
        "python_version": target.python,
        "python_full_version": f"{target.python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": target.machine,
    }


def requirement_lines(target: packages.Target, names: tuple[str, ...] = REQUIREMENTS) -> list[str]:
    """``NAME==VERSION`` for :data:`REQUIREMENTS` and everything they require on the
    target (extras and markers followed), each at the version installed here with
    sparkube: the cluster runs what sparkube was installed and tested with. A
    requirement the target needs but this machine lacks (a marker true only there) is
    left to pip with the range its parent asks."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    env = _marker_environment(target)
    pinned: dict[str, str] = {}
    loose: dict[str, str] = {}  # name -> name and range, for what is not installed
    todo: list[tuple[str, frozenset[str]]] = [(n, frozenset()) for n in names]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = importlib.metadata.distribution(key)
        except importlib.metadata.PackageNotFoundError:
            continue
        pinned[key] = f"{key}=={dist.version}"
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = any(
                req.marker is None or req.marker.evaluate({**env, "extra": extra})
                for extra in (extras or {""})
            )
            if not wanted:
                continue
            dep = canonicalize_name(req.name)
            loose.setdefault(dep, f"{dep}{req.specifier}")
            todo.append((dep, frozenset(req.extras)))
    for name, line in loose.items():
        pinned.setdefault(name, line)
    return sorted(pinned.values())


def target_for(control_plane_type: str) -> packages.Target:
    """The image's Python on the control plane's CPU (x86_64, aarch64 on Graviton)."""
    return packages.Target(PYTHON, packages.machine_of(control_plane_type or "t3.medium"))


def env_cache(environ: Mapping[str, str]) -> Path:
    """Where built environments are kept (the jobs' ``--pip`` environments too)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "sparkube" / "envs"


def build(target: packages.Target, *, environ: Mapping[str, str]) -> ControllerCode:
    """Both zips for ``target``: the package zipped now, the environment built once per
    set of pinned requirements and target (pip, from the index ``environ`` names)."""
    lines = requirement_lines(target)
    env = packages.cluster_bundle(lines, target, cache=env_cache(environ), environ=environ)
    return ControllerCode(
        code=Artifact(CODE_NAME, package_zip()),
        env=Artifact(ENV_NAME, env.data),
        target=target,
        requirements=tuple(lines),
    )


def for_review(target: packages.Target, *, environ: Mapping[str, str]) -> ControllerCode:
    """What ``up`` would deploy, without building or contacting anything: the package
    zipped now, the environment from the local cache if an earlier ``up`` built it."""
    lines = requirement_lines(target)
    cached = env_cache(environ) / f"{packages.env_key(lines, target)}.zip"
    env = (
        Artifact(ENV_NAME, cached.read_bytes())
        if cached.is_file()
        else Artifact(ENV_NAME, b"", unbuilt=True)
    )
    return ControllerCode(Artifact(CODE_NAME, package_zip()), env, target, tuple(lines))


@dataclass(frozen=True)
class Stocked:
    """What :func:`ensure_in_bucket` did."""

    uploaded: int
    bytes_uploaded: int
    seconds: float


def ensure_in_bucket(
    s3: Any,
    bucket: str,
    code: ControllerCode,
    *,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Stocked:
    """The bucket holds both zips under their content keys: one List call, then only
    what is missing (or of another size) is uploaded."""
    started = time.monotonic()
    have: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=BUCKET_PREFIX):
        have.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    missing = [a for a in code.artifacts if have.get(a.key) != a.size]
    for artifact in missing:
        progress(f"uploading {artifact.name} ({artifact.size / 2**20:.1f} MiB)")
        s3.put_object(Bucket=bucket, Key=artifact.key, Body=artifact.data)
    return Stocked(
        uploaded=len(missing),
        bytes_uploaded=sum(a.size for a in missing),
        seconds=time.monotonic() - started,
    )


def pip_download_args(target: packages.Target) -> list[str]:
    """``pip download`` options that fetch the wheels :func:`build` installs for
    ``target`` (scripts/test.sh fills the tests' wheelhouse with them)."""
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python]
    for platform in target.platforms:
        args += ["--platform", platform]
    return args


if __name__ == "__main__":  # scripts/test.sh: the wheels the tests' wheelhouse needs
    import sys

    tgt = packages.Target(PYTHON, sys.argv[1] if len(sys.argv) > 1 else "x86_64")
    print(" ".join([*pip_download_args(tgt), *requirement_lines(tgt)]))
