"""A job's Python packages (``submit --requirements FILE``, ``--pip SPEC``), built for the
Python that runs them.

On the cluster the packages must suit the image's Python (3.10) and the nodes' platform
(Linux x86_64, or aarch64 on Graviton types), not the laptop's: pip installs them into a
folder with ``--python-version``, ``--platform`` and ``--only-binary=:all:`` (only
wheels: nothing is compiled for the wrong machine), and that folder, zipped, is the
job's ``pyenv`` bundle (:mod:`sparkube.spark.bundles`), kept in the cluster's bucket
under the hash of what was asked for, so a second job with the same requirements builds
and uploads nothing. A package without a wheel for that Python and platform is refused
before the job starts. Locally the same requirements are installed for this Python into
a cached folder put on the job's ``PYTHONPATH``: the program sees the same packages both
ways, and sparkube's own environment is never changed.

pip takes its index from the usual places (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``,
``pip.conf``): a private index or a wheelhouse works as it does for pip itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sparkube.errors import EnvironmentProblem, InputError
from sparkube.spark.bundles import PACKAGES, Bundle, zip_bytes

#: manylinux tags a glibc 2.35 image (Ubuntu 22.04, the Spark image's base) can load:
#: pip matches an explicit --platform exactly, so every glibc version is named.
_MANYLINUX = (
    *(f"manylinux_2_{minor}" for minor in range(35, 4, -1)),
    "manylinux2014",
    "manylinux2010",
    "manylinux1",
)


#: Packages the Spark image (and the local pyspark install) already provide.
_PROVIDED = frozenset({"pyspark", "py4j"})


@dataclass(frozen=True)
class Target:
    """Where the packages will run."""

    python: str  # "3.10"
    machine: str  # "x86_64" or "aarch64"

    @property
    def platforms(self) -> list[str]:
        return [f"{tag}_{self.machine}" for tag in _MANYLINUX]

    def describe(self) -> str:
        return f"Python {self.python} on Linux {self.machine}"


def machine_of(instance_type: str) -> str:
    """The CPU of an EC2 type: Graviton families carry a ``g`` after the generation
    (t4g, m7g, c7gn, r8gd); every other family sparkube prices is x86_64."""
    family = instance_type.split(".", 1)[0]
    return "aarch64" if re.fullmatch(r"[a-z]+\d+g[a-z]*", family) else "x86_64"


def requirement_lines(requirements: Path | None, pip: Sequence[str]) -> list[str]:
    """What was asked for, one requirement per line (comments and blanks dropped)."""
    lines: list[str] = []
    if requirements is not None:
        if not requirements.is_file():
            raise InputError(f"Requirements file {requirements} does not exist; check the path.")
        for raw in requirements.read_text(encoding="utf-8").splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    lines += [spec.strip() for spec in pip if spec.strip()]
    for line in lines:
        if line.startswith("-") or "/" in line.split(";", 1)[0].split("@", 1)[0]:
            raise InputError(
                f"{line!r}: sparkube takes requirements by name and version only (no pip "
                "options, nested files or paths); list the packages themselves."
            )
    # The image provides Spark's own Python side (and pip has no wheel of it).
    return [x for x in lines if _name(x) not in _PROVIDED]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;@]", requirement, maxsplit=1)[0].lower()


def env_key(lines: Sequence[str], target: Target | None) -> str:
    """The hash naming a built environment: the requirements and where they run."""
    where = target.describe() if target else f"local {sys.version_info[:2]} {sys.platform}"
    text = "\n".join([where, *sorted(lines)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _pip(
    lines: Sequence[str], folder: Path, target: Target | None, environ: Mapping[str, str]
) -> None:
    with tempfile.TemporaryDirectory(prefix="sparkube-req-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input", "--quiet", "--no-compile", "--target", str(folder),
               "-r", str(reqs)]  # fmt: skip
        if target is not None:
            cmd += ["--only-binary=:all:", "--implementation", "cp",
                    "--python-version", target.python]  # fmt: skip
            for platform in target.platforms:
                cmd += ["--platform", platform]
        env = {**environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode == 0:
        return
    err = done.stderr
    m = re.search(r"No matching distribution found for (\S+)", err)
    if m and target is not None:
        raise InputError(
            f"{m.group(1)} has no wheel for {target.describe()} (what the cluster's image "
            "runs); pin a version that publishes one, or leave it out."
        )
    if m:
        raise InputError(f"pip finds no package {m.group(1)}; check its name and version.")
    last = next((x for x in reversed(err.splitlines()) if x.strip()), "no output")
    raise EnvironmentProblem(f"pip could not install the job's packages ({last.strip()}).")


def _zip_folder(folder: Path) -> bytes:
    members = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    return zip_bytes(members)


def cluster_bundle(
    lines: Sequence[str],
    target: Target,
    *,
    cache: Path,
    environ: Mapping[str, str],
    in_bucket: str | None = None,
) -> Bundle:
    """The ``pyenv`` bundle for the cluster. ``in_bucket``: the key where an earlier job
    left the same environment (then nothing is built: the bundle names that object)."""
    key = env_key(lines, target)
    if in_bucket is not None:
        return Bundle(PACKAGES, True, b"", on_path=True, key=in_bucket)
    cached = cache / f"{key}.zip"
    if not cached.is_file():
        with tempfile.TemporaryDirectory(prefix="sparkube-env-") as tmp:
            _pip(lines, Path(tmp), target, environ)
            data = _zip_folder(Path(tmp))
        cache.mkdir(parents=True, exist_ok=True)
        part = cached.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(data)
        part.replace(cached)
    return Bundle(PACKAGES, True, cached.read_bytes(), on_path=True)


def local_folder(lines: Sequence[str], *, cache: Path, environ: Mapping[str, str]) -> Path:
    """The requirements installed for this Python into a cached folder (built once)."""
    folder = cache / f"local-{env_key(lines, None)}"
    if (folder / ".complete").is_file():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".building-", dir=cache) as tmp:
        _pip(lines, Path(tmp) / "env", None, environ)
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        (Path(tmp) / "env").rename(folder)
    (folder / ".complete").write_text("")
    return folder
