from __future__ import annotations

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
