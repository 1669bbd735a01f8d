"""Fetch jars into a folder, each checked against its pinned size and SHA-256.

This file is a program of its own (standard library only, Python 3.10 as in the Spark
image, which has no curl): pods run its source with ``python3 -c`` (sparkube.spark.jars
passes it), and ``up`` imports it to fill the local jar cache the same way.

Input: ``SPARKUBE_JARS``, one line per jar, ``NAME SIZE SHA256 URL [URL ...]``; the
addresses are tried in order (the cluster's bucket first, then the Maven repository).
An ``s3://BUCKET/KEY`` address is read with the node's instance role: credentials from
instance metadata (IMDSv2; ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` elsewhere), the GET
signed with Signature Version 4 for ``SPARKUBE_S3_REGION`` (``SPARKUBE_S3_ENDPOINT``, path
style, where pods reach S3 elsewhere than AWS's regional endpoint).
Each address gets a few attempts with a timeout on every connection and read; an HTTP
4xx or a wrong checksum moves on to the next address at once (the same bytes would come
back). A jar that no address gives intact fails the run with one line naming the jar
and what each address answered. Query strings (presigned signatures) are never printed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

#: Seconds a connection or a read may stall before the attempt counts as failed.
TIMEOUT = 20.0
#: Attempts per address for transient failures (network errors, timeouts, HTTP 5xx/429).
ATTEMPTS = 3
#: Jars fetched at once.
PARALLEL = 6


class JarError(Exception):
    """A jar no address gave intact; the message names it."""


def _shown(url: str) -> str:
    return url.split("?", 1)[0]


_credentials: list[dict[str, str]] = []
_credentials_lock = threading.Lock()


def _imds(path: str, token: str, timeout: float) -> str:
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254"
    request = urllib.request.Request(
        base.rstrip("/") + path, headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return str(resp.read().decode())


def role_credentials(timeout: float = 5.0) -> dict[str, str]:
    """The instance role's credentials from instance metadata (IMDSv2), read once."""
    with _credentials_lock:
        if not _credentials:
            base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254"
            put = urllib.request.Request(
                base.rstrip("/") + "/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"},
            )
            with urllib.request.urlopen(put, timeout=timeout) as resp:
                token = resp.read().decode()
            where = "/latest/meta-data/iam/security-credentials/"
            role = _imds(where, token, timeout).split()[0]
            try:
                _credentials.append(json.loads(_imds(where + role, token, timeout)))
            except ValueError as exc:
                raise OSError(f"instance metadata gave no credentials: {exc}") from None
        return _credentials[0]


def s3_request(url: str, credentials: dict[str, str], *, region: str, endpoint: str = "",
               when: time.struct_time | None = None) -> urllib.request.Request:  # fmt: skip
    """A GET of ``s3://BUCKET/KEY`` signed with Signature Version 4 (unsigned payload)."""
    bucket, key = url[len("s3://") :].split("/", 1)
    if endpoint:
        base = endpoint.rstrip("/")
        path = f"/{bucket}/{key}"
    else:
        base = f"https://{bucket}.s3.{region}.amazonaws.com"
        path = f"/{key}"
    path = urllib.parse.quote(path, safe="/-_.~")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", when or time.gmtime())
    headers = {
        "host": urllib.parse.urlsplit(base).netloc,
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        "x-amz-date": stamp,
    }
    if credentials.get("Token"):
        headers["x-amz-security-token"] = credentials["Token"]
    names = ";".join(sorted(headers))
    canonical = "\n".join(
        ["GET", path, ""]
        + [f"{k}:{headers[k]}" for k in sorted(headers)]
        + ["", names, "UNSIGNED-PAYLOAD"]
    )
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key_bytes = ("AWS4" + credentials["SecretAccessKey"]).encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials['AccessKeyId']}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return urllib.request.Request(base + path, headers=headers)


def _request(url: str) -> str | urllib.request.Request:
    if not url.startswith("s3://"):
        return url
    region = os.environ.get("SPARKUBE_S3_REGION", "")
    if not region:
        raise OSError("SPARKUBE_S3_REGION is not set for an s3:// address")
    try:
        return s3_request(url, role_credentials(), region=region,
                          endpoint=os.environ.get("SPARKUBE_S3_ENDPOINT", ""))  # fmt: skip
    except (KeyError, IndexError) as exc:
        raise OSError(f"instance metadata gave no usable credentials ({exc!r})") from None


def _sha256_of(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def fetch_jar(
    name: str,
    size: int,
    sha256: str,
    urls: list[str],
    folder: str,
    *,
    timeout: float = TIMEOUT,
    attempts: int = ATTEMPTS,
    backoff: float = 1.0,
) -> int:
    """Put ``folder/name`` in place, intact; return the index of the address that gave
    it (-1: it was already there). Raises :class:`JarError` naming the jar."""
    target = os.path.join(folder, name)
    if _sha256_of(target) == sha256:
        return -1
    said = []
    for index, url in enumerate(urls):
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(_request(url), timeout=timeout) as resp:
                    data = resp.read()
            except urllib.error.HTTPError as exc:
                said.append(f"{_shown(url)}: HTTP {exc.code}")
                if exc.code < 500 and exc.code != 429:
                    break
            except OSError as exc:  # refused, reset, DNS, timeout (URLError is one)
                said.append(f"{_shown(url)}: {getattr(exc, 'reason', None) or exc}")
            else:
                got = hashlib.sha256(data).hexdigest()
                if got == sha256 and len(data) == size:
                    part = f"{target}.{os.getpid()}.part"
                    with open(part, "wb") as f:
                        f.write(data)
                    os.replace(part, target)
                    return index
                said.append(
                    f"{_shown(url)}: {len(data)} bytes with SHA-256 {got}, "
                    f"expected {size} bytes with SHA-256 {sha256}"
                )
                break
            if attempt + 1 < attempts:
                time.sleep(backoff * 2**attempt)
    raise JarError(f"jar {name} could not be fetched intact: " + "; ".join(said))


def parse(lines: str) -> list[tuple[str, int, str, list[str]]]:
    """``NAME SIZE SHA256 URL...`` lines -> (name, size, sha256, urls)."""
    jars = []
    for line in lines.splitlines():
        if line.strip():
            name, size, sha256, *urls = line.split()
            jars.append((name, int(size), sha256, urls))
    return jars


def fetch_all(
    jars: list[tuple[str, int, str, list[str]]], folder: str, **options: float
) -> list[int]:
    """Every jar in ``folder``; the index of the address each came from (-1: had it).
    Raises :class:`JarError` for the first jar (in the given order) that failed."""
    os.makedirs(folder, exist_ok=True)

    def one(jar: tuple[str, int, str, list[str]]) -> int | JarError:
        try:
            return fetch_jar(*jar, folder, **options)  # type: ignore[arg-type]
        except JarError as exc:
            return exc

    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(one, jars))
    for result in results:
        if isinstance(result, JarError):
            raise result
    return [r for r in results if not isinstance(r, JarError)]


def main() -> int:
    folder = sys.argv[1]
    jars = parse(os.environ.get("SPARKUBE_JARS", ""))
    started = time.monotonic()
    try:
        sources = fetch_all(jars, folder)
    except JarError as exc:
        print(f"sparkube: {exc}", file=sys.stderr, flush=True)
        return 1
    total = sum(size for _, size, _, _ in jars)
    counts = ", ".join(
        f"{sources.count(i)} from {_shown(jars[0][3][i]).split('/')[2] if i >= 0 else 'here'}"
        for i in sorted(set(sources))
    )
    print(
        f"sparkube: {len(jars)} jars ({total / 2**20:.1f} MiB) checked in "
        f"{time.monotonic() - started:.1f} s ({counts})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
