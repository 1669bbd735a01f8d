"""Options every command shares (DESIGN.md CLI contract)."""

from __future__ import annotations

from typing import Annotated

import typer

ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        "-c",
        help="Cluster name. Default: $SPARKUBE_CLUSTER, else 'name:' in ./sparkube.yaml, "
        "else 'sparkube'.",
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
