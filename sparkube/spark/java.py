"""Find a Java runtime for embedded Spark and check that it is new enough.

Spark 4 needs Java 17 or newer. ``spark-submit`` picks ``$JAVA_HOME/bin/java`` when
``JAVA_HOME`` is set, else ``java`` on ``PATH``; we look in the same order so that the
error we print names the runtime Spark would actually use.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sparkube.errors import EnvironmentProblem

MINIMUM_JAVA = 17
INSTALL_HINT = (
    "install Java 17 or newer (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; "
    "macOS: brew install openjdk@17) and set JAVA_HOME to it"
)
_VERSION_RE = re.compile(r'version "(?P<v>[^"]+)"')


@dataclass(frozen=True)
class JavaRuntime:
    path: Path
    major: int
    version: str


def parse_java_version(output: str) -> tuple[int, str]:
    """Return (major, full version) from ``java -version`` output (it goes to stderr)."""
    match = _VERSION_RE.search(output)
    if match is None:
        raise ValueError("no version in java -version output")
    version = match.group("v")
    parts = version.split(".")
    if parts[0] == "1" and len(parts) > 1:  # 1.8.0_402 style
        return int(parts[1]), version
    major = int(re.sub(r"\D.*", "", parts[0]))
    return major, version


def find_java(environ: Mapping[str, str]) -> JavaRuntime:
    java_home = environ.get("JAVA_HOME")
    if java_home:
        candidate: str | None = str(Path(java_home) / "bin" / "java")
        where = f"JAVA_HOME={java_home}"
        if not Path(candidate or "").is_file():
            raise EnvironmentProblem(
                f"JAVA_HOME points to {java_home}, which has no bin/java; fix JAVA_HOME or "
                f"{INSTALL_HINT}."
            )
    else:
        candidate = shutil.which("java", path=environ.get("PATH"))
        where = "PATH"
        if candidate is None:
            raise EnvironmentProblem(f"Java was not found on PATH; {INSTALL_HINT}.")
    assert candidate is not None
    try:
        proc = subprocess.run(
            [candidate, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
        major, version = parse_java_version(proc.stderr + proc.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        raise EnvironmentProblem(
            f"The Java runtime at {candidate} (from {where}) does not run; {INSTALL_HINT}."
        ) from None
    if major < MINIMUM_JAVA:
        raise EnvironmentProblem(
            f"Java {version} at {candidate} is too old for Spark (needs {MINIMUM_JAVA}+); "
            f"{INSTALL_HINT}."
        )
    return JavaRuntime(Path(candidate), major, version)
