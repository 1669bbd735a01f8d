"""The two Sparks a user has: the embedded one (pip pyspark on this Python) and the one
in the cluster's image (:data:`~sparkube.spark.image.SPARK_IMAGE`).

sparkube pins ``pyspark`` in ``pyproject.toml`` to the image's Spark version (a unit test
keeps the two equal), so a job tried locally runs on the same Spark as on the cluster.
What remains different is Python: local jobs run on the Python sparkube runs on (3.11 or
newer), cluster jobs on the image's (3.10, Ubuntu 22.04's). ``sparkube --version -v`` and
``sparkube doctor`` show both sides with :func:`spark_versions`.

Nothing here imports pyspark (it costs about a second and starts nothing we need): the
installed version is read from the package's ``version.py``, found as ``import pyspark``
would find it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from sparkube.spark.image import SPARK_IMAGE, SparkImage

_VERSION_LINE = re.compile(r"""^__version__(?:\s*:\s*str)?\s*=\s*['"]([^'"]+)['"]""", re.M)


@dataclass(frozen=True)
class LocalPyspark:
    """The pyspark that embedded runs import, or why there is none."""

    version: str | None
    path: Path | None
    problem: str = ""


def installed_pyspark() -> LocalPyspark:
    """The pyspark ``import pyspark`` would load in this interpreter, without loading it."""
    try:
        spec = importlib.util.find_spec("pyspark")
    except (ImportError, ValueError) as exc:
        return LocalPyspark(None, None, f"pyspark cannot be found ({exc})")
    if spec is None or not spec.submodule_search_locations:
        return LocalPyspark(None, None, "pyspark is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    try:
        text = (package / "version.py").read_text(encoding="utf-8")
    except OSError as exc:
        return LocalPyspark(None, package, f"pyspark at {package} has no readable version ({exc})")
    match = _VERSION_LINE.search(text)
    if match is None:
        return LocalPyspark(None, package, f"pyspark at {package} states no version")
    return LocalPyspark(match.group(1), package)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True)
class SparkVersions:
    """Spark and Python of local (embedded) runs and of cluster runs."""

    local: LocalPyspark
    local_python: str
    image: SparkImage
    #: The image jobs run on: ``image.ref``, or another one the user chose
    #: (``spark_image`` or ``spark_version``; then sparkube does not know its versions).
    image_ref: str

    @property
    def pinned(self) -> str:
        """The pyspark version sparkube pins: the image's Spark version."""
        return self.image.spark_version

    @property
    def known_image(self) -> bool:
        return self.image_ref == self.image.ref

    @property
    def pinned_installed(self) -> bool:
        return self.local.version == self.pinned

    def as_dict(self) -> dict[str, object]:
        """For ``--output json``: both sides and the sentence on what differs."""
        known = self.known_image
        return {
            "local": {
                "spark": self.local.version,
                "python": self.local_python,
                "pyspark_path": str(self.local.path) if self.local.path else None,
            },
            "cluster": {
                "image": self.image_ref,
                "spark": self.image.spark_version if known else None,
                "python": self.image.python_version if known else None,
                "java": self.image.java_version if known else None,
            },
            "pinned_pyspark": self.pinned,
            "difference": self.difference(),
        }

    def local_line(self) -> str:
        if self.local.version is None:
            return f"local:   no Spark ({self.local.problem}), Python {self.local_python}"
        return f"local:   Spark {self.local.version} (pyspark), Python {self.local_python}"

    def cluster_line(self) -> str:
        if not self.known_image:
            return f"cluster: {self.image_ref} (chosen instead of {self.image.ref})"
        img = self.image
        return (
            f"cluster: Spark {img.spark_version}, Python {img.python_version}, "
            f"Java {img.java_version} ({img.ref})"
        )

    def mismatch(self) -> str:
        """Why local runs do not use the pinned Spark; empty when they do."""
        if self.pinned_installed:
            return ""
        have = (
            f"pyspark {self.local.version} is installed"
            if self.local.version
            else f"No usable pyspark ({self.local.problem})"
        )
        return (
            f"{have}, but sparkube pins pyspark {self.pinned}, the Spark of the cluster "
            "image: local runs are not the Spark the cluster runs"
        )

    def difference(self) -> str:
        """One sentence: what differs between a local run and a cluster run."""
        if not self.known_image:
            return (
                f"Cluster jobs run {self.image_ref}, not sparkube's {self.image.ref}: "
                f"whether its Spark and Python match local runs (Spark "
                f"{self.local.version or 'missing'}) is not known."
            )
        if self.mismatch():
            return self.mismatch() + "."
        here, there = _minor(self.local_python), _minor(self.image.python_version)
        if here == there:
            return f"Local and cluster runs use the same Spark {self.pinned} and Python {here}."
        return (
            f"Same Spark {self.pinned} locally and on the cluster; only Python differs: "
            f"{here} here, {there} in the image (code that needs Python {here} runs "
            "locally but fails on the cluster)."
        )


def spark_versions(image_ref: str | None = None) -> SparkVersions:
    """Both sides as installed now; ``image_ref`` is the image a cluster spec chose
    (:attr:`sparkube.spec.ClusterSpec.image`), if not the default."""
    python = ".".join(str(part) for part in sys.version_info[:3])
    return SparkVersions(installed_pyspark(), python, SPARK_IMAGE, image_ref or SPARK_IMAGE.ref)
