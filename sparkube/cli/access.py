"""``sparkube ssh`` and ``sparkube kubeconfig``: getting at a running cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand

from sparkube.cli.app import app
from sparkube.cli.options import ClusterOption, RegionOption, load_spec
from sparkube.cli.ui import context
from sparkube.errors import NoSuchCluster, SparkubeError

if TYPE_CHECKING:
    from sparkube.env import Environment

PANEL = "Cluster"
_REMOTE = "sparkube.remote_command"


class _SplitAtDoubleDash(TyperCommand):
    """Everything after ``--`` is the remote command, even when NODE is left out."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if "--" in args:
            cut = args.index("--")
            ctx.meta[_REMOTE] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        return [*super().collect_usage_pieces(ctx), "[-- COMMAND...]"]


@app.command(rich_help_panel=PANEL, cls=_SplitAtDoubleDash)
def ssh(
    ctx: typer.Context,
    node: Annotated[
        str | None,
        typer.Argument(help="Node name (control-plane, worker-1, ...). Default: control plane."),
    ] = None,
    cluster: ClusterOption = None,
    region: RegionOption = None,
) -> None:
    """Open a shell on a node, or run the command given after --.

    Examples: sparkube ssh · sparkube ssh worker-1 · sparkube ssh worker-2 -- df -h
    """
    from sparkube import phases
    from sparkube.aws import discovery
    from sparkube.aws.provider import AwsProvider
    from sparkube.nodes.access import prepare_ssh

    env = context(ctx).env
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    provider = AwsProvider.from_env(env, region=spec.region)
    info = provider.describe(spec.name).with_address_overrides(phases.default_overrides(env))
    if discovery.is_empty(info):
        raise NoSuchCluster.in_region(spec.name, provider.region)
    argv = prepare_ssh(env, info, node, ctx.meta.get(_REMOTE, []))
    code = subprocess.call(argv)
    if code != 0:
        raise typer.Exit(code)


@app.command(rich_help_panel=PANEL)
def kubeconfig(
    ctx: typer.Context,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Merge into ~/.kube/config (or the first file of $KUBECONFIG), keeping "
            "every other context.",
        ),
    ] = False,
    cluster: ClusterOption = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="Where to look for the cluster in AWS when this machine has no kubeconfig "
            "for it, to say whether it exists. Default: the AWS SDK's own region.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the path of the cluster's kubeconfig, or merge it into your own.

    Examples: kubectl --kubeconfig "$(sparkube kubeconfig)" get nodes ·
    sparkube kubeconfig --merge && kubectl --context sparkube get nodes
    """
    from sparkube.nodes.kubeconfig import kubeconfig_path, merge_into_user_config

    app_ctx = context(ctx)
    env, ui = app_ctx.env, app_ctx.ui
    spec = load_spec(env=env, flags={"name": cluster, "region": region})
    path = kubeconfig_path(env, spec.name)
    if not path.is_file():
        raise _missing_kubeconfig(env, spec.name, spec.region, path)
    if not merge:
        ui.out.print(str(path), markup=False, highlight=False)
        return
    target = merge_into_user_config(env, spec.name)
    ui.out.print(str(target), markup=False, highlight=False)
    ui.ok(
        f"Merged context {spec.name} into {target}; use it with: "
        f"kubectl --context {spec.name} get nodes"
    )


def _missing_kubeconfig(
    env: Environment, name: str, region: str | None, path: Path
) -> SparkubeError:
    """No kubeconfig here: with a region (given or the SDK's), ask AWS whether the
    cluster exists, to tell "it runs, but was made on another machine" from "no such
    cluster"; without one, say what this machine knows."""
    from sparkube.aws.session import configured_region

    home = configured_region(env.environ, region)
    if home is None:
        return NoSuchCluster.not_here(name, path.parent)
    from sparkube.aws import discovery
    from sparkube.aws.provider import AwsProvider

    provider = AwsProvider.from_env(env, region=home)
    if discovery.is_empty(provider.describe(name)):
        return NoSuchCluster.in_region(name, provider.region)
    return NoSuchCluster(
        f"Cluster {name} exists in {provider.region} but was made on another machine (no "
        f"kubeconfig in {path.parent}); copy that machine's {path} here."
    )
