"""A worker's join script (``sparkube/nodes/scripts/sparkube-join.py``) as a node runs
it: a ``python3`` process that reads its identity and its role's credentials from an
instance metadata service (IMDSv2, token first) and the cluster's join parameter from
SSM with a SigV4-signed ``GetParameter``, then writes the JoinConfiguration 0600.

The SSM side is a moto server in its own process with moto's request authentication
switched on (``/moto-api/reset-auth``): moto recomputes each request's SigV4 signature
and evaluates the caller's policies, so a wrongly signed request, a wrong session token
or a role without ``ssm:GetParameter`` is refused as AWS would refuse it. The role's
credentials are real STS ``AssumeRole`` ones of that moto. moto evaluates SSM calls
against resource ``*`` (it has no resource for them), so the role's policy here names
``*``; the parameter's own ARN in the shipped policy is checked elsewhere.

The metadata service is a stand-in on loopback written for this test (the paths and
the token header an EC2 instance's IMDSv2 has).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from sparkube.nodes import selfjoin
from sparkube.nodes.kubeadm import JoinCommand, render_self_join_template

pytestmark = pytest.mark.integration

REGION = "eu-west-3"
SCRIPT = Path(selfjoin.__file__).parent / "scripts" / "sparkube-join.py"
JOIN = JoinCommand("10.0.1.23:6443", "abcdef.0123456789abcdef", ("sha256:" + "ab" * 32,))
INSTANCE = "i-0123456789abcdef0"
#: What a worker its group launched has as tags before ``up`` names it (if ever).
GROUP_TAGS = {"aws:autoscaling:groupName": "sparkube-demo-workers"}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class FakeImds(http.server.ThreadingHTTPServer):
    """IMDSv2 of one instance: a PUT for a token, then GETs that carry it."""

    def __init__(self, creds: dict[str, str], tags: dict[str, str] | None) -> None:
        """``tags``: the instance's tags in its metadata; None as with
        ``InstanceMetadataTags`` disabled (the listing answers 404)."""
        self.creds = creds
        self.tags = tags
        self.token = "imds-session-token"
        super().__init__(("127.0.0.1", 0), _ImdsHandler)

    def answer(self, path: str) -> str | None:
        base = "/latest/meta-data/"
        role = "sparkube-demo-node"
        if self.tags is not None:
            if path == f"{base}tags/instance":
                return "\n".join(self.tags)
            if path.startswith(f"{base}tags/instance/"):
                return self.tags.get(path.rsplit("/", 1)[1])
        return {
            f"{base}instance-id": INSTANCE,
            f"{base}local-ipv4": "10.0.2.9",
            f"{base}placement/availability-zone": f"{REGION}b",
            f"{base}placement/region": REGION,
            f"{base}instance-life-cycle": "spot",
            f"{base}iam/security-credentials/": role,
            f"{base}iam/security-credentials/{role}": json.dumps(
                {"Code": "Success", "Type": "AWS-HMAC", **self.creds}
            ),
        }.get(path)


class _ImdsHandler(http.server.BaseHTTPRequestHandler):
    server: FakeImds

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        if self.path == "/latest/api/token" and self.headers.get(
            "X-aws-ec2-metadata-token-ttl-seconds"
        ):
            self._send(200, self.server.token)
        else:
            self._send(400, "")

    def do_GET(self) -> None:
        if self.headers.get("X-aws-ec2-metadata-token") != self.server.token:
            self._send(401, "")  # IMDSv2 only, as sparkube's launch template asks
            return
        answer = self.server.answer(self.path)
        self._send(200, answer) if answer is not None else self._send(404, "")


@contextlib.contextmanager
def imds(creds: dict[str, str], tags: dict[str, str] | None = GROUP_TAGS) -> Iterator[str]:
    server = FakeImds(creds, tags)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def role_credentials(url: str, name: str, actions: list[str]) -> dict[str, str]:
    iam = client(url, "iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    if actions:
        allow = {"Effect": "Allow", "Action": actions, "Resource": "*"}
        policy = {"Version": "2012-10-17", "Statement": [allow]}
        iam.put_role_policy(RoleName=name, PolicyName="node", PolicyDocument=json.dumps(policy))
    arn = f"arn:aws:iam::123456789012:role/{name}"
    got = client(url, "sts").assume_role(RoleArn=arn, RoleSessionName=INSTANCE)["Credentials"]
    return {
        "AccessKeyId": got["AccessKeyId"],
        "SecretAccessKey": got["SecretAccessKey"],
        "Token": got["SessionToken"],
    }


def run_script(
    tmp_path: Path,
    moto: str,
    imds_url: str,
    parameter: str,
    wait: float = 5,
    keep: bool = False,
    skip_if_tagged: str = selfjoin.NAMED_TAG,
) -> subprocess.CompletedProcess[str]:
    template = tmp_path / "join.template.yaml"
    template.write_text(render_self_join_template())
    out = tmp_path / "join.yaml"
    if not keep:
        out.unlink(missing_ok=True)
    return subprocess.run(
        ["python3", str(SCRIPT), "--parameter", parameter, "--template", str(template),
         "--out", str(out), "--ssm-endpoint", moto, "--imds", imds_url, "--wait", str(wait),
         *(["--skip-if-tagged", skip_if_tagged] if skip_if_tagged else [])],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )  # fmt: skip


def set_auth(url: str, on: bool) -> None:
    data = b"0" if on else b"inf"
    urllib.request.urlopen(
        urllib.request.Request(
            f"{url}/moto-api/reset-auth", data=data, method="POST",
            headers={"Content-Type": "text/plain"},  # a form body would reach moto empty
        ),
        timeout=5,
    ).close()  # fmt: skip


def test_a_worker_reads_its_join_parameter_with_its_role_and_writes_its_config(
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC)
    with moto_process() as moto:
        ssm = client(moto, "ssm")
        name = selfjoin.parameter_name("demo")
        value = selfjoin.parameter_value(JOIN, now + selfjoin.TOKEN_TTL)
        ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        stale = selfjoin.parameter_name("stale")
        ssm.put_parameter(
            Name=stale, Value=selfjoin.parameter_value(JOIN, now - dt.timedelta(minutes=5)),
            Type="SecureString",
        )  # fmt: skip
        node = role_credentials(moto, "sparkube-demo-node", ["ssm:GetParameter"])
        other = role_credentials(moto, "sparkube-demo-other", ["s3:GetObject"])
        set_auth(moto, True)
        try:
            with imds(node) as url:
                out = tmp_path / "join.yaml"
                out.write_text("an earlier file, readable by all\n")
                out.chmod(0o644)
                ok = run_script(tmp_path, moto, url, name, keep=True)
                assert ok.returncode == 0, ok.stderr
                assert f"written for {INSTANCE} in {REGION}b" in ok.stdout
                assert sorted(p.name for p in tmp_path.iterdir()) == [
                    "join.template.yaml",
                    "join.yaml",
                ]  # no temporary file left
                assert stat.S_IMODE(out.stat().st_mode) == 0o600
                (doc,) = yaml.safe_load_all(out.read_text())
                assert doc["discovery"]["bootstrapToken"]["token"] == JOIN.token
                assert doc["discovery"]["bootstrapToken"]["apiServerEndpoint"] == JOIN.endpoint
                assert doc["nodeRegistration"]["name"] == INSTANCE
                assert {"name": "provider-id", "value": f"aws:///{REGION}b/{INSTANCE}"} in doc[
                    "nodeRegistration"
                ]["kubeletExtraArgs"]
                # its market from the metadata, as a node label set at registration
                assert {"name": "node-labels", "value": "sparkube.io/market=spot"} in doc[
                    "nodeRegistration"
                ]["kubeletExtraArgs"]
                assert JOIN.token not in ok.stdout + ok.stderr

                # no parameter (yet): waits, then one line naming it, exit 3
                missing = run_script(tmp_path, moto, url, selfjoin.parameter_name("none"), 1)
                assert missing.returncode == 3, missing.stderr
                assert "no usable join parameter /sparkube/none/join after 1 s" in missing.stderr
                # an expired token is never used
                old = run_script(tmp_path, moto, url, stale, 1)
                assert old.returncode == 3, old.stderr
                assert "its bootstrap token expired at" in old.stderr
                assert not (tmp_path / "join.yaml").exists()

            # a role without ssm:GetParameter is refused by AWS (moto): retried until
            # --wait runs out (a new role takes a while on AWS), then exit 4
            with imds(other) as url:
                refused = run_script(tmp_path, moto, url, name, 2)
            assert refused.returncode == 4, refused.stderr
            assert "AWS refused reading /sparkube/demo/join: AccessDenied" in refused.stderr

            # a wrong secret: moto recomputes the signature and refuses it
            with imds({**node, "SecretAccessKey": "not-the-secret"}) as url:
                forged = run_script(tmp_path, moto, url, name, 1)
            assert forged.returncode == 4, forged.stderr
            assert "SignatureDoesNotMatch" in forged.stderr
        finally:
            set_auth(moto, False)


def test_a_worker_up_named_is_left_to_up_and_one_without_tags_in_its_metadata_stops(
    tmp_path: Path,
) -> None:
    """``up`` joins the workers it names (tag ``sparkube:node``) over SSH: their
    self-join writes nothing. Without the tags in the metadata it cannot tell: exit 5,
    one line (no AWS call is needed for either, so no SSM here)."""
    creds = {"AccessKeyId": "AKIA", "SecretAccessKey": "s", "Token": "t"}
    nowhere = f"http://127.0.0.1:{_free_port()}"  # SSM is never reached
    with imds(creds, {selfjoin.NAMED_TAG: "worker-2", "Name": "demo-worker-2"}) as url:
        named = run_script(tmp_path, nowhere, url, selfjoin.parameter_name("demo"), 1)
    assert named.returncode == 0, named.stderr
    assert "this instance is worker-2, named by 'sparkube up', which joins it" in named.stdout
    assert not (tmp_path / "join.yaml").exists()

    with imds(creds, None) as url:
        blind = run_script(tmp_path, nowhere, url, selfjoin.parameter_name("demo"), 1)
    assert blind.returncode == 5, blind.stderr
    assert "tags are not in its metadata" in blind.stderr
    assert len(blind.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "join.yaml").exists()
