"""The cluster's join parameter in SSM Parameter Store (``sparkube.nodes.selfjoin``).

A SecureString under ``/sparkube/CLUSTER/join``, encrypted with the account's default
key for SSM (``alias/aws/ssm``), readable by the cluster's node role only
(``sparkube.aws.iam``). ``up`` writes it when it is missing or its token is near expiry;
``down`` deletes it. Its value holds a bootstrap token: never log it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparkube.aws import tags as T
from sparkube.aws.errors import is_code
from sparkube.nodes.selfjoin import parameter_name


def read(ssm: Any, cluster: str) -> str | None:
    """The parameter's decrypted value; None when there is none."""
    try:
        got = ssm.get_parameter(Name=parameter_name(cluster), WithDecryption=True)
    except Exception as exc:
        if is_code(exc, "ParameterNotFound"):
            return None
        raise
    return str(got["Parameter"]["Value"])


def publish(ssm: Any, cluster: str, value: str, tags: Mapping[str, str]) -> None:
    """Write the value (tagged when new: AWS takes no tags with ``Overwrite``)."""
    name = parameter_name(cluster)
    description = f"sparkube cluster {cluster}: how its workers join (bootstrap token)"
    try:
        ssm.put_parameter(Name=name, Description=description, Value=value,
                          Type="SecureString", Tags=T.to_aws(dict(tags)))  # fmt: skip
    except Exception as exc:
        if not is_code(exc, "ParameterAlreadyExists"):
            raise
        ssm.put_parameter(Name=name, Description=description, Value=value,
                          Type="SecureString", Overwrite=True)  # fmt: skip


def delete(ssm: Any, cluster: str) -> bool:
    """Remove the parameter; False when there was none."""
    try:
        ssm.delete_parameter(Name=parameter_name(cluster))
    except Exception as exc:
        if is_code(exc, "ParameterNotFound"):
            return False
        raise
    return True
