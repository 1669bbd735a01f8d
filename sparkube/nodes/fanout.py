"""One SSH fan-out helper (asyncssh) for every piece of node work.

Why one helper: every step that touches nodes needs the same things — bounded
concurrency, connect retries while an instance boots, a timeout per command, host keys
pinned per cluster, and a failure that names the node and shows the tail of what it
printed. :class:`SshFleet` keeps one connection per node (opened lazily, reused by every
command of a phase) and :meth:`SshFleet.each` runs a coroutine per node in parallel,
collecting a result or a failure per node so that one bad node never stops the others.

Only transient errors are retried: refused/reset/timed-out connections while a node
boots (and, briefly, an authentication failure, because cloud-init installs the key a
moment after sshd starts). A host key mismatch is never retried. Commands themselves
are not retried here: every node step is idempotent, so re-running ``sparkube up``
retries whatever failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import asyncssh

from sparkube.errors import NodeError
from sparkube.model import Node
from sparkube.nodes.hostkeys import HostKeyMismatch, HostKeyStore

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_USER = "ubuntu"
TAIL_LINES = 15
#: Authentication failures tolerated while cloud-init installs the public key.
AUTH_ATTEMPTS = 4


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclass(frozen=True)
class SshSettings:
    """How to reach the nodes of one cluster."""

    #: The cluster's private key (ed25519, 0600).
    key_path: Path
    #: The cluster's pinned host keys.
    host_keys: HostKeyStore
    #: Login user with passwordless sudo (``ubuntu`` on Ubuntu AMIs).
    user: str = DEFAULT_USER
    #: Nodes worked on at the same time.
    concurrency: int = 32
    #: Timeout of one TCP+SSH connection attempt.
    connect_timeout: float = 10.0
    #: How long to keep retrying connections to a node that is still booting.
    boot_timeout: float = 600.0
    #: Default timeout of one remote command.
    command_timeout: float = 600.0
    #: First and largest delay between connection attempts.
    retry_delay: float = 0.5
    max_retry_delay: float = 5.0


@dataclass(frozen=True)
class CommandResult:
    node: str
    command: str
    exit_status: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def output_tail(self, lines: int = TAIL_LINES) -> str:
        return tail("\n".join(p for p in (self.stdout.rstrip(), self.stderr.rstrip()) if p), lines)


class NodeCommandError(NodeError):
    """A command exited non-zero (or timed out) on a node."""

    def __init__(
        self,
        message: str,
        *,
        node: str,
        result: CommandResult | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.node = node
        self.result = result


@dataclass
class FanOut(Generic[T]):
    """Per-node outcome of :meth:`SshFleet.each`."""

    values: dict[str, T] = field(default_factory=dict)
    failures: dict[str, BaseException] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self, what: str) -> None:
        """Raise one NodeError naming every failed node, with each one's detail."""
        if not self.failures:
            return
        names = sorted(self.failures, key=lambda n: (len(n), n))
        if len(names) == 1:
            name = names[0]
            exc = self.failures[name]
            message = _message(exc).rstrip(".").removesuffix(f" on {name}")
            if "sparkube " not in message:  # say what to do, once
                message += "; fix the cause and run `sparkube up` again to retry it"
            raise NodeError(
                f"{what} failed on {name}: {message}.", detail=getattr(exc, "detail", None)
            ) from exc
        details = []
        for name in names:
            exc = self.failures[name]
            details.append(f"[{name}] {_message(exc)}")
            extra = getattr(exc, "detail", None)
            if extra:
                details.append("  " + extra.replace("\n", "\n  "))
        raise NodeError(
            f"{what} failed on {len(names)} nodes ({', '.join(names)}); "
            "see below, fix the cause and run `sparkube up` again to retry them.",
            detail="\n".join(details),
        )


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


class SshFleet:
    """Connections to the nodes of one cluster, opened on demand and reused.

    Use as ``async with SshFleet(nodes, settings) as fleet: ...``.
    """

    def __init__(self, nodes: Iterable[Node], settings: SshSettings) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.settings = settings
        self._conns: dict[str, asyncssh.SSHClientConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._client_keys: list[asyncssh.SSHKey] | None = None

    async def __aenter__(self) -> SshFleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(conn.wait_closed(), 5)

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise NodeError(f"No node named {name!r}; known: {', '.join(self.nodes)}.") from None

    # ------------------------------------------------------------------ connecting

    def _keys(self) -> list[asyncssh.SSHKey]:
        if self._client_keys is None:
            path = self.settings.key_path
            try:
                self._client_keys = [asyncssh.read_private_key(str(path))]
            except FileNotFoundError:
                raise NodeError(
                    f"The cluster's SSH key {path} is missing; it is created by `sparkube up` "
                    "(infra phase) and cannot be recovered: recreate the cluster."
                ) from None
            except (asyncssh.KeyImportError, ValueError) as exc:
                raise NodeError(f"The SSH key {path} cannot be read ({exc}).") from None
        return self._client_keys

    async def connection(self, name: str) -> asyncssh.SSHClientConnection:
        conn = self._conns.get(name)
        if conn is not None and not conn.is_closed():
            return conn
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            conn = self._conns.get(name)
            if conn is None or conn.is_closed():
                conn = await self._connect(self.node(name))
                self._conns[name] = conn
            return conn

    async def _connect(self, node: Node) -> asyncssh.SSHClientConnection:
        s = self.settings
        host, port = node.address, node.ssh_port
        where = f"{host}:{port}" if port != 22 else host
        deadline = time.monotonic() + s.boot_timeout
        delay = s.retry_delay
        auth_failures = 0
        attempt = 0
        while True:
            attempt += 1
            pinned = s.host_keys.get(node.name, node.instance_id)
            known: asyncssh.SSHKnownHosts | None = None
            if pinned is not None:
                pattern = host if port == 22 else f"[{host}]:{port}"
                known = asyncssh.import_known_hosts(f"{pattern} {pinned.key}\n")
            try:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        host,
                        port,
                        username=s.user,
                        client_keys=self._keys(),
                        known_hosts=known,
                        agent_path=None,
                        config=None,
                        connect_timeout=s.connect_timeout,
                        keepalive_interval=15,
                        keepalive_count_max=4,
                    ),
                    s.connect_timeout + 5,
                )
            except asyncssh.HostKeyNotVerifiable:
                raise s.host_keys.mismatch(node.name, where) from None
            except asyncssh.PermissionDenied as exc:
                auth_failures += 1
                if auth_failures >= AUTH_ATTEMPTS or time.monotonic() > deadline:
                    raise NodeError(
                        f"SSH authentication failed on {node.name} ({where}) as user "
                        f"{s.user!r} with key {s.key_path}; check that this is the cluster's "
                        "key (its public half is the EC2 key pair) and that the user exists.",
                        detail=str(exc),
                    ) from None
                last: BaseException = exc
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                last = exc
            else:
                if pinned is None:
                    key = conn.get_server_host_key()
                    if key is None:  # pragma: no cover - asyncssh always has one
                        conn.close()
                        raise NodeError(f"{node.name} ({where}) presented no host key.")
                    s.host_keys.pin(
                        node.name, key.export_public_key().decode().strip(), node.instance_id
                    )
                    log.info("pinned the host key of %s (%s)", node.name, where)
                return conn
            remaining = deadline - time.monotonic()
            log.debug("connect %s (%s) attempt %d: %s", node.name, where, attempt, last)
            if remaining <= 0:
                raise NodeError(
                    f"Cannot reach {node.name} at {where} over SSH after "
                    f"{s.boot_timeout:.0f} s ({attempt} attempts; last error: "
                    f"{_describe_connect_error(last)}); check that the instance is running "
                    "and that port 22 is open to your address (add it with 'sparkube up "
                    "--allow-cidr YOUR.IP/32'), then run 'sparkube up' again.",
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, s.max_retry_delay)

    # ------------------------------------------------------------------ commands

    async def run(
        self,
        name: str,
        command: str,
        *,
        timeout: float | None = None,
        check: bool = True,
        input: str | None = None,
        what: str | None = None,
    ) -> CommandResult:
        """Run a shell command on a node; with ``check``, a non-zero exit raises."""
        conn = await self.connection(name)
        limit = timeout if timeout is not None else self.settings.command_timeout
        label = what or _short(command)
        started = time.monotonic()
        log.debug("%s$ %s", name, command)
        try:
            proc = await conn.run(
                command,
                check=False,
                timeout=limit,
                input=input,
                encoding="utf-8",
                errors="replace",
            )
        except asyncssh.TimeoutError as exc:
            partial = CommandResult(
                name,
                command,
                -1,
                str(exc.stdout or ""),
                str(exc.stderr or ""),
                time.monotonic() - started,
            )
            raise NodeCommandError(
                f"{label} timed out after {limit:.0f} s on {name}",
                node=name,
                result=partial,
                detail=partial.output_tail() or None,
            ) from None
        except (OSError, asyncssh.Error) as exc:
            self._conns.pop(name, None)
            raise NodeCommandError(
                f"{label} on {name} lost its SSH connection ({exc}); run 'sparkube up' again "
                "to resume",
                node=name,
            ) from None
        if proc.exit_status is None and proc.exit_signal is None:
            # The channel closed with neither an exit status nor a signal: the connection
            # (or the node's sshd) went away while the command ran. It may have finished
            # on the node anyway; every step checks before it acts, so a rerun is safe.
            self._conns.pop(name, None)
            raise NodeCommandError(
                f"{label} on {name} lost its SSH connection before it ended; run 'sparkube "
                "up' again to resume (it first checks what the node completed)",
                node=name,
                detail=tail(str(proc.stdout or "") + str(proc.stderr or "")) or None,
            )
        status = proc.exit_status if proc.exit_status is not None else -1
        result = CommandResult(
            name,
            command,
            status,
            str(proc.stdout or ""),
            str(proc.stderr or ""),
            time.monotonic() - started,
        )
        if check and not result.ok:
            raise NodeCommandError(
                f"{label} exited with status {status} on {name}",
                node=name,
                result=result,
                detail=result.output_tail() or None,
            )
        return result

    async def write_file(self, name: str, path: str, content: str, *, mode: str = "0600") -> None:
        """Write a file as root on a node (content travels on stdin, never in argv)."""
        q = shlex.quote(path)
        await self.run(
            name,
            f'sudo sh -c \'R="${{SPARKUBE_NODE_ROOT:-}}"; mkdir -p "$(dirname "$R"{q})" && '
            f'umask 077 && cat > "$R"{q}.tmp && chmod {mode} "$R"{q}.tmp && '
            f'mv -f "$R"{q}.tmp "$R"{q}\'',
            input=content,
            what=f"writing {path}",
        )

    # ------------------------------------------------------------------ fan-out

    async def each(
        self,
        names: Sequence[str],
        fn: Callable[[str], Awaitable[T]],
    ) -> FanOut[T]:
        """Run ``fn(name)`` for every node, at most ``concurrency`` at a time."""
        sem = asyncio.Semaphore(max(1, self.settings.concurrency))
        out: FanOut[T] = FanOut()

        async def one(name: str) -> None:
            async with sem:
                try:
                    out.values[name] = await fn(name)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("node %s failed: %s", name, exc)
                    out.failures[name] = exc

        await asyncio.gather(*(one(n) for n in names))
        return out


def _short(command: str, limit: int = 60) -> str:
    first = command.strip().splitlines()[0] if command.strip() else command
    return f"`{first[:limit]}{'...' if len(first) > limit else ''}`"


def _describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text


__all__ = [
    "CommandResult",
    "FanOut",
    "HostKeyMismatch",
    "NodeCommandError",
    "SshFleet",
    "SshSettings",
]
