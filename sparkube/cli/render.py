"""Rendering shared by the cluster commands (``plan``, ``up``, ``status``, ``ls``): prices,
the plan's header, the nodes table, paths under the home folder, and the JSON of a
view (:mod:`sparkube.cli.views`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from sparkube.cli.progress import clock
from sparkube.cli.ui import UI
from sparkube.cli.views import hours_up, to_json
from sparkube.env import Environment
from sparkube.model import Node

if TYPE_CHECKING:  # imported where used: '--help' and '--version' load no AWS SDK
    from sparkube.aws.pricing import CostEstimate
    from sparkube.aws.provider import Plan
    from sparkube.cost.collect import ClusterCost


def print_json(ui: UI, view: Any) -> None:
    """``--output json``: ``view`` (a view of :mod:`sparkube.cli.views`, or a list of
    them) on stdout."""
    ui.out.print_json(to_json(view))


def money(value: float | None) -> str:
    """``$0.0416/h``, ``$1.23/h``, or ``unknown``."""
    return "unknown" if value is None else f"${value:,.4f}/h" if value < 1 else f"${value:,.2f}/h"


def total(cost: CostEstimate) -> str:
    """The full hourly price, ``at least`` when a part is unknown (see ``cost.unknown``)."""
    return ("" if cost.exact else "at least ") + money(cost.at_least_usd_per_hour)


def at_max(cost: CostEstimate, minimum: int, maximum: int) -> str:
    """`` · up to $0.2496/h at 6 workers (the group's maximum)`` when the worker group
    may grow, else nothing."""
    if maximum <= minimum:
        return ""
    return (
        f" · up to {total(cost.with_workers(maximum))} at {maximum} workers (the group's maximum)"
    )


def max_line(cost: CostEstimate, minimum: int, maximum: int) -> str:
    """The plan's line for the price with the worker group at its maximum."""
    top = cost.with_workers(maximum)
    if maximum <= minimum:
        return f"At most the same: the worker group's maximum is its minimum ({minimum})."
    return f"At the maximum of {maximum} workers: {total(top)} = {cost_parts(top)}."


def cost_parts(cost: CostEstimate) -> str:
    """``instances $0.1664 + volumes $0.0175 (4 × 40 GiB gp3) + public IPv4 $0.0200 (4 ×
    $0.005)``: what the hourly price is made of."""
    from sparkube.aws.pricing import IPV4_USD_PER_HOUR

    def amount(value: float | None) -> str:
        return money(value).removesuffix("/h")

    parts = [f"instances {amount(cost.instances_usd_per_hour)}"]
    if cost.volume_gb:
        vtype = cost.volume.volume_type if cost.volume else "EBS"
        parts.append(
            f"volumes {amount(cost.volumes_usd_per_hour)} "
            f"({cost.nodes} × {cost.volume_gb} GiB {vtype})"
        )
    parts.append(
        f"public IPv4 {amount(cost.addresses_usd_per_hour)} "
        + (f"({cost.addresses} × ${IPV4_USD_PER_HOUR:g})" if cost.addresses else "(none)")
    )
    return " + ".join(parts)


def cost_notes(ui: UI, cost: CostEstimate) -> None:
    """On stdout, one line per reason the price may be more than shown."""
    for reason in cost.unknown:
        ui.out.print(
            f"Not in this price: {reason}.", markup=False, soft_wrap=not ui.out.is_terminal
        )


def home_path(env: Environment, path: Path) -> str:
    """``path`` with the user's home shown as ``~``."""
    home = env.environ.get("HOME")
    if home and path.is_relative_to(home):
        return "~/" + str(path.relative_to(home))
    return str(path)


def plan_header(ui: UI, plan: Plan, *, notes: bool = True) -> None:
    """Two lines on stderr (``plan`` and ``up``): the cluster's shape, cost and access;
    with ``notes``, a line for each reason the price may be more (``up``)."""
    cp, workers = plan.instances
    wrap = ui.err.is_terminal  # word-wrap on a terminal; never break lines in logs
    ui.err.print(
        f"Cluster [bold]{escape(plan.cluster)}[/bold] · {plan.region} · 1 × {cp.instance_type} "
        f"control plane + {workers.count} × {workers.instance_type} workers"
        + (
            f" (up to {workers.max_count})"
            if workers.max_count is not None and workers.max_count > workers.count
            else ""
        )
        + (
            f" (spot above {workers.on_demand_count} on-demand)"
            if workers.spot and workers.on_demand_count
            else (" (spot)" if workers.spot else "")
        ),
        soft_wrap=not wrap,
    )
    ui.err.print(
        f"Estimated cost: {total(plan.cost)} = {cost_parts(plan.cost)} ({plan.cost.market}, "
        f"{plan.cost.sources})"
        + at_max(plan.cost, plan.spec.workers, plan.spec.max_count)
        + f" · SSH/API open to {', '.join(plan.allow_cidrs)}",
        soft_wrap=not wrap,
        markup=False,
    )
    for reason in plan.cost.unknown if notes else ():
        ui.err.print(f"Not in this price: {reason}.", soft_wrap=not wrap, markup=False)


def nodes_table(ui: UI, nodes: tuple[Node, ...], costs: ClusterCost | None, now: datetime) -> None:
    """One row per node (the role is in the name; private IPs are in ``-o json``)."""
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("node", no_wrap=True)
    for c in ("type", "state"):
        table.add_column(c)
    table.add_column("public IP", no_wrap=True)
    table.add_column("uptime")
    if costs is not None:
        table.add_column("$/h")
        table.add_column("$ so far")
    for node in nodes:
        row = [
            node.name,
            node.instance_type + (" spot" if node.spot else ""),
            node.state,
            node.public_ip or "-",
            clock(hours_up(node, now) * 3600),
        ]
        if costs is not None:
            cost = costs.nodes.get(node.instance_id)
            per_hour = cost.usd_per_hour if cost else None
            so_far = cost.usd_so_far if cost else None
            row += [
                money(per_hour).removesuffix("/h"),
                "?" if so_far is None else f"${so_far:.2f}",
            ]
        table.add_row(*[escape(str(c)) for c in row])
    ui.out.print(table)
