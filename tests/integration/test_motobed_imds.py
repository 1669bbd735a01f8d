"""The node bed's instance metadata service (``MetadataService`` in
tests/fixtures/motobed.py), without the bed: the service on loopback in front of the
session's in-process moto server, with two instances launched in moto.

On the bed the service tells nodes apart by the request's source address; here every
request comes from 127.0.0.1, so the test's lookup maps that address to the instance the
test plays (the service's own lookup, :class:`MotoIdentities`, is checked on its own).
What the service does not answer itself (the IMDSv2 token, the role's credentials) must
be moto's answer unchanged, and botocore's metadata fetcher and the join script must
read through it as they read from EC2. Also here: when a worker nobody named boots
(``boot_name``), and ``MotoMachines`` booting, stopping and removing one, driving a
stand-in bed that only records what it is asked.
"""

from __future__ import annotations

import datetime as dt
import http.client
import importlib.util
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.utils import InstanceMetadataFetcher

from sparkube.nodes import selfjoin
from tests.fixtures.moto_server import ACCOUNT, REGION, MotoAws
from tests.fixtures.motobed import (
    InstanceIdentity,
    MetadataService,
    MotoIdentities,
    MotoMachines,
    boot_name,
    identity_path,
)

pytestmark = pytest.mark.integration

JOIN_SCRIPT = Path(selfjoin.__file__).parent / "scripts" / "sparkube-join.py"
TOKEN_HEADERS = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}


@dataclass
class Imds:
    service: MetadataService
    moto_url: str
    ec2: Any
    #: instance id -> private IP, of the two instances
    ips: dict[str, str]
    a: str
    b: str
    #: the private IP whose instance the requests come from (None: no instance's)
    playing: list[str | None]

    def play(self, instance_id: str | None) -> None:
        self.playing[0] = self.ips[instance_id] if instance_id else "10.255.255.254"

    def get(self, path: str, base: str | None = None) -> tuple[int, str]:
        return _call("GET", (base or self.service.url) + path)


def _call(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def imds(moto_aws: MotoAws) -> Iterator[Imds]:
    ec2: Any = moto_aws.client("ec2")
    ami = moto_aws.amis["amd64"]

    def launch(tags: dict[str, str]) -> str:
        got = ec2.run_instances(
            ImageId=ami,
            InstanceType="m7i.large",
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        return str(got["Instances"][0]["InstanceId"])

    a = launch({"sparkube:cluster": "c1", "sparkube:role": "worker", "sparkube:node": "w-1"})
    b = launch({"sparkube:cluster": "c1", "sparkube:role": "worker", "team": "data"})
    found = ec2.describe_instances(InstanceIds=[a, b])
    ips = {
        i["InstanceId"]: i["PrivateIpAddress"]
        for r in found["Reservations"]
        for i in r["Instances"]
    }
    playing: list[str | None] = [None]
    identities = MotoIdentities(moto_aws.url, region=REGION, ttl=0)

    def lookup(source: str) -> InstanceIdentity | None:
        assert source == "127.0.0.1", source
        return identities(playing[0]) if playing[0] else None

    with MetadataService("127.0.0.1", moto_aws.url, lookup=lookup) as service:
        yield Imds(service, moto_aws.url, ec2, ips, a, b, playing)


def test_each_instance_is_answered_with_its_own_identity(imds: Imds) -> None:
    found = imds.ec2.describe_instances(InstanceIds=[imds.a, imds.b])
    by_id = {i["InstanceId"]: i for r in found["Reservations"] for i in r["Instances"]}
    for iid in (imds.a, imds.b):
        inst = by_id[iid]
        imds.play(iid)
        assert imds.get("/latest/meta-data/instance-id") == (200, iid)
        assert imds.get("/latest/meta-data/local-ipv4") == (200, inst["PrivateIpAddress"])
        assert imds.get("/latest/meta-data/public-ipv4") == (200, inst["PublicIpAddress"])
        zone = inst["Placement"]["AvailabilityZone"]
        assert imds.get("/latest/meta-data/placement/availability-zone") == (200, zone)
        assert imds.get("/latest/meta-data/placement/region") == (200, REGION)
        assert imds.get("/latest/meta-data/instance-type") == (200, "m7i.large")
        status, text = imds.get("/latest/dynamic/instance-identity/document")
        assert status == 200
        doc = json.loads(text)
        assert doc["instanceId"] == iid
        assert doc["region"] == REGION
        assert doc["availabilityZone"] == zone
        assert doc["privateIp"] == inst["PrivateIpAddress"]
        assert doc["instanceType"] == "m7i.large"
        assert doc["imageId"] == inst["ImageId"]
        assert doc["accountId"] == ACCOUNT


def test_market_and_the_notices_a_test_gives(imds: Imds) -> None:
    """``instance-life-cycle`` says each instance's market; the spot interruption and
    rebalance paths answer 404 until the test gives that instance a notice (as EC2:
    moto has neither), then EC2's JSON; the other instance still gets 404."""
    got = imds.ec2.run_instances(
        ImageId=imds.ec2.describe_instances(InstanceIds=[imds.a])["Reservations"][0]["Instances"][
            0
        ]["ImageId"],
        InstanceType="m7i.large",
        MinCount=1,
        MaxCount=1,
        InstanceMarketOptions={"MarketType": "spot"},
    )
    spot = got["Instances"][0]
    imds.ips[spot["InstanceId"]] = spot["PrivateIpAddress"]
    imds.play(imds.a)
    assert imds.get("/latest/meta-data/instance-life-cycle") == (200, "on-demand")
    imds.play(spot["InstanceId"])
    assert imds.get("/latest/meta-data/instance-life-cycle") == (200, "spot")
    for path in ("spot/instance-action", "spot/termination-time",
                 "events/recommendations/rebalance"):  # fmt: skip
        assert imds.get("/latest/meta-data/" + path)[0] == 404, path
    assert imds.get("/latest/meta-data/events/maintenance/scheduled") == (200, "[]")

    before = dt.datetime.now(dt.UTC)
    imds.service.notify(spot["InstanceId"], spot_action="terminate", rebalance=True)
    status, text = imds.get("/latest/meta-data/spot/instance-action")
    assert status == 200
    notice = json.loads(text)
    assert notice["action"] == "terminate"
    at = dt.datetime.strptime(notice["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert dt.timedelta(seconds=100) < at - before < dt.timedelta(seconds=130)
    assert imds.get("/latest/meta-data/spot/termination-time") == (200, notice["time"])
    status, text = imds.get("/latest/meta-data/events/recommendations/rebalance")
    assert status == 200 and "noticeTime" in json.loads(text)
    imds.play(imds.a)  # another instance has no notice
    assert imds.get("/latest/meta-data/spot/instance-action")[0] == 404


def test_tags_listing_values_and_404(imds: Imds) -> None:
    imds.play(imds.a)
    status, listing = imds.get("/latest/meta-data/tags/instance")
    assert status == 200
    assert listing.split("\n") == ["sparkube:cluster", "sparkube:node", "sparkube:role"]
    assert imds.get("/latest/meta-data/tags/instance/sparkube:node") == (200, "w-1")
    assert imds.get("/latest/meta-data/tags/instance/sparkube%3Anode") == (200, "w-1")
    assert imds.get("/latest/meta-data/tags/instance/team")[0] == 404
    imds.play(imds.b)
    assert imds.get("/latest/meta-data/tags/instance/")[1].split("\n") == [
        "sparkube:cluster",
        "sparkube:role",
        "team",
    ]
    assert imds.get("/latest/meta-data/tags/instance/team") == (200, "data")
    assert imds.get("/latest/meta-data/tags/instance/sparkube:node")[0] == 404
    # a tag put on later is answered (this lookup keeps nothing: ttl 0)
    imds.ec2.create_tags(Resources=[imds.b], Tags=[{"Key": "sparkube:node", "Value": "w-9"}])
    assert imds.get("/latest/meta-data/tags/instance/sparkube:node") == (200, "w-9")


def test_no_instance_at_the_address(imds: Imds) -> None:
    imds.play(None)
    assert imds.get("/latest/meta-data/instance-id")[0] == 404
    assert imds.get("/latest/meta-data/tags/instance")[0] == 404
    assert imds.get("/latest/dynamic/instance-identity/document")[0] == 404
    # what is not identity still comes from moto
    assert _call("PUT", imds.service.url + "/latest/api/token", TOKEN_HEADERS)[0] == 200
    assert imds.get("/latest/meta-data/iam/security-credentials/")[0] == 200


def test_token_and_credentials_are_motos_answers(imds: Imds) -> None:
    imds.play(imds.a)
    for base in (imds.service.url, imds.moto_url):
        assert _call("PUT", base + "/latest/api/token", TOKEN_HEADERS) == (
            200,
            "fake-imdsv2-token",
        )
    # the token's lifetime said back, as EC2 does (IMDSv2 clients read it)
    request = urllib.request.Request(
        imds.service.url + "/latest/api/token", method="PUT", headers=TOKEN_HEADERS
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # loopback only
        ttl = "X-aws-ec2-metadata-token-ttl-seconds"
        assert resp.headers[ttl] == TOKEN_HEADERS[ttl]
    token = {"X-aws-ec2-metadata-token": "fake-imdsv2-token"}
    creds = "/latest/meta-data/iam/security-credentials/"
    via = _call("GET", imds.service.url + creds, token)
    direct = _call("GET", imds.moto_url + creds, token)
    assert via == direct
    assert via[0] == 200
    role = via[1].split()[0]
    via_role = json.loads(_call("GET", imds.service.url + creds + role, token)[1])
    direct_role = json.loads(_call("GET", imds.moto_url + creds + role, token)[1])
    keep = ("AccessKeyId", "SecretAccessKey", "Token")  # (Expiration: now + 1 day)
    assert {k: via_role[k] for k in keep} == {k: direct_role[k] for k in keep}
    # paths the bed leaves to moto: moto's answer, its error too
    for path in ("/latest/meta-data/hostname", "/latest/meta-data/nope"):
        assert imds.get(path) == imds.get(path, imds.moto_url), path
    assert imds.get("/latest/meta-data/nope")[0] == 500


def test_keep_alive_and_clients_that_read_imds(imds: Imds) -> None:
    imds.play(imds.b)
    host, port = imds.service.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        for method, path in [
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/instance-id"),
            ("GET", "/latest/meta-data/tags/instance/nope"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            ("GET", "/latest/meta-data/instance-id"),
        ]:
            conn.request(method, path, headers=TOKEN_HEADERS)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status in (200, 404), (path, resp.status)
            assert int(resp.headers["Content-Length"]) == len(body)
        assert body.decode() == imds.b
    finally:
        conn.close()
    # botocore's instance metadata credentials (IMDSv2: a token first)
    fetched = InstanceMetadataFetcher(
        timeout=5, num_attempts=1, base_url=imds.service.url
    ).retrieve_iam_role_credentials()
    assert fetched["access_key"] == "test-key"
    assert fetched["token"] == "test-session-token"
    # the join script's identity
    spec = importlib.util.spec_from_file_location("sparkube_join", JOIN_SCRIPT)
    assert spec is not None and spec.loader is not None
    join = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(join)
    got = join.identity(imds.service.url)
    assert got["instance_id"] == imds.b
    assert got["private_ip"] == imds.ips[imds.b]
    assert got["region"] == REGION
    assert got["access_key"] == "test-key"


def test_moto_identities_finds_the_instance_by_private_ip(imds: Imds) -> None:
    identities = MotoIdentities(imds.moto_url, region=REGION, ttl=60)
    got = identities(imds.ips[imds.a])
    assert got is not None
    assert got.instance_id == imds.a
    assert got.tags["sparkube:node"] == "w-1"
    assert identities("10.255.255.254") is None
    # kept for ttl: a tag put on meanwhile is not seen yet
    imds.ec2.create_tags(Resources=[imds.a], Tags=[{"Key": "later", "Value": "1"}])
    again = identities(imds.ips[imds.a])
    assert again is not None and "later" not in again.tags
    fresh = MotoIdentities(imds.moto_url, region=REGION, ttl=0)(imds.ips[imds.a])
    assert fresh is not None and fresh.tags["later"] == "1"


def test_identity_paths() -> None:
    assert identity_path("/latest/meta-data/instance-id") == "meta-data/instance-id"
    assert identity_path("/latest/meta-data/instance-id?x=1") == "meta-data/instance-id"
    assert identity_path("/latest/meta-data/tags/instance") == "meta-data/tags/instance"
    assert identity_path("/latest/meta-data/tags/instance/k") == "meta-data/tags/instance/k"
    assert identity_path("/latest/dynamic/instance-identity/document") is not None
    for other in (
        "/latest/api/token",
        "/latest/meta-data/",
        "/latest/meta-data/iam/security-credentials/default-role",
        "/latest/meta-data/hostname",
        "/latest/meta-data/tags/instance/a/b",
        "/2021-07-15/meta-data/instance-id",
    ):
        assert identity_path(other) is None, other


WORKER = {"sparkube:cluster": "c1", "sparkube:role": "worker"}


def test_boot_name_waits_for_up_then_takes_the_instance_id() -> None:
    def name(tags: dict[str, str], unnamed_for: float) -> tuple[str, str] | None:
        return boot_name(tags, 1, "i-0abc", unnamed_for=unnamed_for, grace=20.0)

    assert name(WORKER, 0.0) is None
    assert name(WORKER, 19.9) is None
    assert name(WORKER, 20.0) == ("i-0abc", "worker")
    # named by 'up' (or launched by it): sparkube's name, however long it took
    assert name({**WORKER, "sparkube:node": "worker-3"}, 0.0) == ("worker-3", "worker")
    assert name({**WORKER, "sparkube:node": "worker-3"}, 99.0) == ("worker-3", "worker")
    assert name({**WORKER, "sparkube:first-worker": "2"}, 0.0) == ("worker-3", "worker")
    cp = {"sparkube:cluster": "c1", "sparkube:role": "control-plane"}
    assert name(cp, 0.0) == ("control-plane", "control-plane")


class FakeBed:
    """What MotoMachines asks of a NodeBed, recorded; no machine boots."""

    def __init__(self) -> None:
        self.nodes: dict[str, Any] = {}
        self.calls: list[tuple[str, str]] = []
        self.booted: dict[str, dict[str, Any]] = {}

    def add_node(self, name: str, **kwargs: Any) -> None:
        self.nodes[name] = SimpleNamespace(stopping=False, process=None, up=True)
        self.booted[name] = kwargs
        self.calls.append(("add", name))

    def running(self, name: str) -> bool:
        return name in self.nodes and bool(self.nodes[name].up)

    def stop(self, name: str) -> None:
        self.nodes[name].up = False
        self.nodes[name].stopping = True
        self.calls.append(("stop", name))

    def remove(self, name: str) -> None:
        del self.nodes[name]
        self.calls.append(("remove", name))


def test_an_unnamed_worker_boots_under_its_instance_id_after_the_grace(
    moto_aws: MotoAws,
) -> None:
    ec2: Any = moto_aws.client("ec2")
    ec2.create_key_pair(KeyName="k1")

    def launch(tags: dict[str, str]) -> str:
        got = ec2.run_instances(
            ImageId=moto_aws.amis["amd64"],
            MinCount=1,
            MaxCount=1,
            KeyName="k1",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        return str(got["Instances"][0]["InstanceId"])

    lone = launch(WORKER)
    named_later = launch(WORKER)
    bed = FakeBed()
    machines = MotoMachines(bed, ec2, "c1", unnamed_grace=1.0)  # type: ignore[arg-type]
    machines._sync()
    assert bed.calls == []
    assert set(machines.unnamed_since) == {lone, named_later}
    ec2.create_tags(Resources=[named_later], Tags=[{"Key": "sparkube:node", "Value": "worker-4"}])
    machines._sync()  # 'up' named it: it boots at once, under that name
    assert bed.calls == [("add", "worker-4")]
    time.sleep(1.0)
    machines._sync()
    assert bed.calls == [("add", "worker-4"), ("add", lone)]
    assert bed.booted[lone]["control_plane"] is False
    assert machines.machines[lone].name == lone
    assert set(machines.by_name()) == {"worker-4", lone}
    ec2.stop_instances(InstanceIds=[lone])
    machines._sync()
    assert bed.calls[-1] == ("stop", lone)
    ec2.terminate_instances(InstanceIds=[lone])
    machines._sync()
    assert bed.calls[-1] == ("remove", lone)
    assert [e for e, _ in machines.machines[lone].events] == ["boot", "stop", "remove"]


def test_the_moto_server_answers_expect_continue_once(moto_aws: MotoAws) -> None:
    """A PUT with ``Expect: 100-continue`` gets one interim "100 Continue", then the
    answer (werkzeug would send two; Spark's s3a client fails on the second)."""
    import socket

    s3: Any = moto_aws.client("s3")
    s3.create_bucket(Bucket="continue")
    host, port = moto_aws.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # loopback only
        sock.sendall(
            b"PUT /continue/key HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
        sock.sendall(b"hello")
        rest = b""
        while b"\r\n\r\n" not in rest:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
    said = first + rest
    assert said.count(b"100 Continue") == 1, said
    assert b"HTTP/1.1 200" in said, said
