"""How ``--help`` reads: value names instead of Python types, whole paragraphs, examples
one per line.

Typer 0.29 labels every option with its Python annotation (``<str>``, ``<bool>``,
``<list[Path]>``), wraps required arguments in braces in the usage line (``{job}``) and
keeps the line breaks of the docstrings, so a paragraph breaks mid-sentence on any
terminal narrower or wider than the source. :class:`HelpGroup` (the root command's
class) tidies every command as it is looked up: flags show no value, options show a
value name (:data:`METAVARS`, else one from the type), arguments show their name in
capitals, paragraphs are joined for Rich to wrap, and ``Examples: a · b`` becomes one
``$ a`` line per example.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

#: Value names of options, by long name (the same option means the same everywhere).
METAVARS = {
    "--allow-cidr": "CIDR",
    "--ami": "AMI-ID",
    "--chart": "FILE",
    "--class": "CLASS",
    "--cluster": "NAME",
    "--conf": "KEY=VALUE",
    "--config": "FILE",
    "--control-plane-type": "TYPE",
    "--executor-cores": "N",
    "--executor-memory": "SIZE",
    "--executors": "N",
    "--input": "PATH",
    "--instance-type": "TYPE",
    "--output": "text|json",
    "--output-dir": "DIR",
    "--port": "PORT",
    "--region": "REGION",
    "--root-volume-gb": "GIB",
    "--since": "DURATION",
    "--subnet-id": "SUBNET-ID",
    "--top": "N",
    "--ttl": "DURATION",
    "--until": "PHASE",
    "--vpc-id": "VPC-ID",
    "--workers": "N",
    "--min-workers": "N",
    "--max-workers": "N",
}
#: Argument names shown in help and usage (default: the parameter name in capitals).
ARGUMENT_NAMES = {"inputs": "INPUT", "args": "ARG", "application": "APP"}

_TIDY = "_sparkube_help_tidy"
_TRAILING_NOTE = re.compile(r"^(.*\S) \(([^()]*)\)$")


def reflow(text: str) -> str:
    """Paragraphs joined into single lines (Rich wraps them at the terminal's width);
    ``Example(s): a · b (note)`` becomes ``Examples:`` and one ``$ a`` line each."""
    out = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):  # Click's "keep these lines" marker
            out.append(paragraph)
            continue
        joined = " ".join(line.strip() for line in paragraph.splitlines())
        label, colon, rest = joined.partition(": ")
        if colon and label in ("Example", "Examples"):
            examples = [_example(e.strip()) for e in rest.split(" · ") if e.strip()]
            heading = "Examples:" if len(examples) > 1 else "Example:"
            out.append("\n".join([heading, *(f"$ {e}" for e in examples)]))
        else:
            out.append(joined)
    return "\n\n".join(out)


def _example(example: str) -> str:
    """``sparkube up (resume)`` -> ``sparkube up  # resume``: still runs if pasted."""
    match = _TRAILING_NOTE.match(example)
    return f"{match.group(1)}  # {match.group(2)}" if match else example


def _value_name(option: TyperOption) -> str:
    for name in option.opts:
        if name in METAVARS:
            return METAVARS[name]
    annotation = option.type_descriptor.annotation
    if annotation is int:
        return "N"
    if annotation is Path or "Path" in str(annotation):
        return "PATH"
    return "TEXT"


class _Argument(TyperArgument):
    """An argument shown by name only: no type column, no braces in the usage line."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"


def tidy_command(command: Any, ctx: Any) -> None:
    """Apply the rules above to one command (once; commands are built per run)."""
    if getattr(command, _TIDY, False):
        return
    setattr(command, _TIDY, True)
    if command.help:
        command.help = reflow(command.help)
    for param in command.get_params(ctx):  # includes the generated --help
        if isinstance(param, TyperOption):
            if param.is_flag or param.count:
                param.metavar = ""  # a flag takes no value: nothing to show
            elif param.metavar is None:
                param.metavar = _value_name(param)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                name = ARGUMENT_NAMES.get(param.name or "", (param.name or "arg").upper())
                param.metavar = f"{name}..." if param.nargs != 1 else name
            param.__class__ = _Argument


class HelpGroup(TyperGroup):
    """The root command: tidies its own options and each command it hands out."""

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            tidy_command(command, ctx)
        return command

    def get_params(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        tidy_command(self, ctx)
        return super().get_params(ctx)
