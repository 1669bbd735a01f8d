"""User-data: what every node runs once at first boot.

A small bash wrapper that (1) installs the TTL first (``sparkube.nodes.ttl``: the
absolute expiry time in ``/etc/sparkube/expires-at`` and a systemd timer that powers the
node off once it has passed, at every boot and every minute), so that workers added
later expire with the rest of the cluster, a failing preparation cannot skip it and a
reboot or stop/start cannot lose it, then (2) runs the node preparation script. With
``InstanceInitiatedShutdownBehavior=terminate`` the power-off terminates the instance.
EC2 accepts 16 KB of raw user-data; larger scripts are gzipped (cloud-init reads both).
"""

from __future__ import annotations

import gzip
from datetime import datetime

from sparkube.errors import ConfigError
from sparkube.nodes import ttl

USER_DATA_LIMIT = 16 * 1024
_DELIMITER = "SPARKUBE_PREPARE_SCRIPT_END"

#: Used until the node preparation script exists (sparkube.nodes.prepare).
MINIMAL_PREPARE = """#!/bin/bash
set -eu
mkdir -p /var/lib/sparkube
swapoff -a || true
echo 0 > /var/lib/sparkube/prepare.done
"""


def ttl_block(expires_at: datetime | None) -> str:
    if expires_at is None:
        return "# no TTL\n"
    return ttl.install_block(expires_at)


def render(
    prepare_script: str,
    *,
    expires_at: datetime | None,
    role: str | None = None,
    before_prepare: str = "",
) -> str:
    """The user-data text (a bash script). ``role`` (``control-plane`` or ``worker``) is
    given to the preparation as ``SPARKUBE_NODE_ROLE`` (workers pre-pull the Spark
    image). ``before_prepare``: bash run after the TTL and before the preparation (the
    workers' self-join unit, ``sparkube.nodes.selfjoin.user_data_block``)."""
    if _DELIMITER in prepare_script:
        raise ValueError("the preparation script contains the here-document delimiter")
    if role is not None and role not in ("control-plane", "worker"):
        raise ValueError(f"unknown node role {role!r}")
    return (
        "#!/bin/bash\n"
        "# sparkube node user-data (runs once, as root, at first boot)\n"
        + ttl_block(expires_at)
        + (f"export SPARKUBE_NODE_ROLE={role}\n" if role else "")
        + before_prepare
        + "mkdir -p /var/lib/sparkube\n"
        + f"cat > /var/lib/sparkube/prepare.sh <<'{_DELIMITER}'\n"
        + prepare_script.rstrip("\n")
        + f"\n{_DELIMITER}\n"
        + "chmod 0700 /var/lib/sparkube/prepare.sh\n"
        + "exec /var/lib/sparkube/prepare.sh\n"
    )


def decode(data: bytes) -> str:
    """The text of user data as :func:`encode` made it (gzip or plain)."""
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def encode(text: str) -> bytes:
    """The bytes to send as UserData: plain when small enough, else gzip."""
    raw = text.encode()
    if len(raw) <= USER_DATA_LIMIT:
        return raw
    packed = gzip.compress(raw, mtime=0)
    if len(packed) > USER_DATA_LIMIT:
        raise ConfigError(
            f"The node user-data is {len(raw)} bytes ({len(packed)} gzipped), over EC2's "
            "16 KB limit; shorten the node preparation script."
        )
    return packed
