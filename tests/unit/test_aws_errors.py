"""AWS failures become one sentence and the right exit code."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from sparkube.aws.errors import aws_errors, translate
from sparkube.errors import ExitStatus, describe


def _client_error(code: str, message: str = "", op: str = "RunInstances") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


@pytest.mark.parametrize(
    ("exc", "status", "words"),
    [
        (NoCredentialsError(), ExitStatus.USAGE, ["aws configure", "AWS_PROFILE"]),
        (
            _client_error(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation. Encoded authorization "
                "failure message: abc",
            ),
            ExitStatus.FAILED,
            ["ec2:RunInstances", "not allowed"],
        ),
        (
            _client_error("AccessDenied", "User x is not authorized to perform: iam:CreateRole on"),
            ExitStatus.FAILED,
            ["iam:CreateRole"],
        ),
        (
            _client_error(
                "VcpuLimitExceeded",
                "You have requested more vCPU capacity than your current vCPU limit of 32 "
                "allows for the instance bucket that the specified instance type belongs to.",
            ),
            ExitStatus.FAILED,
            ["allowed 32", "L-1216C47A"],
        ),
        (_client_error("InsufficientInstanceCapacity"), ExitStatus.FAILED, ["--instance-type"]),
        (_client_error("Unsupported", "not supported"), ExitStatus.FAILED, ["Availability Zone"]),
        (_client_error("OptInRequired"), ExitStatus.FAILED, ["not enabled"]),
        (_client_error("InvalidAMIID.NotFound", "nope"), ExitStatus.USAGE, ["--ami"]),
        (_client_error("VPCIdNotSpecified"), ExitStatus.USAGE, ["--vpc-id"]),
        (_client_error("AuthFailure"), ExitStatus.USAGE, ["credentials"]),
        (_client_error("RequestLimitExceeded"), ExitStatus.FAILED, ["throttling"]),
        (
            EndpointConnectionError(endpoint_url="https://ec2.x.amazonaws.com"),
            ExitStatus.FAILED,
            ["Cannot reach AWS"],
        ),
        (_client_error("SomethingNew", "odd"), ExitStatus.FAILED, ["SomethingNew", "odd"]),
    ],
)
def test_translation(exc: Exception, status: ExitStatus, words: list[str]) -> None:
    error = translate(exc, region="us-east-1")
    outcome = describe(error)
    assert outcome.exit_code == int(status)
    for word in words:
        assert word in outcome.message
    assert "\n" not in outcome.message
    assert outcome.message.endswith(".")


def test_aws_errors_context_translates_and_chains() -> None:
    with pytest.raises(Exception) as info, aws_errors("eu-west-1"):
        raise _client_error("InsufficientInstanceCapacity")
    assert "eu-west-1" in str(info.value)
    assert isinstance(info.value.__cause__, ClientError)


def test_clients_retry_throttling_in_standard_mode() -> None:
    from sparkube.aws.session import AwsClients

    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "HOME": "/nonexistent"}
    ec2 = AwsClients(env, "us-east-1").ec2
    assert ec2.meta.config.retries == {"mode": "standard", "total_max_attempts": 8}
    adaptive = AwsClients(
        {**env, "AWS_RETRY_MODE": "adaptive", "AWS_MAX_ATTEMPTS": "4"}, "us-east-1"
    )
    assert adaptive.ec2.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}
