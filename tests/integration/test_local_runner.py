"""The embedded-Spark runner's failure paths, with stand-in applications.

These run real child processes through ``sparkube.spark.local`` but replace the Spark
application with a small Python script (our own boundary: the app path), because making
real Spark run out of memory or die mid-write takes minutes and gigabytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkube.env import Environment
from sparkube.errors import JobError
from sparkube.spark import jobs, local


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "app.py"
    path.write_text(body)
    return path


def test_out_of_memory_is_detected_from_the_jvm_message(tmp_path: Path) -> None:
    app = script(
        tmp_path,
        "import sys\n"
        "print('Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space',"
        " file=sys.stderr)\n"
        "sys.exit(1)\n",
    )
    result = local.run_local_app(app, [], environ=dict(os.environ), settings=local.LocalSettings())
    assert result.exit_code == 1
    assert result.out_of_memory


def test_failed_wordcount_leaves_no_parts_and_no_folder_it_made(
    tmp_path: Path, sparkube_env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in job that dies after Spark started writing its part files.
    app = script(
        tmp_path,
        "import sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "out = pathlib.Path(args[args.index('--output') + 1])\n"
        "parts = out / args[args.index('--parts-name') + 1]\n"
        "parts.mkdir(parents=True)\n"
        "(parts / 'part-00000.txt').write_text('a,1\\n')\n"
        "print('java.lang.OutOfMemoryError: Java heap space', file=sys.stderr)\n"
        "sys.exit(1)\n",
    )
    monkeypatch.setattr(local, "app_path", lambda name: app)
    book = sparkube_env.cwd / "book.txt"
    book.write_text("a b\n")
    files, out, created = jobs.prepare_wordcount(
        [book], top=3, output_dir=None, env=sparkube_env, job_id="wc-test"
    )
    assert out.is_dir() and created == sparkube_env.cwd / "sparkube-runs"
    with pytest.raises(JobError, match="ran out of memory"):
        jobs.run_wordcount_local(
            files, output_dir=out, top=3, job_id="wc-test", environ=dict(os.environ),
            settings=local.LocalSettings(), created=created,
        )  # fmt: skip
    assert not (sparkube_env.cwd / "sparkube-runs").exists()

    # A folder the user made and named with -o is kept (emptied of our parts only).
    mine = sparkube_env.cwd / "mine"
    mine.mkdir()
    files, out, created = jobs.prepare_wordcount(
        [book], top=3, output_dir=mine, env=sparkube_env, job_id="wc-test2"
    )
    assert created is None
    with pytest.raises(JobError):
        jobs.run_wordcount_local(
            files, output_dir=out, top=3, job_id="wc-test2", environ=dict(os.environ),
            settings=local.LocalSettings(), created=created,
        )  # fmt: skip
    assert mine.is_dir() and not any(mine.iterdir())
