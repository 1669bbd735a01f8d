#!/usr/bin/env python3
"""A worker's own way into the cluster (issue 19, item 3), run by its user data.

It reads, with nothing but Python's standard library:

1. its identity from the instance metadata service (IMDSv2: a session token first):
   instance id, Availability Zone, region, market (spot or on-demand), and the
   instance role's temporary
   credentials;
2. the cluster's join parameter from SSM Parameter Store (a SecureString that only the
   node role may read), with a SigV4-signed ``AmazonSSM.GetParameter`` call: the API
   server's address, a bootstrap token that expires, the CA certificate's hash;

then writes kubeadm's JoinConfiguration from the template ``up`` put in the user data,
with the node's name and ``providerID`` ``aws:///ZONE/INSTANCE``. The token is never
in the user data and never on the command line; the configuration file is 0600.

Everything is retried until ``--wait`` runs out (the metadata service and the network
come up with the instance; a new role takes a while to be honoured; many workers
launched at once are throttled). Exit codes: 0 written (or nothing to do: with
``--skip-if-tagged sparkube:node``, an instance ``sparkube up`` has named, which up
joins over SSH); 2 a bad argument; 3 the parameter never came (or its token had
expired) in time; 4 AWS kept refusing the call (the message names why); 5 the instance's
tags are not in its metadata, so it cannot tell. Each failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request

IMDS = "http://169.254.169.254"
SERVICE = "ssm"
TARGET = "AmazonSSM.GetParameter"


class Refused(Exception):
    """AWS answered with an error that waiting will not cure."""


class NoTags(Exception):
    """The instance's tags are not in its metadata (``InstanceMetadataTags`` disabled)."""


# ----------------------------------------------------------------- instance metadata


def imds_token(base: str) -> str:
    req = urllib.request.Request(
        f"{base}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(resp.read().decode())


def imds_get(base: str, token: str, path: str) -> str:
    req = urllib.request.Request(
        f"{base}/latest/{path}", headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(resp.read().decode())


def identity(base: str) -> dict[str, str]:
    """instance id, zone, region and the role's credentials, from the metadata service."""
    token = imds_token(base)
    zone = imds_get(base, token, "meta-data/placement/availability-zone").strip()
    try:
        region = imds_get(base, token, "meta-data/placement/region").strip()
    except urllib.error.HTTPError:
        region = zone[:-1]  # us-east-1a -> us-east-1
    role = imds_get(base, token, "meta-data/iam/security-credentials/").split()[0]
    creds = json.loads(imds_get(base, token, f"meta-data/iam/security-credentials/{role}"))
    try:  # "spot" or "on-demand" on EC2
        market = imds_get(base, token, "meta-data/instance-life-cycle").strip() or "on-demand"
    except urllib.error.HTTPError:
        market = "on-demand"
    return {
        "market": market,
        "instance_id": imds_get(base, token, "meta-data/instance-id").strip(),
        "private_ip": imds_get(base, token, "meta-data/local-ipv4").strip(),
        "zone": zone,
        "region": region,
        "access_key": creds["AccessKeyId"],
        "secret_key": creds["SecretAccessKey"],
        "session_token": creds.get("Token", ""),
    }


def tag(base: str, key: str) -> str | None:
    """The instance's tag ``key`` from its metadata; None when it has no such tag.
    Raises :class:`NoTags` when the metadata has no tags at all (not enabled)."""
    token = imds_token(base)
    try:
        keys = imds_get(base, token, "meta-data/tags/instance").split()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NoTags() from None
        raise
    if key not in keys:
        return None
    return imds_get(base, token, f"meta-data/tags/instance/{key}").strip()


# ----------------------------------------------------------------- SigV4


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(
    *,
    host: str,
    region: str,
    access_key: str,
    secret_key: str,
    session_token: str,
    body: bytes,
    now: dt.datetime,
    service: str = SERVICE,
    target: str = TARGET,
) -> dict[str, str]:
    """Headers of a signed AWS JSON 1.1 POST to ``/`` (Signature Version 4)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": host,
        "x-amz-date": amz_date,
        "x-amz-target": target,
    }
    if session_token:
        headers["x-amz-security-token"] = session_token
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_key).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def get_parameter(endpoint: str, who: dict[str, str], name: str) -> str | None:
    """The parameter's decrypted value; None when it does not exist (yet)."""
    body = json.dumps({"Name": name, "WithDecryption": True}).encode()
    host = endpoint.split("://", 1)[1].split("/", 1)[0]
    headers = sigv4_headers(
        host=host,
        region=who["region"],
        access_key=who["access_key"],
        secret_key=who["secret_key"],
        session_token=who["session_token"],
        body=body,
        now=dt.datetime.now(dt.UTC),
    )
    req = urllib.request.Request(endpoint.rstrip("/") + "/", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.loads(resp.read())["Parameter"]["Value"])
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        kind, message = error_of(text, exc.code)
        if kind == "ParameterNotFound":
            return None
        raise Refused(f"{kind}: {message}".strip(": ")) from None


def error_of(text: str, status: int) -> tuple[str, str]:
    """(code, message) of an AWS error body: JSON (``__type``, as SSM answers) or XML
    (``<Code>``, as an authentication failure may come)."""
    try:
        err = json.loads(text)
        return str(err.get("__type", "")).rsplit("#", 1)[-1], str(
            err.get("message") or err.get("Message") or ""
        )
    except (ValueError, AttributeError):
        pass
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    if code:
        return code.group(1), message.group(1) if message else ""
    return f"HTTP {status}", text[:200]


# ----------------------------------------------------------------- the join configuration


def expired(value: dict[str, str], now: dt.datetime) -> bool:
    expires = dt.datetime.fromisoformat(value["expires"].replace("Z", "+00:00"))
    return expires <= now + dt.timedelta(seconds=60)  # a join takes well under a minute


def render(template: str, value: dict[str, str], who: dict[str, str], node_name: str) -> str:
    fields = {
        "@ENDPOINT@": value["endpoint"],
        "@TOKEN@": value["token"],
        "@CA_CERT_HASH@": value["ca_cert_hash"],
        "@NODE_NAME@": node_name,
        "@NODE_IP@": who["private_ip"],
        "@PROVIDER_ID@": f"aws:///{who['zone']}/{who['instance_id']}",
        "@MARKET@": "spot" if who.get("market") == "spot" else "on-demand",
    }
    for placeholder, text in fields.items():
        template = template.replace(placeholder, text)
    return template


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parameter", required=True, help="the SSM parameter's name")
    p.add_argument("--template", required=True, help="JoinConfiguration with @FIELDS@")
    p.add_argument("--out", required=True, help="where to write the configuration (0600)")
    p.add_argument("--ssm-endpoint", default="", help="default https://ssm.REGION.amazonaws.com")
    p.add_argument("--imds", default=IMDS, help="the instance metadata service")
    p.add_argument("--wait", type=float, default=900.0, help="seconds to wait for the parameter")
    p.add_argument("--node-name", default="", help="default: the instance id")
    p.add_argument(
        "--skip-if-tagged",
        default="",
        metavar="KEY",
        help="write nothing (exit 0) when the instance has this tag: 'sparkube up' named "
        "the node and joins it itself; exit 5 when the metadata has no tags to tell",
    )
    args = p.parse_args(argv)

    if args.ssm_endpoint and "://" not in args.ssm_endpoint:
        print(f"sparkube-join: --ssm-endpoint {args.ssm_endpoint!r} needs a scheme "
              "(https://...).", file=sys.stderr)  # fmt: skip
        return 2
    deadline = time.monotonic() + args.wait
    why, refused = "it does not exist", ""
    while True:
        try:
            if args.skip_if_tagged:
                named = tag(args.imds, args.skip_if_tagged)
                if named is not None:
                    print(f"sparkube-join: this instance is {named}, named by 'sparkube up', "
                          "which joins it: nothing to do.")  # fmt: skip
                    return 0
            who = identity(args.imds)
            endpoint = args.ssm_endpoint or f"https://ssm.{who['region']}.amazonaws.com"
            raw = get_parameter(endpoint, who, args.parameter)
            refused = ""
            if raw is not None:
                value = json.loads(raw)
                if not isinstance(value, dict):
                    raise ValueError("the parameter is not a JSON object")
                if not expired(value, dt.datetime.now(dt.UTC)):
                    break
                why = f"its bootstrap token expired at {value['expires']}"
        except NoTags:
            print(
                "sparkube-join: the instance's tags are not in its metadata "
                "(InstanceMetadataTags disabled), so it cannot tell whether 'sparkube up' "
                "joins it; run 'sparkube up' again to update the launch template.",
                file=sys.stderr,
            )
            return 5
        except Refused as exc:  # throttled, not allowed yet, credentials expiring: again
            refused = str(exc)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            why = f"{type(exc).__name__}: {exc}"  # metadata or network not there yet
        if time.monotonic() >= deadline:
            if refused:
                print(f"sparkube-join: AWS refused reading {args.parameter}: {refused}",
                      file=sys.stderr)  # fmt: skip
                return 4
            print(
                f"sparkube-join: no usable join parameter {args.parameter} after "
                f"{args.wait:.0f} s ({why}); run 'sparkube up' again to renew it.",
                file=sys.stderr,
            )
            return 3
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))

    with open(args.template, encoding="utf-8") as f:
        template = f.read()
    text = render(template, value, who, args.node_name or who["instance_id"])
    # a new file, 0600 from its first byte, then renamed over any earlier one (whose
    # mode would otherwise be kept)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, args.out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    print(f"sparkube-join: {args.out} written for {who['instance_id']} in {who['zone']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
