"""The S3 jars (hadoop-aws, the lean AWS SDK v2 set, spark-hadoop-cloud): once per
cluster into its bucket, from there into every driver pod, each checked by SHA-256.

Why the bucket (DESIGN.md, Jobs, "The S3 jars"): the nodes reach their region's
S3 fast (in-region transfer is free), it is already the cluster's one store, and
sparkube already hands pods presigned URLs for a job's own files (pods hold no keys and
the image has no S3 client). So:

- ``up`` (addons phase) makes sure the bucket holds every jar of
  :data:`sparkube.spark.image.SPARK_IMAGE` ``.s3_jars`` under ``jars/SHA256/NAME``
  (content-addressed: one List call, and uploads only of what is missing). The bytes
  come from the local cache ``~/.cache/sparkube/jars`` (``XDG_CACHE_HOME``), filled
  from Maven Central (or ``SPARKUBE_JARS_REPOSITORY``) once per machine, each jar
  checked against its pinned size and SHA-256 before it is kept.
- Each driver pod's ``fetch-s3-jars`` init container runs :mod:`sparkube.spark.jarfetch`
  with two addresses per jar: a presigned URL of its bucket object, then the Maven
  repository (a cluster whose bucket lacks a jar, or a URL that expired, still works).
  Every jar is checked by SHA-256 wherever it came from; timeouts and retries there.
- The History Server, a long-lived Deployment, reads the same objects with the node's
  instance role (the fetch program signs its GETs itself from instance metadata's
  credentials): a presigned URL in its spec would expire, and change the spec at every
  ``up``. The Maven repository is its fallback too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkube.spark import jarfetch
from sparkube.spark.image import SPARK_IMAGE, MavenJar, jar_file_name, maven_url

log = logging.getLogger(__name__)

JARS_MOUNT = "/opt/sparkube/jars"
BUCKET_PREFIX = "jars/"
#: The fetch program's source, run in pods by the image's own Python.
FETCH_SOURCE = Path(jarfetch.__file__).read_text()
#: How long a driver may take to start and fetch its jars (presigned URLs).
URL_SECONDS = 12 * 3600


def bucket_key(jar: MavenJar) -> str:
    return f"{BUCKET_PREFIX}{jar.sha256}/{jar_file_name(jar.coord)}"


def cache_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "sparkube" / "jars"


def fetch_lines(repository: str, bucket_urls: Sequence[str] = ()) -> str:
    """``NAME SIZE SHA256 URL...`` per jar: its bucket URL (when given), then the Maven
    repository's."""
    jars = SPARK_IMAGE.s3_jars
    if bucket_urls and len(bucket_urls) != len(jars):
        raise ValueError("one bucket URL per jar")
    lines = []
    for i, jar in enumerate(jars):
        urls = [*([bucket_urls[i]] if bucket_urls else []), maven_url(jar.coord, repository)]
        lines.append(f"{jar_file_name(jar.coord)} {jar.size} {jar.sha256} {' '.join(urls)}")
    return "\n".join(lines)


def fetch_container(
    image: str, repository: str, security: Mapping[str, Any], bucket_urls: Sequence[str] = ()
) -> dict[str, Any]:
    """The init container that puts the jars, checked, into the pod's ``jars`` emptyDir."""
    return {
        "name": "fetch-s3-jars",
        "image": image,
        "command": ["python3", "-c", FETCH_SOURCE, JARS_MOUNT],
        "env": [{"name": "SPARKUBE_JARS", "value": fetch_lines(repository, bucket_urls)}],
        "securityContext": dict(security),
        "volumeMounts": [{"name": "jars", "mountPath": JARS_MOUNT}],
    }


def bucket_addresses(bucket: str) -> list[str]:
    """``s3://`` addresses of every jar's bucket object, which the fetch program reads
    with the node's instance role (for long-lived pods: no URL to expire)."""
    return [f"s3://{bucket}/{bucket_key(jar)}" for jar in SPARK_IMAGE.s3_jars]


def presigned_urls(presigner: Any, bucket: str) -> list[str]:
    """A presigned GET of every jar's bucket object (signed locally: no request)."""
    return [
        presigner.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": bucket_key(jar)}, ExpiresIn=URL_SECONDS
        )
        for jar in SPARK_IMAGE.s3_jars
    ]


@dataclass(frozen=True)
class Stocked:
    """What :func:`ensure_in_bucket` did."""

    downloaded: int  # jars fetched into the local cache
    uploaded: int  # jars put into the bucket
    bytes_uploaded: int
    seconds: float


def ensure_cached(repository: str, cache: Path) -> int:
    """Every jar in ``cache``, checked; return how many were downloaded."""
    lines = jarfetch.parse(fetch_lines(repository))
    return sum(1 for src in jarfetch.fetch_all(lines, str(cache)) if src >= 0)


def ensure_in_bucket(
    s3: Any,
    bucket: str,
    *,
    repository: str,
    cache: Path,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Stocked:
    """The bucket holds every jar under its content key: one List, then only what is
    missing (or of the wrong size) is fetched into the cache and uploaded."""
    started = time.monotonic()
    have: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=BUCKET_PREFIX):
        have.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    missing = [j for j in SPARK_IMAGE.s3_jars if have.get(bucket_key(j)) != j.size]
    downloaded = 0
    if missing:
        progress(f"{len(missing)} of {len(SPARK_IMAGE.s3_jars)} jars to upload")
        downloaded = ensure_cached(repository, cache)
        for jar in missing:
            body = (cache / jar_file_name(jar.coord)).read_bytes()
            s3.put_object(Bucket=bucket, Key=bucket_key(jar), Body=body)
    stocked = Stocked(
        downloaded=downloaded,
        uploaded=len(missing),
        bytes_uploaded=sum(j.size for j in missing),
        seconds=time.monotonic() - started,
    )
    log.info("S3 jars in s3://%s/%s: %s", bucket, BUCKET_PREFIX, stocked)
    return stocked
