"""doctor says in words what failed when it could not detect the public IP address,
never Python's ``<urlopen error [Errno ...]>``."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sparkube import doctor
from sparkube.env import Environment
from sparkube.spec import ClusterSpec

HOST = "checkip.amazonaws.com"


def _env(tmp_path: Path) -> Environment:
    return Environment(
        environ={"HOME": str(tmp_path), "SPARKUBE_DETECT_IP": "on"}, cwd=tmp_path, interactive=False
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refused() -> str:
    # A real urlopen against a closed loopback port: the URLError a user meets.
    with urllib.request.urlopen(f"http://127.0.0.1:{_closed_port()}/", timeout=5) as answer:
        return str(answer.read())


def _raises(exc: BaseException) -> doctor.network.IpDetector:
    def detect() -> str:
        raise exc

    return detect


@pytest.mark.parametrize(
    ("detector", "words"),
    [
        (_refused, f"the connection to {HOST} was refused"),
        (
            _raises(urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name"))),
            f"the name {HOST} could not be resolved (no network or no DNS)",
        ),
        (_raises(urllib.error.URLError(TimeoutError("timed out"))), f"{HOST} did not answer"),
        (_raises(TimeoutError("timed out")), f"{HOST} did not answer in time"),
        (
            _raises(urllib.error.URLError(ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED"))),
            f"the TLS connection to {HOST} failed",
        ),
        (
            _raises(urllib.error.URLError(OSError("Tunnel connection failed: 403 Forbidden"))),
            f"the HTTPS proxy refused to connect to {HOST} (403 Forbidden)",
        ),
        (
            _raises(urllib.error.HTTPError(f"https://{HOST}/", 503, "busy", None, None)),  # type: ignore[arg-type]
            f"{HOST} answered HTTP 503",
        ),
        (lambda: "<html>captive portal</html>", f"{HOST} answered something that is not an IP"),
    ],
    ids=["refused", "dns", "timeout", "bare-timeout", "tls", "proxy", "http", "not-an-ip"],
)
def test_public_ip_failure_in_words(
    tmp_path: Path, detector: doctor.network.IpDetector, words: str
) -> None:
    check = doctor.check_public_ip(_env(tmp_path), ClusterSpec(), detector)
    assert check.status == "warn"
    assert words in check.finding, check.finding
    assert "urlopen" not in check.finding and "Errno" not in check.finding
    assert "--allow-cidr" in check.fix
