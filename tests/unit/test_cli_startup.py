"""``sparkube --version`` and ``--help`` start fast: they load no cloud SDK or model code.

Each case runs the CLI in a fresh interpreter (this test process has long imported
everything) and reads ``sys.modules`` afterwards. The times themselves are measured by
``bench/startup.py``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.common import subprocess_environ

#: Packages a help or version call must not import (each costs 50-200 ms).
HEAVY = ("boto3", "botocore", "asyncssh", "lightkube", "pyspark", "matplotlib")
#: ...nor, at the top level, pydantic (sparkube's spec model). Typer 0.29 itself loads
#: pydantic to coerce the unused root --help of any subcommand, so ``plan --help`` has it.
TOP_LEVEL_HEAVY = (*HEAVY, "pydantic")

_PROBE = """
import contextlib, io, json, sys
from sparkube.cli.app import run
with contextlib.redirect_stdout(io.StringIO()):
    code = run(sys.argv[1:], stdout=io.StringIO(), stderr=io.StringIO())
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "loaded": loaded}))
"""


def _loaded(argv: list[str], base: Path) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_environ(base),  # not the user's ~/.sparkube nor AWS settings
        cwd=base / "work",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return int(result["code"]), set(result["loaded"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--version", "-v"],  # both Sparks' versions, read without importing pyspark
        ["--help"],
        ["plan", "--help"],
        ["status", "--help"],
        ["wordcount", "--help"],
        ["usage", "--help"],
        ["doctor", "--help"],
    ],
    ids=" ".join,
)
def test_help_and_version_load_no_sdk(argv: list[str], tmp_path: Path) -> None:
    code, loaded = _loaded(argv, tmp_path)
    assert code == 0
    heavy = set(TOP_LEVEL_HEAVY if argv[0].startswith("-") else HEAVY)
    assert not loaded & heavy, f"sparkube {' '.join(argv)} imported {loaded & heavy}"


def test_probe_sees_an_sdk_a_command_loads(tmp_path: Path) -> None:
    # The same probe on a command that does its work must see the SDK, or the check
    # above proves nothing (an unknown region: exit 2 after the AWS layer was imported).
    code, loaded = _loaded(["plan", "--region", "xx-nowhere-9"], tmp_path)
    assert code == 2
    assert "botocore" in loaded
