"""Terminal output: one stdout console for results, one stderr console for the rest.

Results (tables, JSON) go to stdout so they can be piped; progress, notes and errors go
to stderr. Rich turns colours and spinners off by itself when the stream is not a TTY.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import typer
from rich.console import Console
from rich.markup import escape

from sparkube.env import Environment


class UI:
    def __init__(self, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.out = Console(file=stdout or sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        self.err.print(message, markup=False)

    def ok(self, message: str) -> None:
        self.err.print(f"[green]✓[/green] {escape(message)}")

    @contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """A spinner on stderr saying what is being waited for (an AWS call that may
        take seconds); on a terminal only, and gone when the block ends."""
        if not self.err.is_terminal:
            yield
            return
        with self.err.status(f"{escape(what)}…", spinner="dots"):
            yield

    def error(self, message: str, *, detail: str | None = None) -> None:
        self.err.print(f"[bold red]Error:[/bold red] {escape(message)}")
        if detail:
            self.err.print(escape(detail), style="dim")


@dataclass(frozen=True)
class AppContext:
    env: Environment
    ui: UI


def context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # called through Typer's own runner
        obj = AppContext(Environment(), UI())
        ctx.find_root().obj = obj
    return obj
