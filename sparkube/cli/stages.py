"""How a local WordCount shows its progress: elapsed time and the stage it is in.

The stages come from the job itself: the built-in app prints ``SPARKUBE_STAGE`` lines
(starting Spark, counting with the input splits done, sorting and writing, merging),
which :func:`sparkube.spark.local.parse_stage` reads from its output as it runs. They
are shown through :class:`~sparkube.cli.progress.RichReporter`: on a terminal a live
block (spinner, elapsed time, the stage and how long it has run, splits counted so far);
without one, one plain line per stage, prefixed with the time since the start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.status import Status

from sparkube.cli.progress import RichReporter
from sparkube.errors import Interrupted
from sparkube.spark import local

PHASE = "wordcount"
SUBJECT = "spark"
LABELS = {
    "starting": "starting Spark",
    "counting": "counting words",
    "writing": "sorting and writing",
    "merging": "merging the parts",
}


def stage_text(stage: local.Stage, *, with_counts: bool) -> str:
    label = LABELS.get(stage.name, stage.name)
    if with_counts and stage.total:
        return f"{label} · {stage.done}/{stage.total} splits"
    return label


class LocalProgress:
    """Context manager around a local WordCount; :meth:`on_line` is its line handler."""

    def __init__(
        self,
        console: Console,
        description: str,
        *,
        verbose: bool = False,
        live: bool | None = None,
        clock_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reporter = RichReporter(console, live=live, clock_fn=clock_fn)
        self.console = console
        self.description = description
        self.verbose = verbose
        self.now = clock_fn
        self.started = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> LocalProgress:
        self.started = self.now()
        self.reporter.phase_started(PHASE, self.description)
        self.reporter.step(PHASE, SUBJECT, LABELS["starting"])
        return self

    def on_line(self, stream: str, line: str) -> None:
        stage = local.parse_stage(line)
        with self._lock:
            if stage is not None:
                text = stage_text(stage, with_counts=self.reporter.live_mode)
                self.reporter.step(PHASE, SUBJECT, text)
            elif self.verbose:
                self.console.print(line, markup=False, highlight=False)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            if exc_type is None:
                self.reporter.phase_done(
                    PHASE, f"counted {self.description}", self.now() - self.started
                )
            elif issubclass(exc_type, (Interrupted, KeyboardInterrupt)):
                self.reporter.phase_failed(PHASE, str(exc or ""), outcome="interrupted")
            else:
                self.reporter.phase_failed(PHASE, str(exc or ""))


class StartingSpark:
    """``starting Spark…`` with a spinner on a terminal, from the start of a local job
    until its application shows its first line (or ends): Spark takes seconds to start
    and a user's script may print nothing before. Nothing without a terminal."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.live = console.is_terminal and not console.is_dumb_terminal if live is None else live
        self.status: Status | None = (
            Status("starting Spark…", console=console, spinner="dots") if self.live else None
        )
        self._lock = threading.Lock()

    def __enter__(self) -> StartingSpark:
        if self.status is not None:
            self.status.start()
        return self

    def stop(self) -> None:
        """Called before the application's first line is shown (from any thread)."""
        with self._lock:
            if self.status is not None:
                self.status.stop()
                self.status = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
