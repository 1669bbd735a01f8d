"""Versions that must move together."""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sparkube import doctor
from sparkube.cli.app import run
from sparkube.spark.image import SPARK_IMAGE
from sparkube.spark.versions import LocalPyspark, SparkVersions, installed_pyspark, spark_versions
from sparkube.spec import DEFAULT_KUBERNETES, SUPPORTED_KUBERNETES

REPO = Path(__file__).resolve().parents[2]


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip().strip('"') for k, v in pairs}


def test_test_control_plane_runs_the_default_kubernetes_minor() -> None:
    versions = read_env(REPO / "tools" / "kube" / "versions.env")
    minor = ".".join(versions["KUBE_VERSION"].removeprefix("v").split(".")[:2])
    assert minor == DEFAULT_KUBERNETES
    assert DEFAULT_KUBERNETES in SUPPORTED_KUBERNETES


# --- one Spark: the local pin and the cluster image ----------------------------------


def _pyspark_pin() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if re.match(r"pyspark\b", d)]
    assert len(pins) == 1, pins
    match = re.fullmatch(r"pyspark==([0-9][0-9.]*)", pins[0].replace(" ", ""))
    assert match, f"pyspark must be pinned exactly: {pins[0]!r}"
    return match.group(1)


def test_local_pyspark_pin_is_the_cluster_images_spark() -> None:
    # Local (embedded) runs and cluster runs must be the same Spark: the pin in
    # pyproject.toml and the image table move together.
    assert _pyspark_pin() == SPARK_IMAGE.spark_version
    assert f":{SPARK_IMAGE.spark_version}-" in SPARK_IMAGE.ref


def test_this_environment_has_the_pinned_pyspark() -> None:
    import pyspark

    local = installed_pyspark()
    assert local.version == SPARK_IMAGE.spark_version == pyspark.__version__
    assert local.path == Path(pyspark.__file__).parent
    assert spark_versions().mismatch() == ""


@pytest.fixture
def fake_pyspark(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Put a pyspark package of a given version first on sys.path (as another pip
    install would), and the real one back afterwards."""
    saved = {k: m for k, m in sys.modules.items() if k == "pyspark" or k.startswith("pyspark.")}
    sys_path = list(sys.path)

    def make(version: str) -> Path:
        package = tmp_path / "site" / "pyspark"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("from pyspark.version import __version__\n")
        (package / "version.py").write_text(f"__version__: str = {version!r}\n")
        for name in saved:
            del sys.modules[name]
        sys.path.insert(0, str(package.parent))
        return package

    yield make
    sys.path[:] = sys_path
    for name in [k for k in sys.modules if k == "pyspark" or k.startswith("pyspark.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_another_pyspark_is_seen_and_doctor_warns(
    fake_pyspark: Callable[[str], Path],
) -> None:
    package = fake_pyspark("4.3.0")
    versions = spark_versions()
    assert versions.local == LocalPyspark("4.3.0", package)
    assert "pyspark 4.3.0 is installed, but sparkube pins pyspark 4.1.2" in versions.mismatch()
    assert versions.difference().startswith("pyspark 4.3.0 is installed")
    check = doctor.check_pyspark(versions)
    assert check.status == doctor.WARN
    assert "pyspark 4.3.0 on Python" in check.finding
    assert "sparkube pins pyspark 4.1.2, the Spark of the cluster image" in check.finding
    assert check.fix.startswith("pip install pyspark==4.1.2")


def test_no_pyspark_at_all(fake_pyspark: Callable[[str], Path]) -> None:
    package = fake_pyspark("4.1.2")
    (package / "version.py").unlink()
    local = installed_pyspark()
    assert local.version is None and "no readable version" in local.problem
    versions = spark_versions()
    assert versions.local_line().startswith("local:   no Spark (pyspark at ")
    assert versions.mismatch().startswith(f"No usable pyspark (pyspark at {package} has no")
    assert "but sparkube pins pyspark 4.1.2" in versions.mismatch()


def _versions(python: str, image_ref: str = SPARK_IMAGE.ref) -> SparkVersions:
    return SparkVersions(LocalPyspark("4.1.2", Path("/x/pyspark")), python, SPARK_IMAGE, image_ref)


def test_the_remaining_difference_is_said() -> None:
    versions = _versions("3.12.1")
    assert versions.local_line() == "local:   Spark 4.1.2 (pyspark), Python 3.12.1"
    assert versions.cluster_line() == (
        "cluster: Spark 4.1.2, Python 3.10, Java 17 "
        "(apache/spark:4.1.2-scala2.13-java17-python3-ubuntu)"
    )
    assert versions.difference().startswith(
        "Same Spark 4.1.2 locally and on the cluster; only Python differs: 3.12 here, "
        "3.10 in the image"
    )
    assert _versions("3.10.14").difference() == (
        "Local and cluster runs use the same Spark 4.1.2 and Python 3.10."
    )
    check = doctor.check_pyspark(versions)
    assert check.status == doctor.OK and "only Python differs: 3.12 here" in check.finding
    cluster = doctor.check_cluster_spark(versions)
    assert cluster.status == doctor.OK
    assert cluster.finding == (
        "Spark 4.1.2 on Python 3.10 and Java 17 in "
        "apache/spark:4.1.2-scala2.13-java17-python3-ubuntu."
    )


def test_another_image_is_not_claimed_to_match() -> None:
    other = "apache/spark:4.0.1-scala2.13-java17-python3-ubuntu"
    versions = _versions("3.11.7", other)
    assert not versions.known_image
    assert "4.0.1" in versions.cluster_line() and "Java 17" not in versions.cluster_line()
    assert "is not known" in versions.difference()
    assert versions.as_dict()["cluster"] == {
        "image": other,
        "spark": None,
        "python": None,
        "java": None,
    }
    check = doctor.check_cluster_spark(versions)
    assert check.status == doctor.WARN and other in check.finding
    assert "spark_image and spark_version unset" in check.fix


def test_version_verbose_shows_both_sparks(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # plain --version: one line
    for argv in (["--version", "-v"], ["-v", "--version"], ["--version", "--verbose"]):
        assert run(argv) == 0
        lines = capsys.readouterr().out.splitlines()
        python = ".".join(map(str, sys.version_info[:3]))
        assert lines[1] == f"local:   Spark 4.1.2 (pyspark), Python {python}"
        assert lines[2] == (
            "cluster: Spark 4.1.2, Python 3.10, Java 17 "
            "(apache/spark:4.1.2-scala2.13-java17-python3-ubuntu)"
        )
        minor = ".".join(map(str, sys.version_info[:2]))
        assert lines[3].startswith(
            f"Same Spark 4.1.2 locally and on the cluster; only Python differs: {minor} here"
        )


def test_root_verbose_without_version_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["-v", "jobs"]) == 2
    assert "goes only with --version" in capsys.readouterr().err
