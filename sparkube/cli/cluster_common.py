"""What the cluster commands (``plan``, ``up``, ``down``, ``status``, ``ls``) share: their
help panel, the flags of ``plan`` and ``up``, the spec and AWS provider they build, and
the guards they run before asking AWS anything.

No boto3 or pydantic at module level: ``sparkube --help`` loads neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sparkube.cli.options import load_spec
from sparkube.cli.ui import context
from sparkube.defaults import (
    DEFAULT_CONTROL_PLANE_TYPE,
    DEFAULT_CPU_CREDITS,
    DEFAULT_IDLE_MINUTES,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_ROOT_VOLUME_GB,
    DEFAULT_WORKERS,
    MAX_ROOT_VOLUME_GB,
    MAX_WORKERS,
    MIN_ROOT_VOLUME_GB,
)
from sparkube.env import Environment
from sparkube.errors import Interrupted, UsageError

if TYPE_CHECKING:  # imported where used: '--help' and '--version' load no AWS SDK
    from sparkube.aws.provider import AwsProvider
    from sparkube.cost.collect import ClusterCost
    from sparkube.spec import ClusterSpec

PANEL = "Cluster"

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Cluster file. Default: ./sparkube.yaml if present.", show_default=False
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        help=f"Workers the cluster keeps at least (0-{MAX_WORKERS}): the minimum of its "
        "worker group, the same as --min-workers. On an existing cluster, more adds "
        f"workers; fewer is refused. Default: {DEFAULT_WORKERS}.",
        show_default=False,
    ),
]
MinWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--min-workers",
        help="The worker group's minimum; another name for --workers (give one of them). "
        f"Default: {DEFAULT_WORKERS}.",
        show_default=False,
    ),
]
MaxWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--max-workers",
        help="The most workers the group may have, at least the minimum; plan shows the "
        "price at both. Workers beyond the minimum are not launched by up: the cluster's "
        "controller adds them when a queued job needs them, they join by themselves, and "
        "it removes them after --idle-minutes without work. On an existing cluster, a new "
        "value updates the group. Default: the minimum.",
        show_default=False,
    ),
]
IdleMinutesOption = Annotated[
    int | None,
    typer.Option(
        "--idle-minutes",
        help="Minutes a worker above the minimum may hold nothing of an unfinished job "
        "(no driver, no executor: shuffle files live there) before the controller removes "
        f"it. Default: {DEFAULT_IDLE_MINUTES}.",
        show_default=False,
    ),
]
TypeOption = Annotated[
    str | None,
    typer.Option(
        "--instance-type",
        help=f"EC2 type of the workers. Default: {DEFAULT_INSTANCE_TYPE}.",
        show_default=False,
    ),
]
CpTypeOption = Annotated[
    str | None,
    typer.Option(
        "--control-plane-type",
        help=f"EC2 type of the control plane. Default: {DEFAULT_CONTROL_PLANE_TYPE}.",
        show_default=False,
    ),
]
SpotOption = Annotated[
    bool | None,
    typer.Option(
        "--spot/--no-spot",
        help="Run workers on spot capacity. Default: on-demand (--no-spot).",
        show_default=False,
    ),
]
CpuCreditsOption = Annotated[
    str | None,
    typer.Option(
        "--cpu-credits",
        help="CPU credit mode of burstable types (t2, t3, t3a, t4g): unlimited or standard. "
        "unlimited (AWS's own default for t3, t3a, t4g): full speed whenever needed; the "
        "surplus credits a node is charged beyond its hourly price ($0.05 per vCPU-hour "
        "above the baseline, Linux) are counted by status and usage from CloudWatch. "
        "standard: the hourly price is the whole bill, but a node without credits runs at "
        "its baseline (20% of each vCPU for t3.medium), as every new t3 node does: t3, "
        f"t3a and t4g get no launch credits. Other types ignore it. Default: "
        f"{DEFAULT_CPU_CREDITS}.",
        show_default=False,
    ),
]
CidrOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-cidr",
        help="CIDR allowed to reach SSH and the API (repeatable). Default: your public IP/32.",
        show_default=False,
    ),
]
AmiOption = Annotated[
    str | None,
    typer.Option("--ami", help="AMI id. Default: Ubuntu 24.04 from SSM.", show_default=False),
]
TtlOption = Annotated[
    str | None,
    typer.Option(
        "--ttl",
        help="Nodes terminate themselves after this (4h, 90m). Default: none, they run until down.",
        show_default=False,
    ),
]
VolumeOption = Annotated[
    int | None,
    typer.Option(
        "--root-volume-gb",
        help=f"Root volume size in GiB ({MIN_ROOT_VOLUME_GB}-{MAX_ROOT_VOLUME_GB}). "
        f"Default: {DEFAULT_ROOT_VOLUME_GB}.",
        show_default=False,
    ),
]
VpcOption = Annotated[
    str | None, typer.Option("--vpc-id", help="VPC. Default: the default VPC.", show_default=False)
]
SubnetOption = Annotated[
    str | None,
    typer.Option("--subnet-id", help="Subnet. Default: chosen by EC2.", show_default=False),
]
AptRepoOption = Annotated[
    str | None,
    typer.Option(
        "--kubernetes-apt-repo",
        metavar="URL",
        help="apt repository (https) the nodes install kubelet, kubeadm and kubectl from, "
        "e.g. a corporate mirror of pkgs.k8s.io; the word minor in braces stands for the "
        "Kubernetes minor (1.36). Default: pkgs.k8s.io's repository of that minor.",
        show_default=False,
    ),
]
MirrorOption = Annotated[
    list[str] | None,
    typer.Option(
        "--registry-mirror",
        metavar="REGISTRY=URL",
        help="Nodes pull the images of REGISTRY (docker.io, registry.k8s.io, ghcr.io, ...; "
        "_default: any other) through this https mirror URL, which may end in a proxy "
        "cache's path prefix (repeatable). Image names stay the same; containerd falls "
        "back to the registry itself. Default: none.",
        show_default=False,
    ),
]
ContainerdOption = Annotated[
    str | None,
    typer.Option(
        "--containerd",
        metavar="SOURCE",
        help="Where nodes get containerd: distro (the Ubuntu package), release "
        "(containerd's pinned 2.x release, checked by SHA-256) or auto (distro up to "
        "Kubernetes 1.36, release from 1.37, which needs containerd 2). Default: auto.",
        show_default=False,
    ),
]
ContainerdUrlOption = Annotated[
    str | None,
    typer.Option(
        "--containerd-url",
        metavar="URL",
        help="Where nodes download containerd's release (with --containerd release or "
        "auto): a mirror of GitHub's release download path, same layout; the pinned "
        "SHA-256 is still checked. Default: GitHub's.",
        show_default=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


#: Command parameters whose name differs from the ClusterSpec field they set.
_PARAM_TO_FIELD = {
    "cluster": "name",
    "allow_cidr": "allow_cidrs",
    "registry_mirror": "registry_mirrors",
    "containerd_url": "containerd_release_url",
}


def cluster_spec(ctx: typer.Context) -> ClusterSpec:
    """The spec from the command's own parameters (``plan`` and ``up`` share them),
    with the checks that need no AWS call done: ``plan`` (offline too) and ``up``
    refuse the same input before asking AWS anything."""
    from sparkube.aws.network import refuse_open
    from sparkube.spec import ClusterSpec

    flags = {
        _PARAM_TO_FIELD.get(param, param): value
        for param, value in ctx.params.items()
        if _PARAM_TO_FIELD.get(param, param) in ClusterSpec.model_fields
    }
    spec = load_spec(env=context(ctx).env, config=ctx.params.get("config"), flags=flags)
    refuse_open(spec.allow_cidrs)
    return spec


def aws_provider(ctx: typer.Context, spec_region: str | None) -> AwsProvider:
    from sparkube.aws.provider import AwsProvider

    return AwsProvider.from_env(context(ctx).env, region=spec_region)


def need_region(
    env: Environment, region: str | None, *, known: str, unknown: str, name: str
) -> None:
    """Exit 2 with what the command cannot do when no AWS region is set: ``known`` if
    this machine has files of cluster ``name``, else ``unknown``."""
    from sparkube.aws.session import configured_region

    if configured_region(env.environ, region) is not None:
        return
    said = known if env.cluster_dir(name).exists() else unknown
    raise UsageError(
        f"{said}; pass --region REGION (or set AWS_REGION), or find your clusters with "
        "'sparkube ls --all-regions'."
    )


def cluster_cost(
    provider: AwsProvider, cluster: str, region: str, bucket: str | None
) -> ClusterCost:
    """What the cluster costs per hour now and so far, from the one cost model over its
    ledger (EC2 and, with ``bucket``, the instance facts kept there). Reads only."""
    from sparkube.aws.errors import aws_errors
    from sparkube.cost.collect import ClusterCost, gather

    clients = provider.clients if region == provider.region else provider.clients.for_region(region)
    with aws_errors(region):
        return ClusterCost.of(gather(clients, cluster, region, bucket))


@contextmanager
def interrupted_says(message: str) -> Iterator[None]:
    """Ctrl-C: exit 130 with what to do (Typer would exit 130 silently)."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(message) from None
