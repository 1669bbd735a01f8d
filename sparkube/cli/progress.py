"""How ``up`` and ``down`` show progress: the CLI's :class:`~sparkube.progress.Reporter`.

On a terminal, while a phase runs, a live block shows the phase (spinner, elapsed time)
and one line per node or resource with what it is doing now and for how long, so a
person can see which node is slow. When the phase ends the block is replaced by one
line: ``✓ nodes  4/4 prepared (...)  1:12``, durations in one column. On failure the
line turns red (``✗ nodes  failed  1:12``), the nodes' last steps stay on screen,
and the CLI prints the one-sentence error below.

Without a terminal (CI logs, pipes) nothing is redrawn: each event is one plain line,
prefixed with the time since the phase started.

With many nodes the live block would not fit: nodes doing the same thing are then
grouped on one line (``worker-1, worker-2 … (40 nodes)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

#: Width of the phase/node name column (node names are indented by two).
NAME_WIDTH = 15
SUMMARY_WIDTH = 62
CLOCK_WIDTH = 5
#: Lines of the terminal kept free around the live block.
SPARE_LINES = 6


def clock(seconds: float) -> str:
    """``0:41``, ``12:05``, ``1:02:03``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class _Step:
    text: str
    since: float


class RichReporter:
    """Live progress on ``console`` (stderr): one line per phase and per node."""

    def __init__(
        self,
        console: Console,
        *,
        live: bool | None = None,
        clock_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.live_mode = (
            console.is_terminal and not console.is_dumb_terminal if live is None else live
        )
        self.now = clock_fn
        self.phase = ""
        self.description = ""
        self.started = 0.0
        self.steps: dict[str, _Step] = {}
        self._live: Live | None = None
        self._spinner = Spinner("dots", style="cyan")

    # --- Reporter ----------------------------------------------------------------------

    def phase_started(self, phase: str, description: str) -> None:
        self._stop()
        self.phase, self.description, self.steps = phase, description, {}
        self.started = self.now()
        if self.live_mode:
            self._live = Live(
                console=self.console,
                get_renderable=self._render,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            self._plain(f"… {phase:<{NAME_WIDTH}} {description}")

    def step(self, phase: str, subject: str, text: str) -> None:
        current = self.steps.get(subject)
        if current is not None and current.text == text:
            return
        self.steps[subject] = _Step(text, self.now())
        if not self.live_mode:
            elapsed = clock(self.now() - self.started)
            self._plain(f"  {elapsed:>5} {subject:<{NAME_WIDTH - 6}} {text}")

    def phase_done(self, phase: str, summary: str, seconds: float) -> None:
        self._stop()
        if not self.live_mode:
            self._plain(f"✓ {phase:<{NAME_WIDTH}} {summary}  {clock(seconds)}")
            return
        grid = self._grid()
        grid.add_row(Text("✓", style="green"), phase, summary, Text(clock(seconds), style="dim"))
        self.console.print(grid)

    def phase_failed(self, phase: str, message: str, *, outcome: str = "failed") -> None:
        """The phase line in red; the CLI prints ``message`` (the error) right below.
        ``outcome`` is the word shown (``interrupted`` after Ctrl-C)."""
        self._stop()
        seconds = self.now() - self.started if self.started else 0.0
        if not self.live_mode:
            self._plain(f"✗ {phase:<{NAME_WIDTH}} {outcome}  {clock(seconds)}")
            return
        grid = self._grid()
        grid.add_row(
            Text("✗", style="bold red"),
            Text(phase, style="bold red"),
            Text(outcome, style="red"),
            Text(clock(seconds), style="dim"),
        )
        self._add_rows(grid, limit=None)  # where every node was when it stopped
        self.console.print(grid)

    # --- rendering ---------------------------------------------------------------------

    def _plain(self, line: str) -> None:
        """One line for a log: never wrapped, no markup."""
        self.console.print(Text(line), soft_wrap=True)

    def _grid(self) -> Table:
        """Four fixed columns, so that lines printed one by one line up."""
        # 3 columns to spare: a terminal echoing ^C at the end of a full-width line
        # would wrap, and the live block could then not erase its first line.
        room = self.console.width - 1 - NAME_WIDTH - CLOCK_WIDTH - 3 - 3
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1, no_wrap=True)
        grid.add_column(width=NAME_WIDTH, no_wrap=True, overflow="ellipsis")
        grid.add_column(width=max(20, min(SUMMARY_WIDTH, room)), overflow="fold")
        grid.add_column(min_width=CLOCK_WIDTH, justify="right", no_wrap=True)
        return grid

    def _render(self) -> RenderableType:
        grid = self._grid()
        grid.add_row(
            self._spinner.render(self.console.get_time()),
            Text(self.phase, style="bold"),
            self.description,
            Text(clock(self.now() - self.started), style="dim"),
        )
        self._add_rows(grid, limit=max(3, self.console.height - SPARE_LINES))
        return grid

    def _add_rows(self, grid: Table, *, limit: int | None) -> None:
        now = self.now()
        items = list(self.steps.items())
        rows: list[tuple[str, str, float]] = []
        if limit is None or len(items) <= limit:
            rows = [(subject, step.text, step.since) for subject, step in items]
        else:  # too many to show one by one: one line per distinct activity
            groups: dict[str, list[tuple[str, _Step]]] = {}
            for subject, step in items:
                groups.setdefault(step.text, []).append((subject, step))
            for text, members in list(groups.items())[:limit]:
                names = [m[0] for m in members]
                count = f"{len(names)} nodes" if len(names) > 1 else names[0]
                shown = f"{text} ({', '.join(names[:3])}{' …' if len(names) > 3 else ''})"
                rows.append(
                    (count, shown if len(names) > 1 else text, min(m[1].since for m in members))
                )
        for subject, text, since in rows:
            grid.add_row(
                "", f"  {subject}", Text(text, style="dim"), Text(clock(now - since), style="dim")
            )

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
