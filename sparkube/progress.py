"""Progress events: how long-running layers tell the CLI what they are doing.

Layers below the CLI never print. They call a :class:`Reporter`; the CLI implements it
with Rich (a live line per phase and per node), tests with :class:`RecordingReporter`,
and library users get :class:`NullReporter` by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    def phase_started(self, phase: str, description: str) -> None: ...

    def phase_done(self, phase: str, summary: str, seconds: float) -> None: ...

    def phase_failed(self, phase: str, message: str) -> None: ...

    def step(self, phase: str, subject: str, text: str) -> None:
        """A step inside a phase; ``subject`` is a node name or a resource kind."""
        ...


class NullReporter:
    def phase_started(self, phase: str, description: str) -> None:
        pass

    def phase_done(self, phase: str, summary: str, seconds: float) -> None:
        pass

    def phase_failed(self, phase: str, message: str) -> None:
        pass

    def step(self, phase: str, subject: str, text: str) -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps every event, for tests and for ``--output json`` summaries."""

    events: list[tuple[str, ...]] = field(default_factory=list)

    def phase_started(self, phase: str, description: str) -> None:
        self.events.append(("started", phase, description))

    def phase_done(self, phase: str, summary: str, seconds: float) -> None:
        self.events.append(("done", phase, summary, f"{seconds:.3f}"))

    def phase_failed(self, phase: str, message: str) -> None:
        self.events.append(("failed", phase, message))

    def step(self, phase: str, subject: str, text: str) -> None:
        self.events.append(("step", phase, subject, text))
