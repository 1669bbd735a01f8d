"""The cluster's SSH key: an ed25519 pair made locally, the public half imported.

AWS never sees the private key (no ``CreateKeyPair``): it is written 0600 in the
cluster's folder under ``SPARKUBE_HOME`` before the public half is imported, so an
interrupted ``up`` never leaves an imported key whose private half is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sparkube.aws import tags as T
from sparkube.aws.errors import is_code
from sparkube.env import Environment, write_private_file
from sparkube.errors import CloudError

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "id_ed25519"


def key_name(cluster: str) -> str:
    return f"sparkube-{cluster}"


def private_key_path(env: Environment, cluster: str) -> Path:
    return env.cluster_dir(cluster) / PRIVATE_KEY_FILE


@dataclass(frozen=True)
class KeyPairInfo:
    name: str
    key_id: str
    tags: dict[str, str]


def find_key_pair(ec2: Any, cluster: str) -> KeyPairInfo | None:
    response = ec2.describe_key_pairs(Filters=T.cluster_filter(cluster))
    for item in response.get("KeyPairs", []):
        return KeyPairInfo(
            str(item["KeyName"]), str(item.get("KeyPairId", "")), T.from_aws(item.get("Tags"))
        )
    return None


def _public_openssh(private_pem: bytes) -> bytes:
    key = serialization.load_ssh_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )


def ensure_local_key(env: Environment, cluster: str) -> tuple[Path, bytes]:
    """The private key path and the OpenSSH public key, making the pair if needed."""
    path = private_key_path(env, cluster)
    if path.is_file():
        return path, _public_openssh(path.read_bytes())
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    env.cluster_dir(cluster, create=True)
    write_private_file(path, pem)
    public = _public_openssh(pem)
    write_private_file(path.with_name(PRIVATE_KEY_FILE + ".pub"), public + b"\n")
    return path, public


def ensure_key_pair(
    ec2: Any,
    env: Environment,
    cluster: str,
    tags: dict[str, str],
    *,
    have_instances: bool,
) -> str:
    """Import the cluster key unless AWS has it; return the key pair name."""
    existing = find_key_pair(ec2, cluster)
    path = private_key_path(env, cluster)
    if existing is not None:
        if path.is_file():
            return existing.name
        if have_instances:
            raise CloudError(
                f"Cluster {cluster} exists but its private key {path} is missing; copy it "
                "back from where it was made, or run 'sparkube down' then 'sparkube up'."
            )
        # No node uses the orphaned key: replace it with one we hold.
        ec2.delete_key_pair(KeyName=existing.name)
    _, public = ensure_local_key(env, cluster)
    name = key_name(cluster)
    try:
        ec2.import_key_pair(
            KeyName=name,
            PublicKeyMaterial=public,
            TagSpecifications=[T.spec_for("key-pair", {**tags, T.NAME: name})],
        )
    except Exception as exc:
        if not is_code(exc, "InvalidKeyPair.Duplicate"):
            raise
        raise CloudError(
            f"A key pair named {name} exists without sparkube's tags; delete it "
            f"('aws ec2 delete-key-pair --key-name {name}') or use another cluster name."
        ) from exc
    return name
