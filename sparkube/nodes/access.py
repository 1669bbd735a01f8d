"""Interactive access to a node: the OpenSSH command line ``sparkube ssh`` runs.

``sparkube ssh`` hands the terminal to the system's ``ssh`` (a real TTY, agent-less,
the user's escape sequences) rather than asyncssh. It uses the cluster's key only and
the cluster's pinned host keys, with the node name as ``HostKeyAlias`` and
``StrictHostKeyChecking=yes``: a node whose key changed is refused by OpenSSH itself.
A node sparkube never connected to yet gets its key pinned first, over asyncssh.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
from collections.abc import Sequence

from sparkube.env import Environment
from sparkube.errors import EnvironmentProblem, NodeError, UsageError
from sparkube.model import ClusterInfo, Node
from sparkube.nodes.fanout import SshFleet, SshSettings
from sparkube.nodes.phase import ssh_settings


def pick_node(cluster: ClusterInfo, name: str | None) -> Node:
    if not cluster.nodes:
        raise NodeError(f"Cluster {cluster.name} has no running nodes; run `sparkube up`.")
    if name is None:
        node = cluster.control_plane()
        if node is None:
            raise NodeError(f"Cluster {cluster.name} has no control plane; run `sparkube up`.")
        return node
    node = cluster.node(name)
    if node is None:
        known = ", ".join(n.name for n in cluster.nodes)
        raise UsageError(f"No node named {name!r} in cluster {cluster.name}; nodes: {known}.")
    return node


async def _pin(node: Node, settings: SshSettings) -> None:
    async with SshFleet([node], settings) as fleet:
        await fleet.connection(node.name)


def ensure_pinned(node: Node, settings: SshSettings) -> None:
    """Pin the node's host key now if sparkube never connected to this instance."""
    if settings.host_keys.get(node.name, node.instance_id) is None:
        asyncio.run(_pin(node, settings))


def ssh_argv(
    node: Node,
    settings: SshSettings,
    command: Sequence[str] = (),
    *,
    ssh: str | None = None,
) -> list[str]:
    """The ``ssh`` command line for a node (a shell, or ``command`` when given)."""
    binary = ssh or shutil.which("ssh")
    if binary is None:
        raise EnvironmentProblem(
            "The `ssh` command is not installed; install OpenSSH's client (openssh-client)."
        )
    if not settings.key_path.is_file():
        raise NodeError(
            f"The cluster's SSH key {settings.key_path} is missing; it is created by "
            "`sparkube up` and cannot be recovered."
        )
    argv = [
        binary,
        "-i", str(settings.key_path),
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", f"UserKnownHostsFile={settings.host_keys.path}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"HostKeyAlias={node.name}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UpdateHostKeys=no",
        "-o", f"ConnectTimeout={int(settings.connect_timeout)}",
        "-o", "LogLevel=ERROR",
        "-p", str(node.ssh_port),
        "-l", settings.user,
    ]  # fmt: skip
    if not command:
        argv += ["-t", node.address]
    else:
        argv += [node.address, "--", shlex.join(command)]
    return argv


def prepare_ssh(
    env: Environment, cluster: ClusterInfo, node_name: str | None, command: Sequence[str]
) -> list[str]:
    """Everything ``sparkube ssh`` needs before handing over to OpenSSH."""
    node = pick_node(cluster, node_name)
    settings = ssh_settings(env, cluster.name, boot_timeout=30.0)
    argv = ssh_argv(node, settings, command)
    ensure_pinned(node, settings)
    return argv
