"""The network safety net (tests/fixtures/netguard.py) refuses what no test created.

Each refusal below happens before any packet is sent: the destination is checked in
``socket.connect`` itself, so even 8.8.8.8 is never contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import boto3
import pytest

from tests.fixtures import netguard
from tests.fixtures.common import isolated_environment, subprocess_environ
from tests.fixtures.sshhosts import SshLab

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

OUTSIDE = ["192.0.2.1", "8.8.8.8", "54.214.0.10", "10.0.1.23", "169.254.169.254", "2001:db8::1"]


def refused(exc: BaseException, address: str) -> bool:
    return isinstance(exc, netguard.UnsafeConnectionError) and (
        f"refused a connection to {address} " in str(exc)
    )


@contextlib.contextmanager
def refusal_of(address: str) -> Iterator[None]:
    """Expect the net's refusal of ``address``, possibly wrapped by a client library
    (botocore turns it into HTTPClientError), and recorded for the teardown check."""
    before = len(netguard.refusals())
    with pytest.raises(Exception) as err:
        yield
    new = netguard.refusals()[before:]
    assert new and all(f"refused a connection to {address} " in m for m in new), new
    assert "network safety net: refused a connection to" in str(err.value)


def test_the_net_is_installed() -> None:
    assert netguard.installed()


@pytest.mark.network_refusals_expected
@pytest.mark.parametrize("address", OUTSIDE)
def test_connect_outside_fails_at_once_naming_the_address(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A session fixture alive in this process may have registered one of these for
    # itself (the node bed registers its bridge and machine addresses): this
    # test is about addresses no fixture registered, so it runs with none registered.
    monkeypatch.setattr(netguard, "_allowed", [])
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    start = time.monotonic()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)  # a real attempt at an unrouted address would hang here
        with pytest.raises(netguard.UnsafeConnectionError) as err:
            sock.connect((address, 443))
        assert refused(err.value, address)
        assert "port 443" in str(err.value)
        with pytest.raises(netguard.UnsafeConnectionError):
            sock.connect_ex((address, 443))
    with pytest.raises(netguard.UnsafeConnectionError):
        socket.create_connection((address, 80), timeout=30)
    assert time.monotonic() - start < 1.0


@pytest.mark.network_refusals_expected
def test_the_clients_the_code_uses_are_refused_too() -> None:
    """urllib, botocore (urllib3), asyncio/asyncssh all reach socket.connect."""
    with refusal_of("192.0.2.1"):
        urllib.request.urlopen("http://192.0.2.1/", timeout=30)
    ec2 = boto3.client(
        "ec2",
        endpoint_url="http://192.0.2.1:5000",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with refusal_of("192.0.2.1"):
        ec2.describe_instances()

    async def ssh() -> None:
        await asyncssh.connect("198.51.100.7", known_hosts=None, connect_timeout=30)

    with refusal_of("198.51.100.7"):
        asyncio.run(ssh())

    async def raw() -> None:
        await asyncio.open_connection("203.0.113.9", 80)

    with refusal_of("203.0.113.9"):
        asyncio.run(raw())
    with pytest.raises(netguard.UnsafeConnectionError, match="host name 'example\\.com'"):
        socket.create_connection(("example.com", 80), timeout=30)


def test_loopback_and_local_sockets_are_allowed(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        socket.create_connection(("localhost", port), timeout=5).close()
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)


def test_a_refusal_the_code_swallows_still_fails_the_test(tmp_path: Path) -> None:
    # a separate pytest process: the outer session's net must stay installed
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.netguard"]\n')
    (tmp_path / "test_swallow.py").write_text(
        "import socket\n\n\n"
        "def test_swallows():\n"
        "    try:\n"
        "        socket.create_connection(('192.0.2.1', 22), timeout=30)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "network safety net: refused a connection to 192.0.2.1 " in result.stdout


@pytest.mark.network_refusals_expected
def test_a_registered_namespace_address_works_until_the_fixture_ends(
    ssh_lab: SshLab,
) -> None:
    host = ssh_lab.add_host("node-1")
    ip = ipaddress.ip_address(host.address)
    owners = [a.owner for a in netguard.allowances() if ip in a.network]
    assert owners == [f"ssh lab {ssh_lab.rid} (bridge {ssh_lab.bridge})"]
    with socket.create_connection((host.address, 22), timeout=10) as sock:
        assert sock.recv(64).startswith(b"SSH-2.0-")  # sshd in the test's namespace answers
    # an address of the same /8 that no fixture created stays refused
    with pytest.raises(netguard.UnsafeConnectionError):
        socket.create_connection(("10.201.255.254", 22), timeout=10)
    ssh_lab.close()  # the fixture's teardown: its range is no longer open
    with refusal_of(host.address):
        socket.create_connection((host.address, 22), timeout=10)


def test_the_test_environments_cannot_detect_a_public_ip(tmp_path: Path) -> None:
    from sparkube.aws import network
    from sparkube.errors import ConfigError

    def detector() -> str:
        raise AssertionError("the public IP must not be looked up")

    (tmp_path / "a").mkdir()
    environ = isolated_environment(tmp_path / "a").environ
    with pytest.raises(ConfigError, match="pass --allow-cidr"):
        network.operator_cidrs((), detector, environ)

    # a sparkube subprocess: outside the net's reach, so its HTTPS goes to a closed
    # loopback port; even a direct call of the real detector cannot leave the machine
    probe = "from sparkube.aws.network import checkip\ncheckip()\n"
    base = tmp_path / "b"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=60, check=False,
        env=subprocess_environ(base), cwd=base / "work",
    )  # fmt: skip
    assert done.returncode != 0
    assert "Connection refused" in done.stderr, done.stderr[-2000:]
    assert subprocess_environ(tmp_path / "c")["SPARKUBE_DETECT_IP"] == "off"
