"""A first run as a new user meets it (issue 11): offline or with no route to AWS the
cloud commands fail within seconds and say why; with no region, status/ls/down answer
what was asked; ``ls --all-regions`` needs no region.

Offline is real here: the CLI runs in a subprocess inside a network namespace of its
own (``unshare --net``: no interface but a down loopback, so nothing can leave and any
DNS lookup fails at once), or inside one whose resolver never answers. The moto server
stands in for AWS elsewhere; a closed loopback port stands in for "no route".
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sparkube.aws.session import CallCounter, observe_calls
from tests.fixtures.common import CliResult, subprocess_environ
from tests.fixtures.moto_server import MotoAws

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]
ROOT = Path(__file__).resolve().parents[2]
#: The old behaviour (botocore retrying a dead connection) took 39-66 s; the check
#: takes at most 4 s to resolve plus 4 s to connect. The bound leaves room for a busy
#: machine's interpreter start-up and still fails on any retry loop.
FAST = 20.0

_SILENT_DNS = """
import socket, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
time.sleep(120)
"""


def _netns_available() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace: {probe.stderr.decode().strip()}")


def _offline(
    tmp_path: Path, *args: str, silent_dns: bool = False, credentials: bool = True, **extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``sparkube ARGS`` in an empty network namespace; with ``silent_dns`` its resolver
    is a loopback port that takes queries and never answers."""
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    environ = subprocess_environ(tmp_path / "run", **(keys if credentials else {}), **extra)
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        environ.pop(name, None)  # the namespace itself keeps everything in
    command = [sys.executable, "-m", "sparkube", *args]
    script = 'exec "$@"'
    if silent_dns:
        resolv = tmp_path / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
        script = (
            f"ip link set lo up && mount --bind {resolv} /etc/resolv.conf || exit 99; "
            f"{sys.executable} -c '{_SILENT_DNS}' >/dev/null 2>&1 & dns=$!; sleep 0.5; "
            '"$@"; rc=$?; kill $dns; exit $rc'
        )
    started = time.monotonic()
    done = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", script, "sh", *command],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("extra", "host"),
    [
        ({}, "ec2.us-east-1.amazonaws.com"),  # the SDK's own endpoint, offline
        ({"AWS_ENDPOINT_URL": "http://nonexistent.invalid"}, "nonexistent.invalid"),
    ],
)
def test_offline_cloud_commands_fail_within_seconds(
    tmp_path: Path, extra: dict[str, str], host: str
) -> None:
    _netns_available()
    for args in (["status"], ["ls"], ["up", "--allow-cidr", "203.0.113.7/32"]):
        done, seconds = _offline(tmp_path / args[0], *args, "--region", "us-east-1", **extra)
        assert done.returncode == 1, done.stderr
        assert f"Cannot reach AWS: {host} does not resolve" in done.stderr
        assert done.stderr.count("Error:") == 1 and "Traceback" not in done.stderr
        assert seconds < FAST, f"{args}: {seconds:.1f} s"


def test_a_resolver_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    _netns_available()
    if shutil.which("ip") is None:
        pytest.skip("ip (iproute2) is not installed")
    done, seconds = _offline(tmp_path, "status", "--region", "us-east-1", silent_dns=True)
    assert done.returncode == 1, done.stderr
    assert "ec2.us-east-1.amazonaws.com does not resolve (no DNS answer in 4 s)" in done.stderr
    assert seconds < FAST  # the resolver alone would take 2 x 5 s per address family


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_route_to_the_endpoint_fails_within_seconds(cli: Cli, moto_aws: MotoAws) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    environ = {**moto_aws.env.environ, "AWS_ENDPOINT_URL": url, "AWS_MAX_ATTEMPTS": "8"}
    env = dataclasses.replace(moto_aws.env, environ=environ)
    for args in (("status",), ("ls",), ("down", "--yes")):
        started = time.monotonic()
        result = cli(*args, env=env)
        seconds = time.monotonic() - started
        assert result.exit_code == 1, result.stderr
        assert f"Cannot reach AWS at {url} (Connection refused)" in result.stderr
        assert "AWS_ENDPOINT_URL" in result.stderr
        assert "credentials" not in result.stderr  # they were found
        assert seconds < FAST, f"{args}: {seconds:.1f} s"
    # plan estimates all the same (below), as fast
    started = time.monotonic()
    result = cli("plan", "--allow-cidr", "1.2.3.4/32", env=env)
    assert result.exit_code == 0, result.stderr
    assert f"Offline estimate (AWS cannot be reached: no connection at {url})" in result.stderr
    assert time.monotonic() - started < FAST


def _unreachable(moto_aws: MotoAws, *, credentials: bool = True) -> MotoAws:
    """``moto_aws`` with its endpoint a closed loopback port (AWS cannot be reached)."""
    aws = moto_aws if credentials else _without_credentials(moto_aws)
    environ = {**aws.env.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"}
    return dataclasses.replace(aws, env=dataclasses.replace(aws.env, environ=environ))


# --- offline and without credentials: both said at once ------------------------------

NO_CREDENTIALS_TOO = "and no AWS credentials were found; check your network connection"
CONFIGURE = "and run 'aws configure' (or 'aws sso login') or set AWS_PROFILE"


def _one_sentence_with_both(stderr: str) -> None:
    assert stderr.count("Error:") == 1 and "Traceback" not in stderr
    message = " ".join(stderr.split())
    assert NO_CREDENTIALS_TOO in message and CONFIGURE in message
    assert message.endswith("then try again.")


def test_unreachable_without_credentials_says_both(cli: Cli, moto_aws: MotoAws) -> None:
    aws = _unreachable(moto_aws, credentials=False)
    url = aws.env.environ["AWS_ENDPOINT_URL"]
    for args in (("status",), ("up", "--allow-cidr", "203.0.113.7/32"), ("ls",)):
        result = cli(*args, env=aws.env)
        assert result.exit_code == 1, result.stderr
        assert f"Cannot reach AWS at {url} (Connection refused), and no AWS" in result.stderr
        _one_sentence_with_both(result.stderr)
    doctor = cli("doctor", "-o", "json", env=aws.env)
    assert doctor.exit_code == 1
    check = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "AWS credentials")
    assert check["status"] == "fail"
    assert check["finding"].endswith("and no AWS credentials were found.")
    assert "Cannot reach AWS at" in check["finding"] and "'aws configure'" in check["fix"]


def test_offline_without_credentials_says_both(tmp_path: Path) -> None:
    _netns_available()
    for args in (["status"], ["up", "--allow-cidr", "203.0.113.7/32"], ["doctor"]):
        done, seconds = _offline(
            tmp_path / args[0], *args, "--region", "us-east-1", credentials=False
        )
        assert done.returncode == 1, done.stderr
        if args[0] == "doctor":  # the finding and its fix, in the table
            text = " ".join(done.stdout.split())
            assert "does not resolve" in text and "and no AWS credentials were found." in text
            assert "'aws configure'" in text
            continue
        assert "Cannot reach AWS: ec2.us-east-1.amazonaws.com does not resolve" in done.stderr
        _one_sentence_with_both(done.stderr)
        assert seconds < FAST, f"{args}: {seconds:.1f} s"


def test_a_dead_proxy_is_named_not_aws(cli: Cli, moto_aws: MotoAws) -> None:
    port = _closed_port()
    environ = {k: v for k, v in moto_aws.env.environ.items() if k != "AWS_ENDPOINT_URL"}
    environ["HTTPS_PROXY"] = f"http://user:secret@127.0.0.1:{port}"
    result = cli("status", env=dataclasses.replace(moto_aws.env, environ=environ))
    assert result.exit_code == 1
    assert f"Cannot reach AWS through the proxy at http://127.0.0.1:{port}" in result.stderr
    assert "secret" not in result.stderr


# --- no region ----------------------------------------------------------------------


def _no_region(moto_aws: MotoAws) -> MotoAws:
    environ = {
        k: v
        for k, v in moto_aws.env.environ.items()
        if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    return dataclasses.replace(moto_aws, env=dataclasses.replace(moto_aws.env, environ=environ))


def test_without_a_region_status_ls_and_down_answer_what_was_asked(
    cli: Cli, moto_aws: MotoAws
) -> None:
    aws = _no_region(moto_aws)
    status = cli("status", "-c", "analytics", env=aws.env)
    assert status.exit_code == 2
    assert "No cluster analytics is known on this machine" in status.stderr
    assert "--region" in status.stderr and "sparkube ls --all-regions" in status.stderr

    down = cli("down", "--yes", env=aws.env)
    assert down.exit_code == 2
    assert "Nothing is known on this machine about cluster sparkube" in down.stderr

    ls = cli("ls", env=aws.env)
    assert ls.exit_code == 2
    assert "no region to list clusters in" in ls.stderr and "--all-regions" in ls.stderr

    # The cluster's files are here (a kubeconfig, a key): say what cannot be done to it.
    aws.env.cluster_dir("analytics", create=True)
    status = cli("status", "-c", "analytics", env=aws.env)
    assert status.exit_code == 2
    assert status.stderr.startswith("Error: Cannot look up cluster analytics: no AWS region")


def test_ls_all_regions_needs_no_region(cli: Cli, moto_aws: MotoAws) -> None:
    ec2 = moto_aws.client("ec2", region="eu-west-1")
    ec2.create_security_group(
        GroupName="sparkube-west",
        Description="sparkube cluster west",
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": "sparkube:cluster", "Value": "west"}],
            }
        ],
    )
    aws = _no_region(moto_aws)
    listed = cli("ls", "--all-regions", env=aws.env)
    assert listed.exit_code == 0, listed.stderr
    assert "west" in listed.stdout and "eu-west-1" in listed.stdout


# --- what is being waited for --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "shown", "code"),
    [
        # No cluster sparkube exists in moto: status says so and exits 2 (bad input).
        (("status",), "Looking for cluster sparkube in us-east-1…", 2),
        (("ls",), "Looking for sparkube clusters in us-east-1…", 0),
        (("plan", "--allow-cidr", "1.2.3.4/32"), "Asking AWS in us-east-1", 0),
    ],
)
def test_a_terminal_sees_what_is_being_waited_for(
    cli: Cli,
    moto_aws: MotoAws,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    shown: str,
    code: int,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # Rich treats stderr as a terminal
    result = cli(*args, env=moto_aws.env)
    assert result.exit_code == code, result.stderr
    assert shown in result.stderr
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    plain = cli(*args, env=moto_aws.env)  # not a terminal: no spinner, nothing extra
    assert shown not in plain.stderr


# --- plan before any account setup ---------------------------------------------------

PRICES = json.loads((ROOT / "sparkube" / "aws" / "prices.json").read_text())
TABLE = PRICES["regions"]


def _full(region: str, control: float, workers: float, nodes: int) -> float:
    """The plan's full hourly price, by hand: the instances, each node's 40 GiB gp3 root
    volume at the table's GB-month price over 730 h, and one public IPv4 per node."""
    gp3 = PRICES["volumes"]["regions"][region]["gp3"]
    return control + workers + nodes * (40 * gp3 / 730 + 0.005)


def _without_credentials(moto_aws: MotoAws, *drop: str) -> MotoAws:
    environ = {
        k: v
        for k, v in moto_aws.env.environ.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", *drop)
    }
    return dataclasses.replace(moto_aws, env=dataclasses.replace(moto_aws.env, environ=environ))


def test_plan_without_credentials_is_an_offline_estimate(cli: Cli, moto_aws: MotoAws) -> None:
    aws = _without_credentials(moto_aws)
    with _counting() as calls:
        result = cli("plan", "--workers", "3", "--instance-type", "m7i.large", env=aws.env)
    assert result.exit_code == 0, result.stderr
    assert calls.total == 0  # nothing asked of AWS
    price = TABLE["us-east-1"]["m7i.large"]
    control = TABLE["us-east-1"]["t3.medium"]
    assert "offline estimate" in result.stdout
    # t3 nodes run unlimited: their surplus credits make the price "at least"
    assert f"Total: at least ${_full('us-east-1', control, 3 * price, 4):,.4f}/h = " in (
        result.stdout
    )
    assert f"instances ${control + 3 * price:,.4f} + volumes" in result.stdout
    assert "not checked with AWS" in result.stdout
    assert "Offline estimate (no AWS credentials were found)" in result.stderr
    assert "us-east-1 prices from sparkube's bundled price table" in result.stderr
    assert "Error" not in result.stderr


def test_plan_without_a_region_prices_us_east_1_and_says_so(cli: Cli, moto_aws: MotoAws) -> None:
    aws = _without_credentials(moto_aws, "AWS_REGION", "AWS_DEFAULT_REGION")
    result = cli("plan", "-o", "json", env=aws.env)
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["offline"] is True and plan["region"] == "us-east-1"
    t3 = TABLE["us-east-1"]["t3.medium"]
    assert plan["cost"]["usd_per_hour"] == pytest.approx(
        _full("us-east-1", t3, 2 * t3, 3), abs=1e-6
    )
    assert plan["cost"]["instances_usd_per_hour"] == pytest.approx(3 * t3)
    assert "no AWS region is set" in result.stderr and "Pass --region" in result.stderr


def test_plan_offline_asks_nothing_even_with_credentials(cli: Cli, moto_aws: MotoAws) -> None:
    with _counting() as calls:
        result = cli(
            "plan", "--offline", "--region", "eu-west-1", "--spot", "-w", "2", "-o", "json",
            env=moto_aws.env,
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert calls.total == 0
    plan = json.loads(result.stdout)
    assert plan["cost"]["market"] == "1 on-demand worker + 1 spot (priced at on-demand)"
    t3 = TABLE["eu-west-1"]["t3.medium"]
    assert plan["cost"]["usd_per_hour"] == pytest.approx(
        _full("eu-west-1", t3, 2 * t3, 3), abs=1e-6
    )
    assert plan["cost"]["volumes"]["usd_per_gb_month"] == 0.088
    unknown = cli("plan", "--offline", "--instance-type", "x9.huge", env=moto_aws.env)
    assert unknown.exit_code == 0
    assert "Total: at least $" in unknown.stdout and "no price for x9.huge" in unknown.stderr
    assert "Not in this price: no price for x9.huge" in unknown.stdout
    bad = cli("plan", "--offline", "--workers", "500", env=moto_aws.env)
    assert bad.exit_code == 2 and "--workers" in bad.stderr and "200" in bad.stderr


@contextmanager
def _counting() -> Iterator[CallCounter]:
    counter = CallCounter()
    with observe_calls(counter):
        yield counter


# --- plan offline with credentials, and the same input checks on every path ---------


def test_plan_offline_with_credentials_is_an_offline_estimate(tmp_path: Path) -> None:
    _netns_available()
    done, seconds = _offline(tmp_path / "text", "plan", "--region", "eu-west-1", "-w", "1")
    assert done.returncode == 0, done.stderr
    note = " ".join(done.stderr.split())
    assert "Offline estimate (AWS cannot be reached: " in note and "does not resolve)" in note
    assert "eu-west-1 prices from sparkube's bundled price table" in note
    assert "Once AWS can be reached, 'sparkube plan' shows all." in note
    assert "Error" not in done.stderr
    t3 = TABLE["eu-west-1"]["t3.medium"]
    assert f"${_full('eu-west-1', t3, t3, 2):,.4f}/h" in done.stdout
    assert "not checked with AWS" in done.stdout
    assert seconds < FAST
    done, _ = _offline(tmp_path / "json", "plan", "--region", "eu-west-1", "-o", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["offline"] is True and plan["region"] == "eu-west-1"
    assert plan["reason"].startswith("AWS cannot be reached: ")
    assert plan["cost"]["source"] == "bundled price table (eu-west-1, estimate)"


def test_plan_unreachable_with_credentials_is_an_offline_estimate(
    cli: Cli, moto_aws: MotoAws
) -> None:
    aws = _unreachable(moto_aws)
    result = cli("plan", "--workers", "3", "--instance-type", "m7i.large", env=aws.env)
    assert result.exit_code == 0, result.stderr
    assert "Offline estimate (AWS cannot be reached: no connection at" in result.stderr
    assert "us-east-1 prices from sparkube's bundled price table" in result.stderr
    price = _full(
        "us-east-1", TABLE["us-east-1"]["t3.medium"], TABLE["us-east-1"]["m7i.large"] * 3, 4
    )
    assert f"${price:,.4f}/h" in result.stdout and "offline estimate" in result.stdout


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_every_plan_refuses_the_whole_internet_as_up_does(
    cli: Cli, moto_aws: MotoAws, cidr: str
) -> None:
    paths = {
        "online": (moto_aws.env, ()),
        "--offline": (moto_aws.env, ("--offline",)),
        "no credentials": (_without_credentials(moto_aws).env, ()),
        "no region": (_without_credentials(moto_aws, "AWS_REGION", "AWS_DEFAULT_REGION").env, ()),
        "unreachable": (_unreachable(moto_aws).env, ()),
    }
    for path, (env, extra) in paths.items():
        with _counting() as calls:
            result = cli("plan", "--allow-cidr", "203.0.113.7/32", "--allow-cidr", cidr, *extra,
                         env=env)  # fmt: skip
        assert result.exit_code == 2, f"{path}: {result.stderr}"
        assert result.stderr.startswith(f"Error: --allow-cidr '{cidr}' would open SSH and the")
        assert result.stderr.count("\n") == 1 and "whole internet" in result.stderr
        assert result.stdout == "" and calls.total == 0, path
    up = cli("up", "--allow-cidr", cidr, env=_unreachable(moto_aws).env)  # before asking AWS
    assert up.exit_code == 2 and "whole internet" in up.stderr, up.stderr


def test_every_plan_refuses_an_unknown_region_as_up_does(cli: Cli, moto_aws: MotoAws) -> None:
    for env, extra in ((moto_aws.env, ("--offline",)), (_without_credentials(moto_aws).env, ())):
        result = cli("plan", "--region", "mars-east-1", *extra, env=env)
        assert result.exit_code == 2, result.stderr
        assert "Unknown AWS region 'mars-east-1'" in result.stderr and result.stdout == ""
