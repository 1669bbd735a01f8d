"""The cluster TTL on a node: an expiry file, a check script and a systemd timer.

The EC2 user-data (``sparkube.aws.userdata``) runs :func:`install_block` first, as root,
at the instance's first boot. It writes the cluster's absolute expiry time (UTC seconds
since the epoch) to :data:`EXPIRES_FILE`, installs ``scripts/ttl-check.sh`` and the
``sparkube-ttl`` service and timer, and enables the timer. The timer runs the check a
minute after every boot and every minute after that; once the expiry has passed the
check powers the node off, and ``InstanceInitiatedShutdownBehavior=terminate`` turns
that into a termination. Unlike a scheduled ``shutdown -h +N``, this survives a reboot
and a stop/start (which ``up`` does for stopped nodes).

The expiry is absolute, so workers added later expire with the rest (their user-data
gets the existing nodes' expiry). Moving the deadline of a running cluster is rewriting
the file on every node (:func:`set_expiry_command`): the next check reads it.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from sparkube.nodes.prepare import script_text

#: Paths on a node (prefixed by ``$SPARKUBE_NODE_ROOT``, empty on real nodes).
EXPIRES_FILE = "/etc/sparkube/expires-at"
CHECK_SCRIPT = "/usr/local/lib/sparkube/ttl-check.sh"
UNIT_DIR = "/etc/systemd/system"
SERVICE = "sparkube-ttl.service"
TIMER = "sparkube-ttl.timer"
#: Packaged file (under ``sparkube/nodes/scripts``) -> where it goes on a node.
FILES: dict[str, str] = {
    "ttl-check.sh": CHECK_SCRIPT,
    SERVICE: f"{UNIT_DIR}/{SERVICE}",
    TIMER: f"{UNIT_DIR}/{TIMER}",
}
_DELIMITER = "SPARKUBE_TTL_FILE_END"
_R = '"${SPARKUBE_NODE_ROOT:-}"'


def epoch(expires_at: datetime) -> int:
    """``expires_at`` as the file holds it (UTC seconds since the epoch)."""
    if expires_at.tzinfo is None:
        raise ValueError("the expiry time must carry a time zone")
    return int(expires_at.timestamp())


def set_expiry_command(expires_at: datetime) -> str:
    """A shell command (run as root) that writes the expiry file atomically.

    The check reads the file at each run, so this moves the deadline of a node that
    has the timer; ``install_block`` uses it at first boot.
    """
    path = _R + shlex.quote(EXPIRES_FILE)
    return (
        f"mkdir -p {_R}{shlex.quote(EXPIRES_FILE.rsplit('/', 1)[0])} && "
        f"echo {epoch(expires_at)} > {path}.tmp && mv -f {path}.tmp {path}"
    )


def install_block(expires_at: datetime) -> str:
    """Bash lines for the user-data: the expiry, the check, its timer (enabled).

    If systemd refuses the timer, the node falls back to a one-shot
    ``shutdown -h +N`` (lost on reboot, but better than no TTL at all).
    """
    utc = datetime.fromtimestamp(epoch(expires_at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"# TTL: this node powers itself off, so terminates, at {utc};",
        f"# {TIMER} checks {EXPIRES_FILE} a minute after every boot and every minute.",
        set_expiry_command(expires_at),
    ]
    for name, dest in FILES.items():
        text = script_text(name)
        if _DELIMITER in text:  # pragma: no cover - packaged files
            raise ValueError(f"{name} contains the here-document delimiter")
        target = _R + shlex.quote(dest)
        lines += [
            f"mkdir -p {_R}{shlex.quote(dest.rsplit('/', 1)[0])}",
            f"cat > {target} <<'{_DELIMITER}'",
            text.rstrip("\n"),
            _DELIMITER,
            f"chmod {'0755' if dest == CHECK_SCRIPT else '0644'} {target}",
        ]
    lines += [
        f"if ! {{ systemctl daemon-reload && systemctl enable --now {TIMER}; }}; then",
        f"    echo 'sparkube: cannot enable {TIMER}; scheduling a one-shot shutdown' >&2",
        f"    minutes=$(( ({epoch(expires_at)} - $(date +%s) + 59) / 60 ))",
        '    if [ "$minutes" -lt 1 ]; then minutes=1; fi',
        '    shutdown -h "+$minutes" "sparkube: cluster TTL reached" || true',
        "fi",
    ]
    return "\n".join(lines) + "\n"
