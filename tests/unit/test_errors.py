from __future__ import annotations

import pytest

from sparkube.env import Environment
from sparkube.errors import (
    CloudError,
    ConfigError,
    InputError,
    Interrupted,
    JobError,
    describe,
)


def test_exit_codes_are_mapped_in_one_place() -> None:
    assert describe(ConfigError("bad")).exit_code == 2
    assert describe(InputError("bad")).exit_code == 2
    assert describe(CloudError("failed")).exit_code == 1
    assert describe(Interrupted("stop")).exit_code == 130
    assert describe(KeyboardInterrupt()).exit_code == 130
    assert describe(JobError("job", exit_code=7)).exit_code == 7


def test_unexpected_errors_point_to_debug() -> None:
    outcome = describe(RuntimeError("weird"))
    assert outcome.exit_code == 1
    assert "SPARKUBE_DEBUG=1" in outcome.message


def test_an_aws_error_no_layer_translated_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, sparkube_env: Environment
) -> None:
    """S3 refusing a job command's read (stubbed at our own boundary, open_jobs):
    the CLI says it in one sentence, exit 1, no 'Unexpected error'."""
    import io

    from botocore.exceptions import ClientError

    from sparkube.cli.app import run
    from sparkube.spark import jobs

    class Refused:
        bucket_only = False

        def records(self) -> list[object]:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListObjectsV2"
            )

    monkeypatch.setattr(jobs, "open_jobs", lambda env, cluster, region: Refused())
    out, err = io.StringIO(), io.StringIO()
    code = run(["jobs"], env=sparkube_env, stdout=out, stderr=err)
    assert code == 1
    assert "Unexpected" not in err.getvalue()
    assert "not allowed to call s3:ListObjectsV2" in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1
