"""The controller keeps the self-join parameter usable (``sparkube.nodes.selfjoin``).

``up`` writes the parameter with a bootstrap token of two hours; a worker the group
launches later than that would find it expired. So, once a minute, the controller reads
the parameter (the control plane's instance role may read and write it) and, when its
token expires within :data:`selfjoin.RENEW_BEFORE`, makes a new bootstrap token the way
``kubeadm token create`` does (a Secret ``bootstrap-token-ID`` in ``kube-system``, with
the usages and group kubeadm gives it, so kubeadm's RBAC for joining nodes applies) and
writes the parameter again with it: the API server's address and the CA hash are kept
from the old value. Expired token Secrets are removed by the control plane's own token
cleaner. The value holds a secret: nothing here logs it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import string
from dataclasses import dataclass
from typing import Any

from sparkube.aws.errors import is_code
from sparkube.nodes import selfjoin

log = logging.getLogger("sparkube.controller")

#: How often the parameter is looked at (seconds).
CHECK_SECONDS = 60.0
#: kubeadm's group for tokens that join nodes (its RBAC lets them bootstrap a kubelet).
NODE_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
TOKEN_NAMESPACE = "kube-system"
_ALPHABET = string.ascii_lowercase + string.digits


def new_token() -> tuple[str, str]:
    """(id, secret) of a bootstrap token: ``[a-z0-9]{6}.[a-z0-9]{16}``."""
    pick = secrets.choice
    return "".join(pick(_ALPHABET) for _ in range(6)), "".join(pick(_ALPHABET) for _ in range(16))


def token_secret(token_id: str, token_secret_: str, expires: dt.datetime) -> dict[str, Any]:
    """The Secret that makes a bootstrap token, as ``kubeadm token create`` writes it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": TOKEN_NAMESPACE},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "description": "sparkube-self-join (renewed by the sparkube controller)",
            "token-id": token_id,
            "token-secret": token_secret_,
            "expiration": expires.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": NODE_TOKEN_GROUP,
        },
    }


@dataclass
class Renewer:
    """Keeps ``/sparkube/CLUSTER/join`` usable (a boto3 SSM client of the control plane's
    instance role)."""

    ssm: Any
    cluster: str
    last_check: float = float("-inf")

    def due(self, now: float) -> bool:
        return now - self.last_check >= CHECK_SECONDS

    def renew(self, client: Any, now: float) -> str | None:
        """Renew the token when it is near expiry; one line saying what was done or why
        nothing could be (None when nothing was due)."""
        self.last_check = now
        name = selfjoin.parameter_name(self.cluster)
        try:
            value = self.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        except Exception as exc:
            if is_code(exc, "ParameterNotFound"):
                return f"no join parameter {name}: workers cannot join until 'sparkube up' runs"
            raise
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        if not selfjoin.needs_renewal(value, when):
            return None
        try:
            old = json.loads(value)
            endpoint, ca_hash = str(old["endpoint"]), str(old["ca_cert_hash"])
        except (ValueError, KeyError, TypeError):
            return f"join parameter {name} is unreadable: run 'sparkube up' to write it again"
        token_id, token_secret_ = new_token()
        expires = when + selfjoin.TOKEN_TTL
        client.create(_codec(token_secret(token_id, token_secret_, expires)))
        self.ssm.put_parameter(
            Name=name,
            Value=selfjoin.value_of(endpoint, f"{token_id}.{token_secret_}", ca_hash, expires),
            Type="SecureString",
            Overwrite=True,
        )
        return f"join parameter {name}: new bootstrap token {token_id}, expires {expires:%H:%M}Z"


def _codec(obj: dict[str, Any]) -> Any:
    from lightkube import codecs

    return codecs.from_dict(obj)
