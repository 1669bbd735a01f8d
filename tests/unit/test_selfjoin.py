"""The self-join pieces that need no network: the worker script's SigV4 signature
against botocore's own signer, the template it fills, the join parameter's value."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sparkube.nodes import selfjoin
from sparkube.nodes.kubeadm import SELF_JOIN_FIELDS, JoinCommand, render_self_join_template


def load_script() -> ModuleType:
    path = Path(selfjoin.__file__).parent / "scripts" / "sparkube-join.py"
    spec = importlib.util.spec_from_file_location("sparkube_join_script", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_scripts_signature_is_botocores() -> None:
    script = load_script()
    now = dt.datetime(2026, 12, 7, 6, 5, 4, tzinfo=dt.UTC)
    body = json.dumps({"Name": "/sparkube/demo/join", "WithDecryption": True}).encode()
    for token in ("", "FwoGZXIvYXdzEXAMPLEsessiontoken"):
        ours = script.sigv4_headers(
            host="ssm.eu-west-3.amazonaws.com", region="eu-west-3", access_key="ASIAEXAMPLE",
            secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", session_token=token,
            body=body, now=now,
        )  # fmt: skip
        request = AWSRequest(
            method="POST",
            url="https://ssm.eu-west-3.amazonaws.com/",
            data=body,
            headers={k: v for k, v in ours.items() if k != "authorization"},
        )
        request.context["timestamp"] = ours["x-amz-date"]
        secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        creds = Credentials("ASIAEXAMPLE", secret, token or None)
        auth = SigV4Auth(creds, "ssm", "eu-west-3")
        expected = auth.signature(
            auth.string_to_sign(request, auth.canonical_request(request)), request
        )
        assert ours["authorization"].endswith(f"Signature={expected}")
        assert "Credential=ASIAEXAMPLE/20261207/eu-west-3/ssm/aws4_request" in ours["authorization"]


def test_the_template_has_every_field_and_the_script_fills_them_all() -> None:
    script = load_script()
    template = render_self_join_template()
    for field in SELF_JOIN_FIELDS:
        assert field in template
    value = json.loads(
        selfjoin.parameter_value(
            JoinCommand("10.0.1.23:6443", "abcdef.0123456789abcdef", ("sha256:" + "ab" * 32,)),
            dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC),
        )
    )
    who = {"instance_id": "i-0abc", "zone": "eu-west-3b", "private_ip": "10.0.2.9"}
    filled = script.render(template, value, who, "i-0abc")
    assert "@" not in filled
    (doc,) = yaml.safe_load_all(filled)
    assert doc["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "10.0.1.23:6443",
        "token": "abcdef.0123456789abcdef",
        "caCertHashes": ["sha256:" + "ab" * 32],
    }
    assert doc["nodeRegistration"]["name"] == "i-0abc"
    assert {"name": "provider-id", "value": "aws:///eu-west-3b/i-0abc"} in doc["nodeRegistration"][
        "kubeletExtraArgs"
    ]
    assert {"name": "node-ip", "value": "10.0.2.9"} in doc["nodeRegistration"]["kubeletExtraArgs"]
    # no market in the metadata: on-demand
    assert {"name": "node-labels", "value": "sparkube.io/market=on-demand"} in doc[
        "nodeRegistration"
    ]["kubeletExtraArgs"]


def test_the_parameter_is_renewed_before_its_token_runs_out() -> None:
    now = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)
    join = JoinCommand("10.0.1.23:6443", "abcdef.0123456789abcdef", ("sha256:" + "ab" * 32,))
    fresh = selfjoin.parameter_value(join, now + selfjoin.TOKEN_TTL)
    assert json.loads(fresh)["expires"] == "2026-12-07T08:00:00Z"
    assert not selfjoin.needs_renewal(fresh, now)
    assert selfjoin.needs_renewal(fresh, now + selfjoin.TOKEN_TTL - selfjoin.RENEW_BEFORE)
    assert selfjoin.needs_renewal(None, now) and selfjoin.needs_renewal("not json", now)
    assert selfjoin.parameter_name("demo") == "/sparkube/demo/join"
    assert selfjoin.parameter_arn("eu-west-3", "123456789012", "demo") == (
        "arn:aws:ssm:eu-west-3:123456789012:parameter/sparkube/demo/join"
    )
    assert "def main(" in selfjoin.join_script()


def test_the_worker_user_data_installs_the_self_join_and_fits_ec2s_limit() -> None:
    import subprocess
    from datetime import UTC, datetime

    from sparkube.aws import userdata
    from sparkube.nodes import kubeadm, prepare
    from sparkube.spec import ClusterSpec

    block = selfjoin.user_data_block(
        "demo", template=kubeadm.render_self_join_template(), ssm_endpoint="http://10.0.0.1:5"
    )
    text = userdata.render(
        prepare.render_prepare_script(ClusterSpec(name="demo")),
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        role="worker",
        before_prepare=block,
    )
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    assert len(userdata.encode(text)) <= userdata.USER_DATA_LIMIT
    # each file whole, between its own delimiters; the unit started without waiting for
    # it (it waits for the preparation that the user data runs after it)
    for path, body in (
        (selfjoin.SCRIPT_PATH, selfjoin.join_script()),
        (selfjoin.RUNNER_PATH, selfjoin.runner("demo", ssm_endpoint="http://10.0.0.1:5")),
        (selfjoin.UNIT_PATH, selfjoin.unit()),
    ):
        assert f"cat > {path} <<'" in block
        assert body.rstrip("\n") in block
    assert f"systemctl start --no-block {selfjoin.UNIT_NAME}" in block
    assert text.index(block) < text.index("exec /var/lib/sparkube/prepare.sh")
    runner = selfjoin.runner("demo", ssm_endpoint="http://10.0.0.1:5")
    assert "--parameter /sparkube/demo/join" in runner
    assert f"--skip-if-tagged {selfjoin.NAMED_TAG}" in runner
    assert "--ssm-endpoint http://10.0.0.1:5" in runner
    assert "--ssm-endpoint" not in selfjoin.runner("demo")  # AWS's own endpoint by default
    # the configuration (it holds the token) never outlives the join
    assert runner.rstrip().endswith(f"rm -f {selfjoin.CONFIG_PATH}\nexit $status")


def test_the_node_role_may_read_its_own_join_parameter_only() -> None:
    from sparkube.aws import iam

    arn = selfjoin.parameter_arn("eu-west-3", "123456789012", "demo")
    (statement,) = iam.join_policy(arn)["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("ssm:GetParameter", arn)
    assert arn == "arn:aws:ssm:eu-west-3:123456789012:parameter/sparkube/demo/join"
