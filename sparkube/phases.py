"""The ``up`` and ``down`` pipelines: named phases, ``--until``, resume, timing.

``up`` runs the registered phases in their fixed order (``infra``, ``nodes``,
``kubernetes``, ``addons``). Every phase is idempotent: it looks at what exists and does
only what is missing, so running ``up`` again after a failure or Ctrl-C resumes. Only
phases that are implemented are registered, so ``--until`` offers exactly those.

Adding a phase is two lines in the module that implements it::

    from sparkube.phases import Phase, register
    register(Phase("nodes", "SSH, boot-time preparation checked",
                   lambda ctx: run_nodes_phase(env=ctx.env, cluster=ctx.cluster,
                                               reporter=ctx.reporter)))

and one entry in :data:`PHASE_MODULES` (imported when present).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sparkube.aws.provider import AwsProvider
from sparkube.env import Environment
from sparkube.errors import UsageError, describe
from sparkube.model import ClusterInfo
from sparkube.progress import NullReporter, Reporter
from sparkube.spec import ClusterSpec

log = logging.getLogger(__name__)

#: Every phase of DESIGN.md, in pipeline order (implemented or not).
PHASE_ORDER = ("infra", "nodes", "kubernetes", "addons")
#: Modules that register phases when imported (skipped while they do not exist).
PHASE_MODULES = ("sparkube.nodes.phase", "sparkube.kube.phase", "sparkube.spark.phase")
#: ``name=host[:port],...``: reach nodes at other addresses (tests, bastions).
ADDRESSES_VAR = "SPARKUBE_NODE_ADDRESSES"


@dataclass
class PhaseContext:
    """What a phase gets. ``cluster`` is what ``infra`` found or made, with the address
    overrides applied; phases after ``infra`` read it, never AWS directly."""

    spec: ClusterSpec
    env: Environment
    reporter: Reporter
    provider: AwsProvider
    address_overrides: Mapping[str, str] = field(default_factory=dict)
    #: Set by ``infra`` when it launched instances: the later phases are no longer done
    #: for every node, whatever was recorded before.
    nodes_changed: bool = False
    _cluster: ClusterInfo | None = None

    @property
    def cluster(self) -> ClusterInfo:
        if self._cluster is None:
            self._cluster = self.provider.describe(self.spec.name)
        return self._cluster.with_address_overrides(self.address_overrides)

    def set_cluster(self, info: ClusterInfo) -> None:
        self._cluster = info

    def record_done(self, phase: str) -> None:
        """Record ``phase`` as done (``status`` shows it) unless a later one already is.

        ``infra`` is never recorded (AWS shows whether it is complete); it only clears
        what was recorded for the previous nodes when it launched new ones.
        """
        info = self._cluster or self.provider.describe(self.spec.name)
        recorded = info.done_phase
        if phase == PHASE_ORDER[0]:
            if self.nodes_changed and recorded not in (None, phase):
                self._cluster = self.provider.record_done(info, phase)
            self.nodes_changed = False
            return
        if recorded in PHASE_ORDER and PHASE_ORDER.index(recorded) >= PHASE_ORDER.index(phase):
            return
        self._cluster = self.provider.record_done(info, phase)


@dataclass(frozen=True)
class Phase:
    name: str
    description: str
    #: Does the work (idempotently) and returns a one-line summary.
    run: Callable[[PhaseContext], str]


@dataclass(frozen=True)
class PhaseResult:
    name: str
    summary: str
    seconds: float


_REGISTRY: dict[str, Phase] = {}
_loaded = False


def register(phase: Phase) -> None:
    if phase.name not in PHASE_ORDER:
        raise ValueError(f"unknown phase {phase.name!r}; add it to PHASE_ORDER")
    _REGISTRY[phase.name] = phase


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in PHASE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
            log.debug("phase module %s not present", module)


def available() -> list[Phase]:
    """The registered phases, in pipeline order."""
    _load()
    return [_REGISTRY[name] for name in PHASE_ORDER if name in _REGISTRY]


def select(until: str | None) -> list[Phase]:
    """The phases ``up --until UNTIL`` runs."""
    phases = available()
    if until is None:
        return phases
    names = [p.name for p in phases]
    if until in names:
        return phases[: names.index(until) + 1]
    if until in PHASE_ORDER:
        raise UsageError(
            f"Phase '{until}' is not available in this version of sparkube; --until accepts "
            f"{', '.join(names)}."
        )
    raise UsageError(f"Unknown phase '{until}'; --until accepts {', '.join(names)}.")


def parse_addresses(text: str) -> dict[str, str]:
    """``control-plane=10.200.0.2:22,worker-1=10.200.0.3`` -> mapping."""
    out: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        node, sep, address = part.partition("=")
        if not sep or not node.strip() or not address.strip():
            raise UsageError(f"{ADDRESSES_VAR}: {part!r} is not NODE=HOST[:PORT].")
        out[node.strip()] = address.strip()
    return out


def run_up(ctx: PhaseContext, *, until: str | None = None) -> list[PhaseResult]:
    """Run the phases up to ``until``; each reports start, steps, end and duration."""
    results: list[PhaseResult] = []
    for phase in select(until):
        ctx.reporter.phase_started(phase.name, phase.description)
        start = time.monotonic()
        try:
            summary = phase.run(ctx)
        except BaseException as exc:
            ctx.reporter.phase_failed(phase.name, describe(exc).message)
            raise
        ctx.record_done(phase.name)
        seconds = time.monotonic() - start
        ctx.reporter.phase_done(phase.name, summary, seconds)
        results.append(PhaseResult(phase.name, summary, seconds))
    return results


# --- the infra phase ------------------------------------------------------------------


def prepare_script(spec: ClusterSpec) -> str | None:
    """The node preparation script (``sparkube.nodes.prepare``) when it exists.

    The TTL is left out of it: the user-data wrapper installs it from the cluster's
    absolute expiry time (see ``sparkube.aws.userdata`` and ``sparkube.nodes.ttl``).
    """
    try:
        from sparkube.nodes import prepare
    except ModuleNotFoundError:
        return None
    render: Callable[[ClusterSpec], str] | None = getattr(prepare, "render_prepare_script", None)
    if render is None:
        return None
    return render(spec.model_copy(update={"ttl": None}))


def _infra(ctx: PhaseContext) -> str:
    # Settings the user left out are the existing cluster's (a plain ``up`` resumes).
    ctx.spec = ctx.provider.settle(ctx.spec)
    before = {n.instance_id for n in ctx.provider.existing(ctx.spec).nodes}
    info = ctx.provider.ensure_infra(
        ctx.spec, reporter=ctx.reporter, prepare_script=prepare_script(ctx.spec)
    )
    ctx.set_cluster(info)
    ctx.nodes_changed = any(n.instance_id not in before for n in info.nodes)
    running = sum(1 for n in info.nodes if n.state == "running")
    return f"key pair, security group, role, bucket, {running}/{len(info.nodes)} running"


register(
    Phase(
        "infra",
        "key pair, security group, IAM role, S3 bucket, instances",
        _infra,
    )
)


# --- down -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DownResult:
    found: bool
    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    remaining: tuple[str, ...]
    seconds: float


def run_down(
    provider: AwsProvider,
    cluster: str,
    *,
    keep_data: bool,
    reporter: Reporter | None = None,
    existing: ClusterInfo | None = None,
) -> DownResult:
    """Delete everything tagged with the cluster, then list what remains."""
    from sparkube.aws import discovery

    reporter = reporter or NullReporter()
    start = time.monotonic()
    existing = existing or provider.describe(cluster)
    local = provider.env.cluster_dir(cluster)
    if discovery.is_empty(existing) and not local.exists():
        return DownResult(False, (), (), (), 0.0)
    reporter.phase_started("down", f"deleting cluster {cluster}")
    try:
        result, remaining = provider.teardown(
            cluster, keep_data=keep_data, reporter=reporter, info=existing
        )
    except BaseException as exc:
        reporter.phase_failed("down", describe(exc).message)
        raise
    left = discovery.leftovers(remaining, keep_data=keep_data)
    seconds = time.monotonic() - start
    if left:
        reporter.phase_failed("down", f"{len(left)} resources remain")
    else:
        reporter.phase_done("down", "nothing tagged remains", seconds)
    return DownResult(True, tuple(result.deleted), tuple(result.kept), tuple(left), seconds)


def default_overrides(env: Environment) -> dict[str, str]:
    return parse_addresses(env.environ.get(ADDRESSES_VAR, ""))


__all__ = [
    "PHASE_ORDER",
    "DownResult",
    "Phase",
    "PhaseContext",
    "PhaseResult",
    "available",
    "register",
    "run_down",
    "run_up",
    "select",
]
