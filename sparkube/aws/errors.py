"""AWS failures as one-sentence sparkube errors.

botocore raises ``ClientError`` with a code, or its own exceptions for credentials and
connectivity. :func:`translate` turns each into a :class:`~sparkube.errors.SparkubeError`
whose sentence says what is wrong and what to do; :func:`aws_errors` applies it around
a block. Throttling never reaches here: botocore's retry mode retries it.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator

import botocore.session
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    WaiterError,
)

from sparkube.errors import CloudError, ConfigError, EnvironmentProblem, SparkubeError

NO_CREDENTIALS = (
    "No AWS credentials found; run 'aws configure' (or 'aws sso login'), or set "
    "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then try again."
)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", "")).strip()
    return str(exc)


def is_code(exc: BaseException, *codes: str) -> bool:
    return error_code(exc) in codes


def _operation(exc: ClientError) -> str:
    return str(getattr(exc, "operation_name", "") or "")


_ACTION_RE = re.compile(r"(?:perform|authorized to perform):\s*([a-z0-9-]+:[A-Za-z0-9]+)")


def translate(exc: BaseException, *, region: str | None = None) -> SparkubeError:
    """The sparkube error for a botocore exception (unknown errors keep AWS's words)."""
    if isinstance(exc, SparkubeError):
        return exc
    where = f" in {region}" if region else ""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return EnvironmentProblem(NO_CREDENTIALS)
    if isinstance(exc, ProfileNotFound):
        return EnvironmentProblem(
            f"AWS profile {exc.kwargs.get('profile')!r} does not exist; check AWS_PROFILE "
            "or run 'aws configure --profile NAME'."
        )
    if isinstance(exc, NoRegionError):
        return ConfigError("No AWS region is set; pass --region or set AWS_REGION.")
    if isinstance(exc, EndpointConnectionError):
        return CloudError(
            f"Cannot reach AWS at {exc.kwargs.get('endpoint_url')}; check the network, the "
            "region name and AWS_ENDPOINT_URL."
        )
    if isinstance(exc, WaiterError):
        return CloudError(
            f"Gave up waiting for AWS ({exc.kwargs.get('reason') or exc}); run 'sparkube up' "
            "again to resume, or 'sparkube down' to remove what was made."
        )
    if not isinstance(exc, ClientError):
        return CloudError(f"AWS request failed: {exc}.")
    code = error_code(exc)
    message = error_message(exc)
    op = _operation(exc)
    if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
        match = _ACTION_RE.search(message)
        action = match.group(1) if match else _guess_action(exc)
        return CloudError(
            f"Your AWS identity is not allowed to call {action}{where}; grant that "
            "permission (see 'sparkube doctor') or use another profile."
        )
    if code in (
        "AuthFailure",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "UnrecognizedClientException",
        "ExpiredTokenException",
    ):
        return EnvironmentProblem(
            f"AWS rejected your credentials ({code}); refresh them ('aws sso login' or "
            "'aws configure') and try again."
        )
    if code == "OptInRequired":
        return CloudError(
            f"The region{where or ''} is not enabled for your account; enable it in the AWS "
            "console (Account > AWS Regions) or use another --region."
        )
    if code == "VcpuLimitExceeded":
        return CloudError(_vcpu_sentence(message, where))
    if code in ("InsufficientInstanceCapacity", "InsufficientCapacity"):
        return CloudError(
            f"AWS has no spare capacity for this instance type{where} right now; try "
            "another --instance-type, another subnet/AZ (--subnet-id), fewer workers, or "
            "later."
        )
    if code == "Unsupported" or "not supported in your requested Availability Zone" in message:
        return CloudError(
            f"The instance type is not offered in this Availability Zone{where} ({message}); "
            "choose another --subnet-id in another AZ or another --instance-type."
        )
    if code in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"):
        return ConfigError(
            f"The AMI does not exist{where} ({message}); AMIs are per region, pass an AMI "
            "of this region with --ami or omit --ami."
        )
    if code == "VPCIdNotSpecified":
        return ConfigError(
            f"There is no default VPC{where}; pass --vpc-id and --subnet-id of a VPC with "
            "a public subnet."
        )
    if code in ("InvalidSubnetID.NotFound", "InvalidVpcID.NotFound"):
        return ConfigError(f"{message}; check --subnet-id / --vpc-id for this region.")
    if code == "InvalidInstanceType":
        return ConfigError(f"{message}; pick an instance type offered in the region.")
    if code in ("RequestLimitExceeded", "Throttling", "ThrottlingException", "SlowDown"):
        return CloudError(
            f"AWS kept throttling sparkube ({op}); wait a minute and run the command again."
        )
    if "AWSServiceRoleForAutoScaling" in message or (
        op == "CreateAutoScalingGroup" and "service-linked role" in message.lower()
    ):
        return CloudError(
            f"EC2 Auto Scaling has no service-linked role in this account yet and could not "
            f"make it{where} ({message}); allow iam:CreateServiceLinkedRole for "
            "autoscaling.amazonaws.com (docs/iam-policy.json) and run 'sparkube up' again."
        )
    if code == "LimitExceeded" and op in (
        "CreateAutoScalingGroup",
        "CreateLaunchTemplate",
        "CreateLaunchTemplateVersion",
        "PutScheduledUpdateGroupAction",
    ):
        return CloudError(
            f"Your account reached an Auto Scaling or launch template limit{where} "
            f"({message}); delete unused groups or templates, or ask for more in Service "
            "Quotas, then run 'sparkube up' again."
        )
    if code in ("ScalingActivityInProgress", "ResourceInUse"):
        return CloudError(
            f"The worker group is busy with a scaling activity{where} ({message}); wait a "
            "minute and run the command again."
        )
    if code == "BucketAlreadyExists":
        return CloudError(
            f"The S3 bucket name is taken by another account ({message}); use another cluster name."
        )
    return CloudError(f"AWS {op or 'request'} failed{where}: {code}: {message}".rstrip(": ") + ".")


#: Services whose operations sparkube calls, in lookup order (IAM action prefix = name).
_SERVICES = ("ec2", "iam", "s3", "ssm", "sts", "pricing", "autoscaling")


@functools.cache
def _service_of(operation: str) -> str | None:
    loader = botocore.session.get_session()
    for service in _SERVICES:
        if operation in loader.get_service_model(service).operation_names:
            return service
    return None


def _guess_action(exc: ClientError) -> str:
    op = _operation(exc)
    if not op:
        return "this operation"
    service = _service_of(op)
    return f"{service}:{op}" if service else op


def _vcpu_sentence(message: str, where: str) -> str:
    numbers = re.findall(r"(\d+)\s*vCPU", message)
    limit = re.search(r"limit of (\d+)", message)
    need = re.search(r"(\d+) vCPUs? (?:are )?(?:needed|requested)", message)
    text = f"This launch needs more vCPUs than your EC2 quota allows{where}"
    if need and limit:
        text += f" (needed {need.group(1)}, allowed {limit.group(1)})"
    elif limit:
        text += f" (allowed {limit.group(1)})"
    elif numbers:
        text += f" ({', '.join(numbers)} vCPU in the message)"
    return (
        text + "; request a higher 'Running On-Demand Standard instances' quota (L-1216C47A) "
        "in Service Quotas, or use fewer/smaller instances."
    )


def vcpu_error(*, needed: int, allowed: int | None, region: str, spot: bool) -> CloudError:
    """Over the vCPU quota: say how many this launch needs and how many are allowed."""
    code = "L-34B43A08" if spot else "L-1216C47A"
    kind = "Spot" if spot else "On-Demand Standard"
    quota = f"allows {allowed} in all" if allowed is not None else "does not allow more"
    return CloudError(
        f"This launch needs {needed} more vCPUs but your {kind} vCPU quota in {region} "
        f"{quota} (vCPUs already running count against it); request more in Service Quotas "
        f"({code}), stop other instances, or use fewer/smaller instances."
    )


@contextlib.contextmanager
def aws_errors(region: str | None = None) -> Iterator[None]:
    """Translate botocore exceptions raised inside the block."""
    try:
        yield
    except SparkubeError:
        raise
    except (
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        NoRegionError,
        EndpointConnectionError,
        WaiterError,
    ) as exc:
        raise translate(exc, region=region) from exc
