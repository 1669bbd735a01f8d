from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkube.errors import EnvironmentProblem
from sparkube.spark.java import find_java, parse_java_version


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_402"', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2-ea" 2019', 11),
    ],
)
def test_parse_versions(output: str, major: int) -> None:
    assert parse_java_version(output)[0] == major


def fake_java_home(tmp_path: Path, version_line: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return home


def test_old_java_is_refused_with_install_hint(tmp_path: Path) -> None:
    home = fake_java_home(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    with pytest.raises(
        EnvironmentProblem, match=r"Java 11.0.22 .* too old .*needs 17\+.*apt-get install"
    ):
        find_java({"JAVA_HOME": str(home), "PATH": os.environ["PATH"]})


def test_java_home_without_java(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="has no bin/java"):
        find_java({"JAVA_HOME": str(tmp_path)})


def test_no_java_on_path(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="Java was not found on PATH"):
        find_java({"PATH": str(tmp_path)})


def test_good_java(tmp_path: Path) -> None:
    home = fake_java_home(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    runtime = find_java({"JAVA_HOME": str(home)})
    assert runtime.major == 17
    assert runtime.path == home / "bin" / "java"
