"""The driver's log followed live while a job is watched: a background thread streams
the driver container's log from the API server, keeps every line (the watcher copies
them to the bucket) and hands each to the caller (``--follow``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sparkube.spark.rbac import SPARK_NAMESPACE


class LogFollower:
    """Streams a pod's log from a background thread: keeps every line (``lines``, with
    their newlines) and hands each to ``on_line`` when given."""

    def __init__(self, client: Any, pod: str, on_line: Callable[[str], None] | None) -> None:
        import threading

        self.client, self.pod, self.on_line = client, pod, on_line
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for line in self.client.log(
                self.pod, namespace=SPARK_NAMESPACE, container="driver", follow=True
            ):
                if self._stop.is_set():
                    return
                self.lines.append(line if line.endswith("\n") else line + "\n")
                if self.on_line is not None:
                    self.on_line(line.rstrip("\n"))

    def drain(self, timeout: float = 5.0) -> None:
        """Let the stream run to its end (the container ended), for at most ``timeout``."""
        self._thread.join(timeout=timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
