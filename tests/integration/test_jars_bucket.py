"""The S3 jars into a cluster's bucket (sparkube.spark.jars) against the moto server, from
the session's loopback Maven repository (tools/spark/build.sh's folder): once, then only
what is missing or wrong; a repository that cannot give them does not fail ``up``."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
from pathlib import Path
from typing import Any

import pytest

from sparkube.env import Environment
from sparkube.progress import RecordingReporter
from sparkube.spark import jars
from sparkube.spark.image import SPARK_IMAGE
from sparkube.spark.phase import stock_jars
from tests.fixtures.moto_server import MotoAws
from tests.fixtures.sparklayer import spark_layer

pytestmark = pytest.mark.integration


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def _bucket(moto_aws: MotoAws, name: str) -> Any:
    s3: Any = moto_aws.client("s3")
    s3.create_bucket(Bucket=name)
    return s3


def test_the_jars_go_into_the_bucket_once_and_wrong_ones_again(
    moto_aws: MotoAws, tmp_path: Path
) -> None:
    if spark_layer() is None:
        pytest.skip("Spark image layer not built: run bash tools/spark/build.sh")
    repository = moto_aws.env.environ["SPARKUBE_JARS_REPOSITORY"]
    assert repository.startswith("http://127.0.0.1:")  # never Maven Central in tests
    s3 = _bucket(moto_aws, "sparkube-jars-test")
    cache = tmp_path / "cache"
    first = jars.ensure_in_bucket(s3, "sparkube-jars-test", repository=repository, cache=cache)
    assert (first.downloaded, first.uploaded) == (37, 37)
    assert first.bytes_uploaded == SPARK_IMAGE.s3_jars_bytes
    listed = s3.list_objects_v2(Bucket="sparkube-jars-test", Prefix="jars/")["Contents"]
    assert {o["Key"]: o["Size"] for o in listed} == {
        jars.bucket_key(j): j.size for j in SPARK_IMAGE.s3_jars
    }
    # a second up: one List, nothing fetched or uploaded
    again = jars.ensure_in_bucket(s3, "sparkube-jars-test", repository=repository, cache=cache)
    assert (again.downloaded, again.uploaded) == (0, 0)
    # an object of the wrong size is put again, from the cache (checked there again)
    broken = SPARK_IMAGE.s3_jars[3]
    s3.put_object(Bucket="sparkube-jars-test", Key=jars.bucket_key(broken), Body=b"torn")
    fixed = jars.ensure_in_bucket(s3, "sparkube-jars-test", repository=repository, cache=cache)
    assert (fixed.downloaded, fixed.uploaded) == (0, 1)
    body = s3.get_object(Bucket="sparkube-jars-test", Key=jars.bucket_key(broken))["Body"]
    assert len(body.read()) == broken.size


def test_a_repository_without_the_jars_is_reported_and_up_goes_on(
    moto_aws: MotoAws, tmp_path: Path
) -> None:
    """Nothing fetched, nothing uploaded, one step saying so: jobs then use the Maven
    repository themselves. The repository answers 404 at once (no retries for that)."""
    (tmp_path / "empty").mkdir()
    handler = functools.partial(_Quiet, directory=str(tmp_path / "empty"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        environ = {
            **moto_aws.env.environ,
            "SPARKUBE_JARS_REPOSITORY": f"http://127.0.0.1:{server.server_address[1]}",
        }
        env: Environment = dataclasses.replace(moto_aws.env, environ=environ)
        s3 = _bucket(moto_aws, "sparkube-jars-none")
        reporter = RecordingReporter()
        stock_jars(s3, "sparkube-jars-none", env=env, reporter=reporter)
    finally:
        server.shutdown()
        server.server_close()
    said = [e[3] for e in reporter.events if e[0] == "step"]
    assert said[0] == "37 of 37 jars to upload"
    assert said[-1].startswith("not in the bucket (jar ")
    assert "HTTP 404" in said[-1] and said[-1].endswith("jobs fetch them from Maven")
    assert "Contents" not in s3.list_objects_v2(Bucket="sparkube-jars-none", Prefix="jars/")
