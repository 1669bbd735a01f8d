"""The TTL on a node: the user-data's install block and the real check script, run by a
shell against a fake clock and fake systemctl/shutdown/wall/sleep on PATH, under
``SPARKUBE_NODE_ROOT``; shellcheck; ``systemd-analyze verify`` of the unit files."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sparkube.aws import userdata
from sparkube.nodes import ttl

EXPIRES = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
T = int(EXPIRES.timestamp())

# Each fake appends "name args" to $FAKE_CALLS; `date +%s` reads $FAKE_CLOCK and
# `sleep N` advances it (and, when $FAKE_MOVE_TO is set, rewrites the expiry file as
# an `up` extending the TTL would meanwhile).
FAKES = {
    "date": """#!/bin/sh
echo "date $*" >> "$FAKE_CALLS"
if [ "$1" = "+%s" ]; then cat "$FAKE_CLOCK"; else exec /bin/date "$@"; fi
""",
    "sleep": """#!/bin/sh
echo "sleep $*" >> "$FAKE_CALLS"
echo $(( $(cat "$FAKE_CLOCK") + $1 )) > "$FAKE_CLOCK"
if [ -n "${FAKE_MOVE_TO:-}" ]; then echo "$FAKE_MOVE_TO" > "$FAKE_EXPIRES"; fi
""",
    "systemctl": """#!/bin/sh
echo "systemctl $*" >> "$FAKE_CALLS"
exit "${FAKE_SYSTEMCTL_STATUS:-0}"
""",
    "shutdown": """#!/bin/sh
echo "shutdown $*" >> "$FAKE_CALLS"
""",
    "wall": """#!/bin/sh
echo "wall $*" >> "$FAKE_CALLS"
""",
}


def _shells() -> list[str]:
    return [s for s in ("sh", "bash", "dash") if shutil.which(s)]


@dataclass
class Node:
    root: Path
    env: dict[str, str]
    calls_file: Path
    clock_file: Path

    @property
    def expires_file(self) -> Path:
        return self.root / ttl.EXPIRES_FILE.lstrip("/")

    @property
    def check_script(self) -> Path:
        return self.root / ttl.CHECK_SCRIPT.lstrip("/")

    def unit(self, name: str) -> Path:
        return self.root / ttl.UNIT_DIR.lstrip("/") / name

    def set_clock(self, epoch: int) -> None:
        self.clock_file.write_text(f"{epoch}\n")

    def calls(self) -> list[str]:
        if not self.calls_file.exists():
            return []
        return [c for c in self.calls_file.read_text().splitlines() if not c.startswith("date")]

    def run(self, shell: str, script: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        self.calls_file.unlink(missing_ok=True)
        args = [shell, str(script)] if isinstance(script, Path) else [shell, "-c", script]
        return subprocess.run(
            args, env={**self.env, **env}, capture_output=True, text=True, timeout=30
        )

    def check(self, shell: str = "sh", **env: str) -> subprocess.CompletedProcess[str]:
        """The installed check script, as the service runs it (``/bin/sh path``)."""
        return self.run(shell, self.check_script, **env)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    """A node root where the user-data's TTL block has run (systemctl faked)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    root = tmp_path / "root"
    root.mkdir()
    n = Node(root, {}, tmp_path / "calls", tmp_path / "clock")
    n.env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SPARKUBE_NODE_ROOT": str(root),
        "FAKE_CALLS": str(n.calls_file),
        "FAKE_CLOCK": str(n.clock_file),
        "FAKE_EXPIRES": str(n.expires_file),
    }
    n.set_clock(T - 4 * 3600)
    result = n.run("bash", userdata.ttl_block(EXPIRES))
    assert result.returncode == 0, result.stderr
    assert n.calls() == ["systemctl daemon-reload", f"systemctl enable --now {ttl.TIMER}"]
    return n


# --- what the user-data installs ------------------------------------------------------


def test_user_data_writes_the_expiry_the_check_and_an_enabled_timer(node: Node) -> None:
    assert node.expires_file.read_text() == f"{T}\n"
    assert node.check_script.read_text() == ttl.script_text("ttl-check.sh")
    assert os.access(node.check_script, os.X_OK)
    service = node.unit(ttl.SERVICE).read_text()
    timer = node.unit(ttl.TIMER).read_text()
    assert "Type=oneshot" in service
    assert f"ExecStart=/bin/sh {ttl.CHECK_SCRIPT}" in service
    # at every boot (reboot, stop/start) and every minute after, precise to seconds
    for line in ("OnBootSec=1min", "OnUnitActiveSec=1min", "AccuracySec=5s"):
        assert line in timer.splitlines()
    assert f"Unit={ttl.SERVICE}" in timer
    assert "WantedBy=timers.target" in timer
    # the timer is the only deadline: no one-shot shutdown while systemd is there
    assert not [c for c in node.calls() if c.startswith("shutdown")]


def test_the_user_data_falls_back_to_a_one_shot_shutdown_without_systemd(node: Node) -> None:
    node.set_clock(T - 90 * 60)
    result = node.run("bash", userdata.ttl_block(EXPIRES), FAKE_SYSTEMCTL_STATUS="1")
    assert result.returncode == 0
    assert "cannot enable sparkube-ttl.timer" in result.stderr
    assert node.calls()[-1] == "shutdown -h +90 sparkube: cluster TTL reached"


def test_an_expiry_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        ttl.install_block(datetime(2026, 11, 25, 16, 0))


# --- the check, run by the shells a node has ------------------------------------------


@pytest.mark.parametrize("shell", _shells())
def test_before_the_expiry_it_does_nothing(node: Node, shell: str) -> None:
    for left in (4 * 3600, 61):
        node.set_clock(T - left)
        result = node.check(shell)
        assert result.returncode == 0, result.stderr
        assert node.calls() == []
        assert result.stdout == result.stderr == ""


@pytest.mark.parametrize("shell", _shells())
@pytest.mark.parametrize("late", [0, 1, 3600, 40 * 86400])
def test_at_and_after_the_expiry_it_powers_off(node: Node, shell: str, late: int) -> None:
    node.set_clock(T + late)
    result = node.check(shell)
    assert result.returncode == 0, result.stderr
    assert node.calls() == ["systemctl poweroff"]
    assert "sparkube-ttl: cluster TTL reached" in result.stdout


@pytest.mark.parametrize("shell", _shells())
def test_in_the_last_minute_it_warns_waits_and_powers_off(node: Node, shell: str) -> None:
    node.set_clock(T - 42)
    result = node.check(shell)
    assert result.returncode == 0, result.stderr
    calls = node.calls()
    assert calls[0].startswith("wall sparkube: the cluster TTL ends in 42s")
    assert calls[1:] == ["sleep 42", "systemctl poweroff"]


def test_a_deadline_moved_during_the_last_minute_is_kept(node: Node) -> None:
    node.set_clock(T - 30)
    result = node.check(FAKE_MOVE_TO=str(T + 3600))
    assert node.calls()[-1] == "sleep 30"
    assert f"expiry moved to {T + 3600}: not powering off" in result.stdout


def test_set_expiry_command_moves_the_deadline(node: Node) -> None:
    node.set_clock(T + 5)
    later = EXPIRES + timedelta(hours=2)
    assert node.run("sh", ttl.set_expiry_command(later)).returncode == 0
    assert node.expires_file.read_text() == f"{int(later.timestamp())}\n"
    assert not list(node.expires_file.parent.glob("*.tmp"))
    assert node.check().returncode == 0
    assert node.calls() == []
    node.set_clock(int(later.timestamp()))
    node.check()
    assert node.calls() == ["systemctl poweroff"]


def test_when_systemctl_fails_it_uses_shutdown(node: Node) -> None:
    node.set_clock(T + 60)
    node.check(FAKE_SYSTEMCTL_STATUS="1")
    assert node.calls() == ["systemctl poweroff", "shutdown -h now sparkube: cluster TTL reached"]


def test_surrounding_blanks_are_tolerated(node: Node) -> None:
    node.expires_file.write_text(f"  {T}\r\n\n")
    node.set_clock(T + 1)
    node.check()
    assert node.calls() == ["systemctl poweroff"]


@pytest.mark.parametrize("shell", _shells())
def test_a_missing_expiry_file_does_nothing_and_says_why(node: Node, shell: str) -> None:
    node.expires_file.unlink()
    node.set_clock(T + 3600)
    result = node.check(shell)
    assert result.returncode == 0
    assert node.calls() == []
    assert f"no expiry file {node.expires_file}: nothing to do" in result.stdout


@pytest.mark.parametrize("shell", _shells())
@pytest.mark.parametrize(
    "content",
    ["", "\n", "soon", "2026-11-25T16:00:00Z", "-5", "1795622400.5", "0123", "1e9", "9" * 13],
)
def test_a_malformed_expiry_does_nothing_and_says_why(node: Node, shell: str, content: str) -> None:
    node.expires_file.write_text(content)
    node.set_clock(T + 3600)
    result = node.check(shell)
    assert result.returncode == 0, result.stderr
    assert node.calls() == []
    assert "sparkube-ttl: malformed expiry" in result.stdout
    assert "nothing to do" in result.stdout


# --- static checks --------------------------------------------------------------------


def test_the_check_script_passes_shellcheck_as_posix_sh(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    script = tmp_path / "ttl-check.sh"
    script.write_text(ttl.script_text("ttl-check.sh"))
    result = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_user_data_ttl_block_passes_shellcheck(tmp_path: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    script = tmp_path / "user-data"
    script.write_text(userdata.render(userdata.MINIMAL_PREPARE, expires_at=EXPIRES))
    result = subprocess.run(
        ["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_the_units_pass_systemd_analyze_verify(node: Node) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    units = [str(node.unit(ttl.TIMER)), str(node.unit(ttl.SERVICE))]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify only warns (exit 0) about bad values and unknown keys: read what it says
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "sparkube-ttl" in line or "ttl-check" in line
    ]
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours == []
