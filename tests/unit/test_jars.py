"""The S3 jars' fetch program, run as the pods run it (``python3 -c SOURCE FOLDER`` with
the rendered environment) against a local HTTP server: checksums, fallback, retries."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sparkube.spark import jarfetch, jars
from sparkube.spark.config import ClusterConfig
from sparkube.spark.image import SPARK_IMAGE, jar_file_name, maven_path
from sparkube.spark.podspec import Endpoints, fetch_jars_container


class Repo:
    """Paths -> (status, body) served on loopback; counts the requests per path."""

    def __init__(self) -> None:
        self.files: dict[str, list[tuple[int, bytes]]] = {}
        self.hits: dict[str, int] = {}
        self.stall: set[str] = set()
        self.url = ""

    def put(self, path: str, *answers: tuple[int, bytes]) -> None:
        self.files["/" + path] = list(answers)


@pytest.fixture
def repo() -> Iterator[Repo]:
    state = Repo()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            state.hits[path] = state.hits.get(path, 0) + 1
            if path in state.stall:
                time.sleep(1.5)
            answers = state.files.get(path) or [(404, b"")]
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on a stalled answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def run_container(
    container: dict[str, Any], folder: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The init container's command, as the pod runs it, with its folder here."""
    command = list(container["command"])
    assert command[:2] == ["python3", "-c"] and command[3] == jars.JARS_MOUNT
    command[0], command[3] = sys.executable, str(folder)
    pod_env = {e["name"]: e["value"] for e in container["env"]}
    return subprocess.run(
        command,
        env={"PATH": os.environ["PATH"], **pod_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_driver_refuses_a_corrupted_jar_and_names_it(repo: Repo, tmp_path: Path) -> None:
    """The rendered driver init container against a repository whose hadoop-aws is
    corrupted (right size, wrong bytes) and whose bucket copy is missing: it fails with
    the jar's name, the checksum it got and the one pinned, and keeps nothing of it."""
    bad = SPARK_IMAGE.s3_jars[0]  # hadoop-aws, first in the table
    assert jar_file_name(bad.coord) == "hadoop-aws-3.4.2.jar"
    repo.put(maven_path(bad.coord), (200, b"x" * bad.size))
    bucket = [
        f"{repo.url}/bucket/{jars.bucket_key(j)}?X-Amz-Signature=secret"
        for j in SPARK_IMAGE.s3_jars
    ]
    container = fetch_jars_container("img", repo.url, bucket)
    done = run_container(container, tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("sparkube: jar hadoop-aws-3.4.2.jar could not be fetched intact")
    assert f"expected {bad.size} bytes with SHA-256 {bad.sha256}" in last
    assert hashlib.sha256(b"x" * bad.size).hexdigest() in last
    assert "HTTP 404" in last  # the bucket was asked first
    assert "secret" not in done.stderr + done.stdout  # presigned signatures never shown
    assert not (tmp_path / "hadoop-aws-3.4.2.jar").exists()
    # a checksum mismatch is not retried at the same address (the same bytes would come)
    assert repo.hits["/" + maven_path(bad.coord)] == 1


def test_the_history_server_container_refuses_a_corrupted_jar(repo: Repo, tmp_path: Path) -> None:
    from sparkube.monitoring import addons

    config = ClusterConfig(cluster="c", bucket="b", region="us-east-1", worker_type="t3.large",
                              worker_cpu=2.0, worker_memory=8 * 2**30, workers=1)  # fmt: skip
    (dep,) = [d for d in addons.history_documents(config, Endpoints(jars=repo.url))
              if d["kind"] == "Deployment"]  # fmt: skip
    (init,) = dep["spec"]["template"]["spec"]["initContainers"]
    bad = SPARK_IMAGE.s3_jars[1]
    repo.put(maven_path(SPARK_IMAGE.s3_jars[0].coord), (200, b""))  # hadoop-aws: wrong size
    for jar in SPARK_IMAGE.s3_jars[2:]:
        repo.put(maven_path(jar.coord), (200, b"?"))
    repo.put(maven_path(bad.coord), (200, b"y"))
    done = run_container(init, tmp_path)
    assert done.returncode == 1
    assert "jar hadoop-aws-3.4.2.jar could not be fetched intact" in done.stderr


def fake_jars(repo: Repo, n: int) -> list[tuple[str, int, str, bytes]]:
    out = []
    for i in range(n):
        body = f"jar {i} ".encode() * (1000 + i)
        out.append((f"j{i}.jar", len(body), hashlib.sha256(body).hexdigest(), body))
    return out


def lines(entries: list[tuple[str, int, str, list[str]]]) -> str:
    return "\n".join(f"{n} {size} {sha} {' '.join(urls)}" for n, size, sha, urls in entries)


def test_bucket_first_then_repository_retries_and_skips_what_it_has(
    repo: Repo, tmp_path: Path
) -> None:
    made = fake_jars(repo, 4)
    entries = []
    for i, (name, size, sha, body) in enumerate(made):
        repo.put(f"maven/{name}", (200, body))
        if i == 0:  # in the bucket, intact
            repo.put(f"bucket/{name}", (200, body))
        elif i == 1:  # in the bucket, corrupted: the repository's copy is taken
            repo.put(f"bucket/{name}", (200, body[:-1] + b"!"))
        elif i == 2:  # the bucket errs twice (HTTP 503), then answers: retried
            repo.put(f"bucket/{name}", (503, b""), (500, b""), (200, body))
        # i == 3: not in the bucket (404): straight to the repository
        entries.append((name, size, sha, [f"{repo.url}/bucket/{name}", f"{repo.url}/maven/{name}"]))
    container = fetch_jars_container("img", "http://unused")
    done = run_container(container, tmp_path, {"SPARKUBE_JARS": lines(entries)})
    assert done.returncode == 0, done.stderr
    for name, _, _, body in made:
        assert (tmp_path / name).read_bytes() == body
    assert "4 jars" in done.stdout and "checked in" in done.stdout
    assert repo.hits == {
        "/bucket/j0.jar": 1, "/bucket/j1.jar": 1, "/maven/j1.jar": 1,
        "/bucket/j2.jar": 3, "/bucket/j3.jar": 1, "/maven/j3.jar": 1,
    }  # fmt: skip
    # a second run finds every jar intact where it is and fetches nothing
    again = run_container(container, tmp_path, {"SPARKUBE_JARS": lines(entries)})
    assert again.returncode == 0 and "4 from here" in again.stdout
    assert sum(repo.hits.values()) == 8


def test_a_stalled_address_times_out_and_the_next_one_serves(repo: Repo, tmp_path: Path) -> None:
    ((name, size, sha, body),) = fake_jars(repo, 1)
    repo.put(f"slow/{name}", (200, body))
    repo.stall.add(f"/slow/{name}")
    repo.put(f"maven/{name}", (200, body))
    started = time.monotonic()
    source = jarfetch.fetch_jar(
        name, size, sha, [f"{repo.url}/slow/{name}", f"{repo.url}/maven/{name}"], str(tmp_path),
        timeout=0.3, attempts=2, backoff=0.01,
    )  # fmt: skip
    assert source == 1
    assert repo.hits[f"/slow/{name}"] == 2  # both attempts timed out
    assert time.monotonic() - started < 5
    assert (tmp_path / name).read_bytes() == body


def test_every_jar_line_carries_the_pinned_checksum_and_both_addresses() -> None:
    urls = [f"https://b.s3.amazonaws.com/{jars.bucket_key(j)}?sig" for j in SPARK_IMAGE.s3_jars]
    parsed = jarfetch.parse(jars.fetch_lines("https://repo1.maven.org/maven2", urls))
    assert len(parsed) == len(SPARK_IMAGE.s3_jars) == 37
    for (name, size, sha, addresses), jar in zip(parsed, SPARK_IMAGE.s3_jars, strict=True):
        assert (name, size, sha) == (jar_file_name(jar.coord), jar.size, jar.sha256)
        assert len(sha) == 64 and jar.sha256 in addresses[0]
        assert addresses[1] == f"https://repo1.maven.org/maven2/{maven_path(jar.coord)}"
    assert len({j.sha256 for j in SPARK_IMAGE.s3_jars}) == 37


@pytest.mark.parametrize(
    ("endpoint", "token"),
    [("", "session-token/with+chars="), ("http://10.1.1.1:9000", ""), ("https://s3.example", "t")],
)
def test_the_s3_signature_is_the_one_botocore_computes(
    endpoint: str, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch program signs its bucket GETs itself (the image has no AWS SDK for
    Python): byte for byte the Authorization botocore's S3 signer makes for the same
    request, time and credentials."""
    import datetime

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    creds = {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"}
    if token:
        creds["Token"] = token
    url = (
        "s3://sparkube-c-us-east-1-0a1b2c3d/jars/" + SPARK_IMAGE.s3_jars[0].sha256 + "/x_y-1.0.jar"
    )
    when = datetime.datetime(2026, 12, 6, 18, 5, 9)
    ours = jarfetch.s3_request(
        url, creds, region="eu-west-3", endpoint=endpoint, when=when.timetuple()
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    theirs = AWSRequest(method="GET", url=ours.full_url)
    theirs.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = botocore.auth.S3SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], token or None),
        "s3",
        "eu-west-3",
    )
    signer.add_auth(theirs)
    assert ours.get_header("Authorization") == theirs.headers["Authorization"]
    if not endpoint:
        assert ours.full_url.startswith("https://sparkube-c-us-east-1-0a1b2c3d.s3.eu-west-3.")
    else:
        assert ours.full_url.startswith(f"{endpoint}/sparkube-c-us-east-1-0a1b2c3d/jars/")
