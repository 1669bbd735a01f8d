"""The ``nodes`` and ``kubernetes`` phases of ``sparkube up``.

``nodes``: connect to every node in parallel (retrying while instances boot, pinning
host keys), wait for the boot-time preparation's done-marker, and check what it left
(binaries, kernel modules, sysctls, swap). A node whose preparation failed is named with
the tail of its preparation log.

``kubernetes``: ``kubeadm init`` on the control plane unless already initialised
(after ``kubeadm reset`` when an earlier init stopped midway; see
:func:`kubeadm.init_state_command`), the
bundled Flannel manifest applied server-side with the node's admin kubeconfig, the admin
kubeconfig fetched, rewritten and saved locally, then every worker not yet joined joins
in parallel (one failing worker does not stop the others; re-running retries it), the
self-join parameter written when it is missing or its token is near expiry (a token of
its own, :data:`selfjoin.TOKEN_TTL`: workers the group launches later join with it, see
``sparkube.nodes.selfjoin``), and finally a wait, through the Kubernetes API, until
every node is Ready and CoreDNS is up.

Every step looks before it acts, so re-running ``sparkube up`` resumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sparkube.env import Environment
from sparkube.errors import ConfigError, NodeError
from sparkube.model import ClusterInfo, Node
from sparkube.nodes import kubeadm, selfjoin
from sparkube.nodes.cni import render_cni_manifest
from sparkube.nodes.fanout import DEFAULT_USER, SshFleet, SshSettings, tail
from sparkube.nodes.hostkeys import HostKeyStore
from sparkube.nodes.kubeconfig import rewrite_admin_kubeconfig, save_kubeconfig, server_url
from sparkube.nodes.prepare import PREPARE_LOG, PREPARE_MARKER
from sparkube.progress import NullReporter, Reporter
from sparkube.spec import ClusterSpec

log = logging.getLogger(__name__)

#: The cluster's private key in its folder (written by the infra phase).
KEY_FILE = "id_ed25519"
NODES = "nodes"
KUBERNETES = "kubernetes"


#: Seconds to keep trying to reach a node over SSH (default: SshSettings.boot_timeout).
BOOT_TIMEOUT_VAR = "SPARKUBE_SSH_BOOT_TIMEOUT"


def ssh_settings(env: Environment, cluster: str, **overrides: object) -> SshSettings:
    """SSH settings for a cluster: its key and pinned host keys; user from
    ``SPARKUBE_SSH_USER`` (default ``ubuntu``); how long to wait for a node that does not
    answer from ``SPARKUBE_SSH_BOOT_TIMEOUT`` (seconds, default 600)."""
    cdir = env.cluster_dir(cluster)
    values: dict[str, object] = {
        "key_path": cdir / KEY_FILE,
        "host_keys": HostKeyStore.for_cluster(cdir),
        "user": env.environ.get("SPARKUBE_SSH_USER") or DEFAULT_USER,
    }
    raw = env.environ.get(BOOT_TIMEOUT_VAR, "").strip()
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = 0.0
        if not seconds > 0:
            raise ConfigError(
                f"{BOOT_TIMEOUT_VAR}={raw!r} is not a number of seconds above 0; set it to "
                "e.g. 600."
            )
        values["boot_timeout"] = seconds
    values.update(overrides)
    return SshSettings(**values)  # type: ignore[arg-type]


# ============================================================================ nodes


def check_command() -> str:
    """POSIX sh, read-only: the marker, then (once prepared) what preparation left."""
    r = '"${SPARKUBE_NODE_ROOT:-}"'
    return "\n".join(
        [
            'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"',
            f'if [ -f {r}{PREPARE_MARKER} ]; then echo "prepare=$(cat {r}{PREPARE_MARKER})";',
            "else echo prepare=pending; exit 0; fi",
            "for b in containerd kubelet kubeadm kubectl; do",
            '  command -v "$b" >/dev/null 2>&1 || echo "problem=$b is not installed"',
            "done",
            "for m in overlay br_netfilter; do",
            "  lsmod 2>/dev/null | awk '{print $1}' | grep -qx \"$m\" ||"
            ' echo "problem=kernel module $m is not loaded"',
            "done",
            "for s in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do",
            '  [ "$(sysctl -n "$s" 2>/dev/null)" = 1 ] || echo "problem=sysctl $s is not 1"',
            "done",
            '[ -z "$(swapon --show --noheadings 2>/dev/null)" ] || echo "problem=swap is on"',
            'echo "kubeadm=$(kubeadm version -o short 2>/dev/null)"',
            "echo \"containerd=$(containerd --version 2>/dev/null | awk '{print $3}')\"",
        ]
    )


@dataclass(frozen=True)
class NodeFacts:
    node: str
    #: Exit status of the preparation script, None while it still runs.
    prepare_status: int | None
    kubeadm_version: str = ""
    containerd_version: str = ""
    problems: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.prepare_status == 0 and not self.problems


def parse_check_output(node: str, text: str) -> NodeFacts:
    values: dict[str, str] = {}
    problems: list[str] = []
    for line in text.replace("\r", "").splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep:
            continue
        if key == "problem":
            problems.append(value.strip())
        else:
            values[key] = value.strip()
    raw = values.get("prepare", "pending")
    status: int | None
    if raw == "pending":
        status = None
    else:
        try:
            status = int(raw)
        except ValueError:
            status = 255
    return NodeFacts(
        node,
        status,
        values.get("kubeadm", ""),
        values.get("containerd", ""),
        tuple(problems),
    )


async def _wait_prepared(
    fleet: SshFleet,
    name: str,
    *,
    timeout: float,
    interval: float,
    reporter: Reporter,
) -> NodeFacts:
    reporter.step(NODES, name, "connecting")
    await fleet.connection(name)
    deadline = time.monotonic() + timeout
    said_waiting = False
    while True:
        result = await fleet.run(name, check_command(), what="checking preparation", timeout=60)
        facts = parse_check_output(name, result.stdout)
        if facts.prepare_status is not None:
            break
        if not said_waiting:
            reporter.step(NODES, name, "waiting for boot-time preparation")
            said_waiting = True
        if time.monotonic() >= deadline:
            log_tail = await _prepare_log_tail(fleet, name)
            raise NodeError(
                f"Preparation of {name} did not finish within {timeout:.0f} s; "
                f"run `sparkube up` again to keep waiting, or look at {PREPARE_LOG} "
                f"with `sparkube ssh {name}`.",
                detail=log_tail or None,
            )
        await asyncio.sleep(interval)
    if facts.prepare_status != 0:
        log_tail = await _prepare_log_tail(fleet, name)
        raise NodeError(
            f"boot-time preparation failed (exit status {facts.prepare_status}); last lines of "
            f"{PREPARE_LOG} below. Replace the node or fix the cause, then run `sparkube up`.",
            detail=log_tail or None,
        )
    if facts.problems:
        raise NodeError(
            "preparation finished but the node is not ready for kubeadm: "
            + "; ".join(facts.problems)
            + ".",
        )
    reporter.step(NODES, name, f"prepared (kubeadm {facts.kubeadm_version})")
    return facts


async def _prepare_log_tail(fleet: SshFleet, name: str, lines: int = 20) -> str:
    try:
        result = await fleet.run(
            name,
            f'sudo tail -n {lines} "${{SPARKUBE_NODE_ROOT:-}}"{PREPARE_LOG}',
            check=False,
            timeout=30,
        )
    except NodeError:
        return ""
    return tail(result.stdout, lines)


async def prepare_nodes(
    fleet: SshFleet,
    cluster: ClusterInfo,
    *,
    reporter: Reporter,
    timeout: float = 1200.0,
    interval: float = 2.0,
) -> dict[str, NodeFacts]:
    names = [n.name for n in _ordered(cluster)]
    out = await fleet.each(
        names,
        lambda n: _wait_prepared(fleet, n, timeout=timeout, interval=interval, reporter=reporter),
    )
    out.raise_for_failures("Node preparation")
    return out.values


def _ordered(cluster: ClusterInfo) -> list[Node]:
    cp = cluster.control_plane()
    return ([cp] if cp else []) + cluster.workers()


def summarize_nodes(facts: dict[str, NodeFacts]) -> str:
    versions = {f.kubeadm_version for f in facts.values() if f.kubeadm_version}
    cds = {f.containerd_version for f in facts.values() if f.containerd_version}
    extra = []
    if cds:
        extra.append("containerd " + "/".join(sorted(cds)))
    if versions:
        extra.append("kubelet " + "/".join(sorted(v.lstrip("v") for v in versions)))
    suffix = f" ({', '.join(extra)})" if extra else ""
    return f"{len(facts)}/{len(facts)} prepared{suffix}"


def run_nodes_phase(
    *,
    env: Environment,
    cluster: ClusterInfo,
    reporter: Reporter | None = None,
    settings: SshSettings | None = None,
    timeout: float = 1200.0,
    interval: float = 2.0,
) -> str:
    """The ``nodes`` phase; returns its one-line summary."""
    settings = settings or ssh_settings(env, cluster.name)
    reporter = reporter or NullReporter()

    async def go() -> dict[str, NodeFacts]:
        async with SshFleet(cluster.nodes, settings) as fleet:
            return await prepare_nodes(
                fleet, cluster, reporter=reporter, timeout=timeout, interval=interval
            )

    return summarize_nodes(asyncio.run(go()))


# ======================================================================= kubernetes

#: (kubeconfig, node name -> its IP addresses, timeout, reporter) -> summary
Readiness = Callable[[Path, Mapping[str, tuple[str, ...]], float, Reporter], str]


def api_readiness(
    kubeconfig: Path, nodes: Mapping[str, tuple[str, ...]], timeout: float, reporter: Reporter
) -> str:
    """Wait through the Kubernetes API (lightkube) until the nodes are Ready, approving
    their serving certificates for their own names and addresses."""
    from sparkube.kube.client import client_from_kubeconfig
    from sparkube.kube.wait import ReadinessReport, wait_cluster_ready

    seen: dict[str, bool] = {}
    names = list(nodes)

    def progress(report: ReadinessReport) -> None:
        for name in names:
            ready = name in report.ready
            if seen.get(name) != ready:
                seen[name] = ready
                reporter.step(KUBERNETES, name, "Ready" if ready else "waiting for Ready")

    client = client_from_kubeconfig(kubeconfig)
    report = wait_cluster_ready(
        client, names, timeout=timeout, addresses=nodes, on_progress=progress
    )
    return f"{len(report.ready)}/{len(names)} Ready"


@dataclass
class KubernetesOutcome:
    initialised: bool = False
    joined: list[str] = field(default_factory=list)
    already_joined: list[str] = field(default_factory=list)
    kubeconfig: Path | None = None
    ready: str = ""

    def summary(self, workers: int) -> str:
        cp = "control plane initialised" if self.initialised else "control plane already up"
        done = len(self.joined) + len(self.already_joined)
        parts = [cp, f"{done}/{workers} workers joined"]
        if self.ready:
            parts.append(self.ready)
        return ", ".join(parts)


INIT_WAIT = 900.0  # s: how long a resumed up waits for a kubeadm init still at work


@dataclass(frozen=True)
class JoinPublisher:
    """Where the self-join's parameter is kept (``sparkube.aws.joinparam``): ``due()``
    tells whether a new token is needed, ``publish(value)`` writes one (a secret)."""

    due: Callable[[], bool]
    publish: Callable[[str], None]


async def _init_state(fleet: SshFleet, node: str, reporter: Reporter) -> str:
    """The control plane's kubeadm state (kubeadm.init_state_command), once no init of an
    earlier, interrupted ``up`` is still running there."""
    deadline = time.monotonic() + INIT_WAIT
    waited = False
    while True:
        state = (await fleet.run(node, kubeadm.init_state_command())).stdout.strip()
        if state != kubeadm.INIT_RUNNING:
            return state
        if time.monotonic() > deadline:
            raise NodeError(
                f"A kubeadm init started by an earlier 'sparkube up' is still running on "
                f"{node} after {INIT_WAIT:.0f} s; wait for it to end, then run 'sparkube up' again."
            )
        if not waited:
            reporter.step(KUBERNETES, node, "waiting for the kubeadm init of an earlier up")
            waited = True
        await asyncio.sleep(5)


async def bootstrap_kubernetes(
    fleet: SshFleet,
    spec: ClusterSpec,
    env: Environment,
    cluster: ClusterInfo,
    *,
    reporter: Reporter,
    api_server: str | None = None,
    publisher: JoinPublisher | None = None,
) -> KubernetesOutcome:
    """Everything of the ``kubernetes`` phase that goes over SSH."""
    cp = cluster.control_plane()
    if cp is None:
        raise NodeError(f"Cluster {cluster.name} has no control-plane node; run `sparkube up`.")
    outcome = KubernetesOutcome()

    state = await _init_state(fleet, cp.name, reporter)
    if state != kubeadm.INITIALISED:
        if state == kubeadm.INIT_PARTIAL:
            reporter.step(KUBERNETES, cp.name, "an earlier kubeadm init stopped midway: reset")
            await fleet.run(cp.name, kubeadm.reset_command(), timeout=300, what="kubeadm reset")
        reporter.step(KUBERNETES, cp.name, "kubeadm init")
        version = (await fleet.run(cp.name, "kubeadm version -o short")).stdout.strip()
        config = kubeadm.render_init_config(spec, cp, kubernetes_version=version)
        await fleet.write_file(cp.name, kubeadm.INIT_CONFIG_PATH, config, mode="0600")
        await fleet.run(cp.name, kubeadm.init_command(), timeout=900, what="kubeadm init")
        outcome.initialised = True
    else:
        reporter.step(KUBERNETES, cp.name, "control plane already initialised")
    await fleet.run(cp.name, kubeadm.init_done_command(), what="noting kubeadm init done")

    reporter.step(KUBERNETES, cp.name, f"applying {spec.cni}")
    await fleet.run(
        cp.name,
        kubeadm.apply_manifest_command(),
        input=render_cni_manifest(spec),
        timeout=300,
        what=f"applying the {spec.cni} manifest",
    )

    admin = (
        await fleet.run(cp.name, kubeadm.read_admin_conf_command(), what="reading admin.conf")
    ).stdout
    server = api_server or server_url(cp.public_ip or cp.public_dns or cp.address)
    outcome.kubeconfig = save_kubeconfig(
        env, cluster.name, rewrite_admin_kubeconfig(admin, cluster=cluster.name, server=server)
    )
    reporter.step(KUBERNETES, cp.name, "kubeconfig saved")

    workers = [w.name for w in cluster.workers()]
    token_lock = asyncio.Lock()
    join_holder: list[kubeadm.JoinCommand] = []

    async def join_command() -> kubeadm.JoinCommand:
        async with token_lock:
            if not join_holder:
                result = await fleet.run(
                    cp.name, kubeadm.token_command(), what="creating a join token"
                )
                join_holder.append(kubeadm.parse_join_command(result.stdout))
            return join_holder[0]

    async def join(name: str) -> bool:
        state = (await fleet.run(name, kubeadm.is_joined_command())).stdout.strip()
        if state == "joined":
            reporter.step(KUBERNETES, name, "already joined")
            return False
        command = await join_command()
        reporter.step(KUBERNETES, name, "kubeadm join")
        await fleet.write_file(
            name,
            kubeadm.JOIN_CONFIG_PATH,
            kubeadm.render_join_config(command, fleet.node(name)),
            mode="0600",
        )
        try:
            await fleet.run(name, kubeadm.join_command(), timeout=600, what="kubeadm join")
        finally:
            await fleet.run(
                name,
                f"sudo rm -f {kubeadm.R}{kubeadm.JOIN_CONFIG_PATH}",
                check=False,
                timeout=30,
            )
        reporter.step(KUBERNETES, name, "joined")
        return True

    result = await fleet.each(workers, join)
    for name, did in result.values.items():
        (outcome.joined if did else outcome.already_joined).append(name)
    if publisher is not None and publisher.due():
        reporter.step(KUBERNETES, cp.name, "a bootstrap token for workers that join by themselves")
        expires = datetime.now(UTC) + selfjoin.TOKEN_TTL
        made = await fleet.run(cp.name, kubeadm.self_join_token_command(), what="a join token")
        command = kubeadm.parse_join_command(made.stdout)
        publisher.publish(selfjoin.parameter_value(command, expires))
    result.raise_for_failures("Joining the cluster")
    return outcome


def run_kubernetes_phase(
    *,
    spec: ClusterSpec,
    env: Environment,
    cluster: ClusterInfo,
    reporter: Reporter | None = None,
    settings: SshSettings | None = None,
    api_server: str | None = None,
    readiness: Readiness | None = api_readiness,
    ready_timeout: float = 600.0,
    publisher: JoinPublisher | None = None,
) -> str:
    """The ``kubernetes`` phase; returns its one-line summary.

    ``api_server`` overrides the server written into the saved kubeconfig (a tunnel,
    a test control plane); ``readiness=None`` skips the API wait.
    """
    settings = settings or ssh_settings(env, cluster.name)
    reporter = reporter or NullReporter()

    async def go() -> KubernetesOutcome:
        async with SshFleet(cluster.nodes, settings) as fleet:
            return await bootstrap_kubernetes(
                fleet,
                spec,
                env,
                cluster,
                reporter=reporter,
                api_server=api_server,
                publisher=publisher,
            )

    outcome = asyncio.run(go())
    if readiness is not None and outcome.kubeconfig is not None:
        nodes = {
            n.name: tuple(ip for ip in (n.private_ip, n.public_ip) if ip) for n in _ordered(cluster)
        }
        outcome.ready = readiness(outcome.kubeconfig, nodes, ready_timeout, reporter)
    return outcome.summary(len(cluster.workers()))


def node_names(nodes: Sequence[Node]) -> list[str]:
    return [n.name for n in nodes]


# ======================================================================= registration

#: Overrides the API server written into the saved kubeconfig (tunnel, test plane).
API_SERVER_VAR = "SPARKUBE_API_SERVER"


def _register() -> None:
    try:
        from sparkube.phases import Phase, PhaseContext, register
    except ModuleNotFoundError:  # pragma: no cover - the pipeline module is optional here
        return

    def nodes(ctx: PhaseContext) -> str:
        return run_nodes_phase(env=ctx.env, cluster=ctx.cluster, reporter=ctx.reporter)

    def kubernetes(ctx: PhaseContext) -> str:
        return run_kubernetes_phase(
            spec=ctx.spec,
            env=ctx.env,
            cluster=ctx.cluster,
            reporter=ctx.reporter,
            api_server=ctx.env.environ.get(API_SERVER_VAR) or None,
            publisher=JoinPublisher(
                due=lambda: ctx.provider.join_parameter_due(ctx.spec.name),
                publish=lambda value: ctx.provider.publish_join(ctx.spec, value),
            ),
        )

    register(Phase(NODES, "SSH to every node, boot-time preparation checked", nodes))
    register(Phase(KUBERNETES, "kubeadm init, Flannel, workers join, nodes Ready", kubernetes))


_register()
