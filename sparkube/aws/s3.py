"""The S3 objects sparkube reads and writes with the user's own credentials: content-
addressed uploads (``inputs/SHA256/NAME``), JSON and text objects, listings, downloads of
a prefix, the concatenation of a job's output parts, and ``s3a://`` URIs. Every call takes
a boto3 S3 client, the bucket and the key; botocore itself is loaded only when an error
has to be read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Upload:
    local: Path
    key: str
    size: int
    uploaded: bool  # False: the same content was already in the bucket


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_MISSING = ("404", "NoSuchKey", "NotFound")
#: Where jobs' executors leave the blocks they hand over when they are decommissioned
#: (Spark's fallback storage; Spark adds the application id, the job id, under it and
#: never deletes them: the bucket's lifecycle rule does, ``storage.DECOMMISSION_RULE``).
DECOMMISSION_PREFIX = "decommission/"


def _is_missing(exc: BaseException) -> bool:
    from sparkube.aws.errors import is_code  # botocore, loaded when S3 is used

    return is_code(exc, *_MISSING)


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _is_missing(exc):
            return False
        raise
    return True


def upload_content_addressed(
    s3: Any,
    bucket: str,
    path: Path,
    name: str,
    *,
    on_bytes: Callable[[int], None] | None = None,
) -> Upload:
    """``inputs/SHA256/NAME``: uploaded only if no object with that content exists yet."""
    digest = sha256_file(path)
    key = f"inputs/{digest}/{name}"
    size = path.stat().st_size
    if object_exists(s3, bucket, key):
        if on_bytes is not None:
            on_bytes(size)
        return Upload(path, key, size, uploaded=False)
    s3.upload_file(str(path), bucket, key, Callback=on_bytes)
    return Upload(path, key, size, uploaded=True)


def put_json(s3: Any, bucket: str, key: str, data: Mapping[str, Any]) -> None:
    body = json.dumps(data, indent=2, sort_keys=True).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_text(s3: Any, bucket: str, key: str) -> str | None:
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise
    return str(obj["Body"].read().decode("utf-8", errors="replace"))


def _pages(s3: Any, bucket: str, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    yield from s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **kwargs)


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [obj["Key"] for page in _pages(s3, bucket, prefix) for obj in page.get("Contents") or []]


def list_prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The "folders" right under ``prefix`` (one entry per job, whatever it holds)."""
    return [
        p["Prefix"]
        for page in _pages(s3, bucket, prefix, Delimiter="/")
        for p in page.get("CommonPrefixes") or []
    ]


def download_prefix(s3: Any, bucket: str, prefix: str, target: Path) -> list[Path]:
    """Every object under ``prefix`` into ``target`` (relative paths kept)."""
    written = []
    for key in list_keys(s3, bucket, prefix):
        rel = key[len(prefix) :].lstrip("/")
        if not rel or rel.endswith("/"):
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(dest))
        written.append(dest)
    return written


def concat_objects(s3: Any, bucket: str, keys: Sequence[str], target: Path, header: bytes) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(header)
        for key in keys:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            while chunk := body.read(1 << 20):
                out.write(chunk)
    tmp.replace(target)


def s3a(bucket: str, key: str) -> str:
    return f"s3a://{bucket}/{key}"
