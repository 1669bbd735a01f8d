"""The process environment, injected rather than read from globals.

Commands receive an :class:`Environment` built once by the CLI; tests build their own
(another ``SPARKUBE_HOME``, another working directory, no TTY) instead of monkeypatching
``os.environ``. Only this module touches ``os.environ`` and the current directory.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _stdin_is_tty() -> bool:
    stdin = sys.stdin  # None when the process was started with stdin closed
    try:
        return stdin is not None and stdin.isatty()
    except (ValueError, OSError):
        return False


@dataclass(frozen=True)
class Environment:
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=Path.cwd)
    interactive: bool = field(default_factory=lambda: _stdin_is_tty())

    @property
    def debug(self) -> bool:
        return self.environ.get("SPARKUBE_DEBUG", "") not in ("", "0", "false")

    @property
    def home(self) -> Path:
        """``$SPARKUBE_HOME``, default ``~/.sparkube``."""
        value = self.environ.get("SPARKUBE_HOME")
        if value:
            return Path(value).expanduser()
        user_home = self.environ.get("HOME")
        return (Path(user_home) if user_home else Path.home()) / ".sparkube"

    def cluster_dir(self, name: str, *, create: bool = False) -> Path:
        """The folder holding one cluster's local files (keys, kubeconfig, runs)."""
        path = self.home / name
        if create:
            make_private_dir(self.home)
            make_private_dir(path)
        return path


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 for the leaf; fix the mode if it exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
    return path


def write_private_file(path: Path, data: str | bytes) -> Path:
    """Write a secret atomically: created 0600 from the start, never world-readable."""
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
