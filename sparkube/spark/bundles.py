"""A job's own files, modules and Python packages, at the paths its program uses.

A program that reads ``data/people.json`` or imports ``helpers`` finds them relative to
its working directory. Locally that is the folder sparkube runs in; on the cluster the
driver and every executor run in the image's work dir (``/opt/spark/work-dir``). So
``submit --files``/``--py-files`` (paths inside the current folder) and the packages of
``--requirements``/``--pip`` become **bundles**, one per top-level name in the working
directory:

- a plain file at the top (``config.ini``) travels as itself;
- everything given under one top-level folder (``data/``, ``examples/src/.../x.json``)
  travels as one zip of exactly those files, unpacked into that folder;
- Python packages travel as a zip of the packages, unpacked into ``pyenv/``.

Bundles go to the cluster's bucket content-addressed (``inputs/SHA256/NAME``: a second
job with the same files uploads nothing). The driver pod's init container fetches them
with presigned GET URLs (short-lived, one object each; pods hold no AWS keys and the
image has no S3 client) into its working directory and keeps the objects; Spark then
serves them to the executors from the driver (``spark.files`` / ``spark.archives``
naming those local copies), which put them in their own working directory, the same
relative paths. ``PYTHONPATH`` names the working directory, ``pyenv`` and any module
zip, on the driver and the executors.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sparkube.errors import InputError
from sparkube.spark.image import SPARK_IMAGE

WORK_DIR = SPARK_IMAGE.work_dir
#: Where the driver keeps the fetched objects, which it serves to the executors.
FETCHED = "/opt/sparkube/files"
#: The folder a job's Python packages are unpacked into, in the working directory.
PACKAGES = "pyenv"
#: How long the driver may take to start and fetch its bundles (presigned URLs).
URL_SECONDS = 12 * 3600
MODULE_ARCHIVES = (".zip", ".egg", ".whl")


@dataclass(frozen=True)
class Bundle:
    """One top-level entry of the job's working directory."""

    name: str  # "config.ini", "data", "pyenv"
    archive: bool  # a zip unpacked into NAME/ (else a plain file saved as NAME)
    data: bytes  # the file, or the zip (empty when ``key`` is already in the bucket)
    on_path: bool = False  # goes on PYTHONPATH (a module archive, the packages)
    key: str = ""  # its object in the cluster's bucket, once known

    @property
    def object_name(self) -> str:
        """Its name in the bucket and in the driver's fetched folder."""
        return f"{self.name}.zip" if self.archive else self.name

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _inside(path: Path, cwd: Path, flag: str) -> PurePosixPath:
    full = (path if path.is_absolute() else cwd / path).resolve()
    try:
        rel = full.relative_to(cwd.resolve())
    except ValueError:
        raise InputError(
            f"{flag} {path} is outside the current folder; run sparkube from a folder that "
            "holds it, so it has the same relative path on the cluster."
        ) from None
    if not full.exists():
        raise InputError(f"{flag} {path} does not exist; check the path.")
    if not rel.parts:
        raise InputError(
            f"{flag} {path} is the current folder itself; name the files or folders in it."
        )
    return PurePosixPath(rel.as_posix())


def _files_under(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.parts[-1:]):
            yield path


def zip_bytes(members: Mapping[str, bytes]) -> bytes:
    """A zip of ``members`` (name → content) that depends only on them: sorted, fixed
    times and modes, so the same files give the same object in the bucket."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, members[name])
    return out.getvalue()


def collect(files: Sequence[Path], py_files: Sequence[Path], cwd: Path) -> list[Bundle]:
    """The bundles for ``--files`` and ``--py-files``, grouped by top-level name."""
    groups: dict[str, dict[str, bytes]] = {}
    plain: dict[str, bytes] = {}
    on_path: set[str] = set()
    for flag, paths in (("--files", files), ("--py-files", py_files)):
        for given in paths:
            rel = _inside(given, cwd, flag)
            top = rel.parts[0]
            if top == PACKAGES:
                raise InputError(
                    f"{flag} {given}: the folder {PACKAGES}/ holds the job's Python packages; "
                    "rename yours."
                )
            if re.search(r"[\s,#*?\[\]]", top):
                raise InputError(
                    f"{flag} {given}: Spark cannot ship a name with spaces, commas or any "
                    "of #*?[] to the executors; rename it."
                )
            full = cwd / Path(*rel.parts)
            if len(rel.parts) == 1 and full.is_file():
                plain[top] = full.read_bytes()
                if flag == "--py-files" and top.endswith(MODULE_ARCHIVES):
                    on_path.add(top)
                continue
            members = groups.setdefault(top, {})
            for path in _files_under(full):
                members[path.relative_to(cwd / top).as_posix()] = path.read_bytes()
    clash = sorted(set(plain) & set(groups))
    if clash:
        raise InputError(f"{clash[0]} is given both as a file and as a folder; pass one of them.")
    taken = {f"{name}.zip" for name in groups} | {f"{PACKAGES}.zip"}
    twice = sorted(set(plain) & taken)
    if twice:
        raise InputError(
            f"{twice[0]} would land where a folder's zip travels; rename it or the folder."
        )
    bundles = [Bundle(name, False, data, name in on_path) for name, data in sorted(plain.items())]
    for name, members in sorted(groups.items()):
        if not members:
            raise InputError(f"Folder {name} holds no files to send; check the path.")
        bundles.append(Bundle(name, True, zip_bytes(members)))
    return bundles


def python_path(bundles: Sequence[Bundle], work_dir: str = WORK_DIR) -> str:
    """``PYTHONPATH`` for a job with these bundles: the working directory (modules and
    packages given with --py-files), the packages folder, module archives."""
    entries = [work_dir]
    for bundle in bundles:
        if bundle.on_path:
            entries.append(f"{work_dir}/{bundle.name}")
    return ":".join(entries)


#: Fetches each "URL NAME KIND" line of $SPARKUBE_BUNDLES with the image's own Python
#: (no curl or S3 client there): keeps the object in the fetched folder (Spark serves it
#: to the executors from there) and puts it, or unpacks it, in the working directory.
FETCH_SCRIPT = (
    "import os, shutil, urllib.request as u, zipfile\n"
    "for line in os.environ['SPARKUBE_BUNDLES'].splitlines():\n"
    "    url, name, kind = line.rsplit(' ', 2)\n"
    f"    path = os.path.join('{FETCHED}', name)\n"
    "    with u.urlopen(url, timeout=60) as r, open(path, 'wb') as f:\n"
    "        shutil.copyfileobj(r, f)\n"
    "    if kind == 'zip':\n"
    f"        zipfile.ZipFile(path).extractall(os.path.join('{WORK_DIR}', name[:-4]))\n"
    "    else:\n"
    f"        shutil.copyfile(path, os.path.join('{WORK_DIR}', name))\n"
)


def spark_properties(bundles: Sequence[Bundle]) -> dict[str, str]:
    """What the driver serves its executors (the fetched copies), and their
    ``PYTHONPATH``."""
    if not bundles:
        return {}
    files = [f"{FETCHED}/{b.object_name}" for b in bundles if not b.archive]
    archives = [f"{FETCHED}/{b.object_name}#{b.name}" for b in bundles if b.archive]
    props = {"spark.executorEnv.PYTHONPATH": python_path(bundles)}
    if files:
        props["spark.files"] = ",".join(files)
    if archives:
        props["spark.archives"] = ",".join(archives)
    return props
