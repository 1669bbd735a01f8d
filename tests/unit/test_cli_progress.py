"""The CLI's progress display: a live line per node on a terminal, plain lines in logs."""

from __future__ import annotations

import io
import re

from rich.console import Console

from sparkube.cli.progress import RichReporter, clock


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _terminal(width: int = 100, height: int = 40) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, height=height, color_system=None)
    return console, out


def _lines(out: io.StringIO) -> list[str]:
    """What stays on the terminal, cursor movements and erased live frames aside."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    return [line.split("\r")[-1].rstrip() for line in text.splitlines()]


def _frame(reporter: RichReporter, width: int = 100) -> list[str]:
    """What the live block shows right now."""
    console, out = _terminal(width)
    console.print(reporter._render())
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_clock() -> None:
    assert [clock(s) for s in (0, 41, 725, 3723)] == ["0:00", "0:41", "12:05", "1:02:03"]


def test_a_live_line_per_node_with_what_it_does_and_for_how_long() -> None:
    console, out = _terminal()
    now = Clock()
    reporter = RichReporter(console, clock_fn=now)
    assert reporter.live_mode
    reporter.phase_started("nodes", "SSH to every node")
    for name in ("control-plane", "worker-1", "worker-2"):
        reporter.step("nodes", name, "connecting")
    now.t += 5
    reporter.step("nodes", "worker-1", "waiting for boot-time preparation")
    now.t += 3
    frame = _frame(reporter)
    assert frame[0].split()[1:] == ["nodes", "SSH", "to", "every", "node", "0:08"]
    assert frame[1].split() == ["control-plane", "connecting", "0:08"]
    assert frame[2].split() == ["worker-1", "waiting", "for", "boot-time", "preparation", "0:03"]
    assert frame[3].split() == ["worker-2", "connecting", "0:08"]
    # every clock in one column
    assert len({len(line) for line in frame}) == 1
    reporter.phase_done("nodes", "3/3 prepared", 8.0)
    reporter.phase_started("kubernetes", "kubeadm")
    reporter.phase_done("kubernetes", "2/2 workers joined", 75.0)
    done = [line for line in _lines(out) if line.startswith("✓")]
    assert done[0].split() == ["✓", "nodes", "3/3", "prepared", "0:08"]
    assert done[1].split() == ["✓", "kubernetes", "2/2", "workers", "joined", "1:15"]
    assert len(done[0]) == len(done[1])  # durations line up


def test_many_nodes_are_grouped_by_what_they_do() -> None:
    console, _ = _terminal(height=12)
    reporter = RichReporter(console, clock_fn=Clock())
    reporter.phase_started("nodes", "SSH to every node")
    for i in range(1, 41):
        reporter.step("nodes", f"worker-{i}", "joined" if i % 4 else "kubeadm join")
    frame = _frame(reporter)
    assert len(frame) == 3
    assert "30 nodes" in frame[1] and "joined (worker-1, worker-2, worker-3 …)" in frame[1]
    assert "10 nodes" in frame[2] and "kubeadm join (worker-4, worker-8" in frame[2]


def test_failure_turns_the_phase_line_red_and_keeps_each_nodes_last_step() -> None:
    console, out = _terminal()
    now = Clock()
    reporter = RichReporter(console, clock_fn=now)
    reporter.phase_started("kubernetes", "kubeadm")
    reporter.step("kubernetes", "worker-1", "joined")
    reporter.step("kubernetes", "worker-2", "kubeadm join")
    now.t += 12
    reporter.phase_failed("kubernetes", "Joining the cluster failed on worker-2: ...")
    lines = [line.split() for line in _lines(out) if line.strip()]
    failed = lines.index(["✗", "kubernetes", "failed", "0:12"])
    assert lines[failed + 1][:2] == ["worker-1", "joined"]
    assert lines[failed + 2][:3] == ["worker-2", "kubeadm", "join"]
    assert "Joining the cluster" not in out.getvalue()  # the CLI prints the error once


def test_without_a_terminal_every_change_is_one_plain_line() -> None:
    out = io.StringIO()
    now = Clock()
    reporter = RichReporter(Console(file=out, width=80), clock_fn=now)
    assert not reporter.live_mode
    reporter.phase_started("nodes", "SSH to every node, boot-time preparation checked")
    reporter.step("nodes", "worker-1", "connecting")
    now.t += 2
    reporter.step("nodes", "worker-1", "connecting")  # unchanged: not repeated
    reporter.step("nodes", "worker-1", "prepared (kubeadm v1.36.4)")
    reporter.phase_done("nodes", "1/1 prepared (containerd 2.2.1, kubelet 1.36.4) " * 2, 2.0)
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["0:00", "worker-1", "connecting"],
        ["0:02", "worker-1", "prepared"],
    ]
    assert len(lines) == 4  # long summaries are not wrapped in logs
    assert lines[3].startswith("✓ nodes") and lines[3].endswith("0:02")
    assert "\x1b[" not in out.getvalue()
