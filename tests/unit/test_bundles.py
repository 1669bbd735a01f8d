"""A job's files, modules and packages (sparkube.spark.bundles, .packages): what travels,
where it lands, and what pip is asked for. pip runs for real against a local folder of
wheels made by the test (no index, no network)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from sparkube.errors import InputError
from sparkube.spark import bundles, packages
from sparkube.spark.config import ClusterConfig, Resources
from sparkube.spark.podspec import Endpoints, JobSpec, job_manifests
from tests.fixtures.wheels import local_index, make_wheel


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def names(data: bytes) -> list[str]:
    return sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())


def test_bundles_group_by_top_level_name(tmp_path: Path) -> None:
    tree(tmp_path, {
        "examples/src/main/resources/people.json": "{}", "examples/other.txt": "not sent",
        "config.ini": "[x]", "data/a.csv": "1", "data/b/c.csv": "2", "lib.zip": "zip",
        "helpers.py": "X = 1",
    })  # fmt: skip
    found = bundles.collect(
        [Path("examples/src/main/resources/people.json"), Path("config.ini"), Path("data")],
        [Path("helpers.py"), Path("lib.zip")],
        tmp_path,
    )
    by_name = {b.name: b for b in found}
    assert sorted(by_name) == ["config.ini", "data", "examples", "helpers.py", "lib.zip"]
    assert not by_name["config.ini"].archive and by_name["config.ini"].data == b"[x]"
    # only what was given under a folder travels, at its path inside the folder
    assert names(by_name["examples"].data) == ["src/main/resources/people.json"]
    assert names(by_name["data"].data) == ["a.csv", "b/c.csv"]
    assert by_name["lib.zip"].on_path and not by_name["helpers.py"].on_path
    assert bundles.python_path(found) == "/opt/spark/work-dir:/opt/spark/work-dir/lib.zip"
    # the same files give the same object, whenever they were written
    os.utime(tmp_path / "data/a.csv", (1, 1))
    again = bundles.collect([Path("data")], [], tmp_path)
    assert again[0].digest == by_name["data"].digest


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("../outside.txt", "is outside the current folder"),
        ("missing.txt", "does not exist"),
        (".", "is the current folder itself"),
        ("pyenv/x.py", "holds the job's Python packages"),
    ],
)
def test_bundles_refuse_paths_the_cluster_cannot_mirror(
    tmp_path: Path, given: str, message: str
) -> None:
    work = tree(tmp_path / "work", {"pyenv/x.py": ""})
    (tmp_path / "outside.txt").write_text("x")
    with pytest.raises(InputError, match=message):
        bundles.collect([Path(given)], [], work)


def test_driver_fetches_bundles_and_serves_them_to_executors(tmp_path: Path) -> None:
    tree(tmp_path, {"data/a.csv": "1", "config.ini": "x"})
    found = [
        b.__class__(b.name, b.archive, b"", b.on_path, key=f"inputs/{b.digest}/{b.object_name}")
        for b in bundles.collect([Path("data"), Path("config.ini")], [], tmp_path)
    ]
    spec = JobSpec(
        job_id="job-1", app_name="a.py", app_file="a.py", app_bytes=b"", args=(),
        resources=Resources(1, 1, "1g"), bundles=tuple(found),
        conf={"spark.files": "s3a://b/extra.txt"},
    )  # fmt: skip
    config = ClusterConfig(cluster="c", bucket="b", region="eu-west-1")
    lines = ["https://s3/x config.ini file", "https://s3/y data.zip zip"]
    job, cm = job_manifests(spec, config, Endpoints(), submitted="t", fetch=lines)
    pod = job["spec"]["template"]["spec"]
    fetch = next(c for c in pod["initContainers"] if c["name"] == "fetch-files")
    assert fetch["env"] == [{"name": "SPARKUBE_BUNDLES", "value": "\n".join(lines)}]
    driver = pod["containers"][0]
    assert driver["workingDir"] == "/opt/spark/work-dir"
    assert {"name": "PYTHONPATH", "value": "/opt/spark/work-dir"} in driver["env"]
    mounts = {m["mountPath"] for m in driver["volumeMounts"]}
    assert {"/opt/spark/work-dir", "/opt/sparkube/files"} <= mounts
    props = dict(line.split("=", 1) for line in cm["data"]["spark.properties"].splitlines() if line)
    # the user's spark.files is kept next to the job's own
    assert props["spark.files"] == "/opt/sparkube/files/config.ini,s3a://b/extra.txt"
    assert props["spark.archives"] == "/opt/sparkube/files/data.zip#data"
    assert props["spark.executorEnv.PYTHONPATH"] == "/opt/spark/work-dir"


def test_fetch_script_puts_files_and_folders_in_the_working_directory(tmp_path: Path) -> None:
    """The init container's script, run as the pod runs it (paths rewritten into a
    temporary folder), against file:// URLs."""
    src = tree(tmp_path / "src", {"config.ini": "[x]", "data/a.csv": "1"})
    found = bundles.collect([Path("config.ini"), Path("data")], [], src)
    served = tmp_path / "served"
    served.mkdir()
    lines = []
    for b in found:
        (served / b.object_name).write_bytes(b.data)
        lines.append(f"{(served / b.object_name).as_uri()} {b.object_name} "
                     f"{'zip' if b.archive else 'file'}")  # fmt: skip
    work, fetched = tmp_path / "work", tmp_path / "fetched"
    work.mkdir()
    fetched.mkdir()
    script = bundles.FETCH_SCRIPT.replace(bundles.FETCHED, str(fetched)).replace(
        bundles.WORK_DIR, str(work)
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script], check=True,
                   env={**os.environ, "SPARKUBE_BUNDLES": "\n".join(lines)})  # fmt: skip
    assert (work / "config.ini").read_text() == "[x]"
    assert (work / "data" / "a.csv").read_text() == "1"
    assert sorted(p.name for p in fetched.iterdir()) == ["config.ini", "data.zip"]


def test_machine_of_instance_types() -> None:
    assert packages.machine_of("t3.medium") == "x86_64"
    assert packages.machine_of("m7g.large") == "aarch64"
    assert packages.machine_of("c7gn.xlarge") == "aarch64"
    assert packages.machine_of("r8gd.2xlarge") == "aarch64"
    assert packages.machine_of("g5.xlarge") == "x86_64"


def test_requirements_and_their_key(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# comment\nnumpy==2.2.6  # pinned\n\npandas\n")
    lines = packages.requirement_lines(req, ["pyarrow"])
    assert lines == ["numpy==2.2.6", "pandas", "pyarrow"]
    target = packages.Target("3.10", "x86_64")
    assert packages.env_key(lines, target) == packages.env_key(list(reversed(lines)), target)
    assert packages.env_key(lines, target) != packages.env_key(
        lines, packages.Target("3.10", "aarch64")
    )
    with pytest.raises(InputError, match="does not exist"):
        packages.requirement_lines(tmp_path / "nope.txt", [])


def test_cluster_packages_are_built_for_the_image_and_refused_when_no_wheel_fits(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "sparkube_tinypkg", "1.0", "ANSWER = 42\n")
    environ = {**os.environ, **local_index(wheels)}
    target = packages.Target("3.10", "x86_64")
    bundle = packages.cluster_bundle(
        ["sparkube-tinypkg==1.0"], target, cache=tmp_path / "cache", environ=environ
    )
    assert bundle.name == "pyenv" and bundle.archive and bundle.on_path
    assert "sparkube_tinypkg/__init__.py" in names(bundle.data)
    # built once: the cached zip serves the second call, even with no wheels left
    (wheels / "sparkube_tinypkg-1.0-py3-none-any.whl").unlink()
    again = packages.cluster_bundle(
        ["sparkube-tinypkg==1.0"], target, cache=tmp_path / "cache", environ=environ
    )
    assert again.data == bundle.data
    with pytest.raises(InputError) as refused:
        packages.cluster_bundle(["no-such-pkg"], target, cache=tmp_path / "c2", environ=environ)
    assert str(refused.value) == (
        "no-such-pkg has no wheel for Python 3.10 on Linux x86_64 (what the cluster's image "
        "runs); pin a version that publishes one, or leave it out."
    )


def test_local_packages_install_for_this_python_once(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "sparkube_tinypkg", "1.0", "ANSWER = 42\n")
    environ = {**os.environ, **local_index(wheels)}
    folder = packages.local_folder(["sparkube-tinypkg"], cache=tmp_path / "c", environ=environ)
    assert (folder / "sparkube_tinypkg" / "__init__.py").read_text() == "ANSWER = 42\n"
    (wheels / "sparkube_tinypkg-1.0-py3-none-any.whl").unlink()
    assert (
        packages.local_folder(["sparkube-tinypkg"], cache=tmp_path / "c", environ=environ) == folder
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["my data.csv"], "Spark cannot ship a name with spaces"),
        (["a,b.csv"], "Spark cannot ship a name with spaces, commas"),
        (["data.zip", "data/a.csv"], "data.zip would land where a folder's zip travels"),
        (["pyenv.zip"], "pyenv.zip would land where a folder's zip travels"),
    ],
)
def test_names_spark_cannot_ship_or_that_collide_are_refused(
    tmp_path: Path, files: list[str], message: str
) -> None:
    tree(tmp_path, {"my data.csv": "", "a,b.csv": "", "data.zip": "", "data/a.csv": "",
                    "pyenv.zip": ""})  # fmt: skip
    with pytest.raises(InputError, match=message):
        bundles.collect([Path(f) for f in files], [], tmp_path)


def test_requirements_take_names_only_and_leave_out_what_the_image_has(tmp_path: Path) -> None:
    lines = packages.requirement_lines(None, ["pyspark==4.1.2", "py4j", "pandas>=2", "numpy"])
    assert lines == ["pandas>=2", "numpy"]
    for bad in ("-r base.txt", "-e .", "./local.whl", "--index-url=http://x"):
        with pytest.raises(InputError, match="by name and version only"):
            packages.requirement_lines(None, [bad])
