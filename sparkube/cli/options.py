"""Options every command shares (DESIGN.md CLI contract)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sparkube.errors import UsageError

if TYPE_CHECKING:
    from sparkube.env import Environment
    from sparkube.spec import ClusterSpec

ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        "-c",
        help="Cluster name. Default: $SPARKUBE_CLUSTER, else name: in ./sparkube.yaml, "
        "else sparkube.",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="AWS region. Default: the AWS SDK's own (AWS_REGION, AWS_DEFAULT_REGION, profile).",
        show_default=False,
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="Show Spark's own log and progress output."),
]
OutputOption = Annotated[
    str, typer.Option("--output", "-o", help="text or json.", case_sensitive=False)
]


def load_spec(
    *,
    env: Environment,
    config: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    use_file: bool = True,
) -> ClusterSpec:
    """:func:`sparkube.spec.load_spec`, imported when a command runs: the spec model
    (pydantic) is not loaded for ``--help`` or ``--version``."""
    from sparkube import spec

    return spec.load_spec(env=env, config=config, flags=flags, use_file=use_file)


def check_output(output: str) -> str:
    """``text`` or ``json`` (any case); anything else is a usage error (exit 2)."""
    value = output.lower()
    if value not in ("text", "json"):
        raise UsageError(f"--output {output} is not supported; use text or json.")
    return value
