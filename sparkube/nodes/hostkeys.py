"""Pinned SSH host keys, one file per cluster, keyed by node name.

sparkube never trusts a host key blindly for a node it has already seen. The first
connection to a freshly launched instance records the key the server presents
(trust-on-first-use; EC2 gives no other channel that is both cheap and reliable); every
later connection to the same instance must present exactly that key, or sparkube refuses
to connect. A node replaced by a new instance (another instance id) is fresh again.

The file is in OpenSSH ``known_hosts`` format with the node *name* as the host pattern,
so plain OpenSSH can use it too (``-o HostKeyAlias=worker-1``), which is what
``sparkube ssh`` does. The instance id is kept in the line's comment.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sparkube.env import write_private_file
from sparkube.errors import NodeError

log = logging.getLogger(__name__)

KNOWN_HOSTS_FILE = "known_hosts"
_INSTANCE_PREFIX = "instance="


@dataclass(frozen=True)
class PinnedKey:
    node: str
    key: str  # "ssh-ed25519 AAAA..." (algorithm and base64, no comment)
    instance_id: str = ""

    def line(self) -> str:
        return f"{self.node} {self.key} {_INSTANCE_PREFIX}{self.instance_id}"


class HostKeyMismatch(NodeError):
    """A node presented another host key than the one pinned for it."""


class HostKeyStore:
    """The per-cluster ``known_hosts`` file. Safe to share between coroutines/threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def for_cluster(cls, cluster_dir: Path) -> HostKeyStore:
        return cls(cluster_dir / KNOWN_HOSTS_FILE)

    def load(self) -> dict[str, PinnedKey]:
        if not self.path.exists():
            return {}
        pinned: dict[str, PinnedKey] = {}
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            parts = raw.split()
            if len(parts) < 3 or raw.lstrip().startswith("#"):
                continue
            instance = ""
            for extra in parts[3:]:
                if extra.startswith(_INSTANCE_PREFIX):
                    instance = extra[len(_INSTANCE_PREFIX) :]
            pinned[parts[0]] = PinnedKey(parts[0], f"{parts[1]} {parts[2]}", instance)
        return pinned

    def get(self, node: str, instance_id: str = "") -> PinnedKey | None:
        """The key to insist on for ``node``, or None when the node is fresh (TOFU)."""
        pinned = self.load().get(node)
        if pinned is None:
            return None
        if instance_id and pinned.instance_id and pinned.instance_id != instance_id:
            log.info(
                "node %s is a new instance (%s): its host key will be re-pinned", node, instance_id
            )
            return None
        return pinned

    def pin(self, node: str, key: str, instance_id: str = "") -> PinnedKey:
        """Record the first key seen for a fresh node (replacing a replaced instance's)."""
        entry = PinnedKey(node, " ".join(key.split()[:2]), instance_id)
        with self._lock:
            pinned = self.load()
            pinned[node] = entry
            body = "".join(p.line() + "\n" for _, p in sorted(pinned.items()))
            write_private_file(self.path, "# sparkube: pinned host keys, by node name\n" + body)
        return entry

    def forget(self, node: str) -> bool:
        with self._lock:
            pinned = self.load()
            if pinned.pop(node, None) is None:
                return False
            body = "".join(p.line() + "\n" for _, p in sorted(pinned.items()))
            write_private_file(self.path, "# sparkube: pinned host keys, by node name\n" + body)
            return True

    def mismatch(self, node: str, address: str) -> HostKeyMismatch:
        return HostKeyMismatch(
            f"Refusing to connect to {node} ({address}): its SSH host key differs from the "
            f"one pinned when sparkube first connected to this instance. If {node} was "
            f"rebuilt on purpose, remove its line from {self.path} and run again; "
            "otherwise something may be intercepting the connection.",
        )
