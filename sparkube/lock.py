"""One ``up`` or ``down`` of a cluster at a time, on this machine.

Two ``sparkube up`` of the same cluster at once would both see a half-made cluster and
both act on it: two ``kubeadm init`` attempts, workers launched twice under different
client tokens once the first batch changed the cluster, a ``down`` deleting the group an
``up`` is launching into. So ``up`` and ``down`` hold an exclusive lock on
``$SPARKUBE_HOME/.NAME.lock`` while they work, and a second one refuses at once, saying
which command holds it (pid, start time) — rather than waiting behind a command that can
run for minutes with no sign of life.

Why ``flock``: the kernel drops the lock when its holder exits, even on SIGKILL or a
crash, so no stale lock ever needs removing by hand; and it is held per open file, so
two threads of one process exclude each other too (the tests rely on it).

Limit: the lock is local. Two machines (or two ``SPARKUBE_HOME`` folders) can still run
``up`` of the same cluster at once; what then keeps them apart is only that every phase
looks before it acts (deterministic EC2 client tokens, ``kubeadm init`` skipped once
``admin.conf`` exists).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sparkube.env import Environment, make_private_dir
from sparkube.errors import OperationError


class ClusterBusy(OperationError):
    """Another sparkube command holds the cluster's lock."""


def lock_path(env: Environment, cluster: str) -> Path:
    return env.home / f".{cluster}.lock"


def _holder(fd: int) -> str:
    """Who holds the lock, from what the holder wrote into the file."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or not data.get("command"):
        return "another sparkube command"
    started = str(data.get("started", ""))
    try:
        when = datetime.fromisoformat(started).astimezone().strftime("%H:%M:%S")
    except ValueError:
        when = "?"
    return f"'sparkube {data['command']}' (pid {data.get('pid', '?')}, started {when})"


@contextlib.contextmanager
def cluster_lock(
    env: Environment, cluster: str, command: str, *, remove: bool = False
) -> Iterator[None]:
    """Hold the cluster's lock for ``command`` or raise :class:`ClusterBusy`.

    ``remove``: delete the lock file on the way out (``down``, which removed the
    cluster's folder too), so nothing of the cluster is left locally.
    """
    path = lock_path(env, cluster)
    make_private_dir(path.parent)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ClusterBusy(
                f"Cluster {cluster} is busy: {holder} is working on it from this machine; "
                f"wait for it to finish (or stop it with Ctrl-C), then run 'sparkube "
                f"{command}' again."
            ) from None
        # A holder that finished may have removed the file after we opened it: then we
        # hold a lock on a name nobody else will open again; start over on the new file.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        record = {"command": command, "pid": os.getpid(), "started": datetime.now(UTC).isoformat()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        try:
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # releases the lock
