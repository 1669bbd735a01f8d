"""Private tunnels to what runs in the cluster: an SSH local forward through the control
plane, with the cluster's key and pinned host key.

Nothing is exposed: no NodePort, no LoadBalancer, no security-group rule. The control
plane reaches ClusterIPs and pod IPs (kube-proxy, the pod network); the tunnel listens on
127.0.0.1 only. Used by ``sparkube dashboard`` (kube-opex-analytics) and ``sparkube
spark-ui`` (a live driver UI, or the History Server).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparkube.errors import ClusterError, UsageError
from sparkube.model import Node
from sparkube.nodes.fanout import SshFleet, SshSettings


@dataclass(frozen=True)
class Target:
    """What the tunnel reaches, as the control plane sees it."""

    host: str
    port: int
    what: str


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, *, explicit: bool) -> int:
    """``preferred`` if free; else (unless the user asked for it) any free port."""
    if port_free(preferred):
        return preferred
    if explicit:
        raise UsageError(f"Port {preferred} on 127.0.0.1 is in use; pass another one with --port.")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


REACH_TIMEOUT = 30.0  # seconds for kube-proxy to route a Service whose pod just got Ready


async def serve_tunnel(
    node: Node,
    settings: SshSettings,
    target: Target,
    local_port: int,
    *,
    on_ready: Callable[[int], None],
    stop: asyncio.Event | None = None,
    reach_timeout: float = REACH_TIMEOUT,
) -> None:
    """Forward 127.0.0.1:local_port to target through ``node`` until ``stop`` is set
    (or the task is cancelled, e.g. by Ctrl-C). ``on_ready`` is called only once the
    control plane reaches the target (see :func:`wait_reachable`)."""
    async with SshFleet([node], settings) as fleet:
        conn = await fleet.connection(node.name)
        await wait_reachable(conn, target, reach_timeout)
        try:
            listener = await conn.forward_local_port(
                "127.0.0.1", local_port, target.host, target.port
            )
        except OSError as exc:
            raise ClusterError(
                f"Cannot listen on 127.0.0.1:{local_port} ({exc.strerror}); pass --port."
            ) from None
        on_ready(listener.get_port())
        try:
            if stop is None:
                await asyncio.Event().wait()
            else:
                await stop.wait()
        finally:
            listener.close()
            with contextlib.suppress(Exception):
                await listener.wait_closed()


async def wait_reachable(conn: Any, target: Target, timeout: float) -> None:
    """Open (and close) a connection to ``target`` from the control plane until one
    succeeds. A pod can be Ready a moment before kube-proxy routes its Service's cluster
    IP; a tunnel announced then would hand the browser a closed connection."""
    import asyncssh

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = max(1.0, deadline - loop.time())
        try:
            _, writer = await asyncio.wait_for(
                conn.open_connection(target.host, target.port), timeout=left
            )
        except (TimeoutError, asyncssh.ChannelOpenError) as exc:
            if loop.time() >= deadline:
                why = getattr(exc, "reason", "") or "no answer"
                raise ClusterError(
                    f"The control plane cannot reach {target.what} at {target.host}:"
                    f"{target.port} ({why}); check its pod and Service with kubectl, then "
                    "try again."
                ) from None
            await asyncio.sleep(0.5)
            continue
        writer.close()
        return


def service_target(client: Any, namespace: str, name: str, port: int, what: str) -> Target:
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Service

    try:
        svc = client.get(Service, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            raise ClusterError(
                f"{what} is not installed (no Service {namespace}/{name}); run sparkube up to "
                "finish the addons phase."
            ) from None
        raise ClusterError(
            f"Reading Service {namespace}/{name} failed: {exc.status.message}."
        ) from None
    ip = svc.spec.clusterIP if svc.spec else None
    if not ip or ip == "None":
        raise ClusterError(f"Service {namespace}/{name} has no cluster IP.")
    return Target(ip, port, what)


def check_ready(
    client: Any, namespace: str, selector: dict[str, str], what: str, usual: str
) -> None:
    """ClusterError with the pod's status when nothing behind the Service is ready."""
    from lightkube.resources.core_v1 import Pod

    pods = list(client.list(Pod, namespace=namespace, labels=selector))
    for pod in pods:
        conds = (pod.status.conditions if pod.status else None) or []
        if any(c.type == "Ready" and c.status == "True" for c in conds):
            return
    if not pods:
        raise ClusterError(f"{what} has no pod yet; it usually takes {usual} after sparkube up.")
    pod = pods[0]
    reason = pod.status.phase if pod.status else "Pending"
    for st in (pod.status.containerStatuses if pod.status else None) or []:
        if st.state and st.state.waiting and st.state.waiting.reason:
            reason = st.state.waiting.reason
    raise ClusterError(
        f"{what} is not ready yet (pod {pod.metadata.name}: {reason}); it usually takes "
        f"{usual} after sparkube up — try again shortly."
    )
