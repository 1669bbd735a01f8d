"""The cluster's S3 bucket: named from cluster, region and account, private, encrypted,
and a lifecycle rule that expires Spark's decommission fallback (``decommission/``).

S3 has no tag filter either; the bucket name is deterministic (a hash of account and
region keeps it globally unique and within 63 characters) and carries the cluster tag.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sparkube.aws import tags as T
from sparkube.aws.errors import error_code, is_code
from sparkube.aws.s3 import DECOMMISSION_PREFIX
from sparkube.errors import CloudError

log = logging.getLogger(__name__)

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}

#: Expires what Spark leaves under ``DECOMMISSION_PREFIX`` a day after it was written
#: (S3 rounds to the next midnight UTC), and multipart uploads left open there.
DECOMMISSION_RULE: dict[str, Any] = {
    "ID": "sparkube-decommission",
    "Status": "Enabled",
    "Filter": {"Prefix": DECOMMISSION_PREFIX},
    "Expiration": {"Days": 1},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}


def bucket_name(cluster: str, region: str, account: str) -> str:
    """``sparkube-NAME-REGION-HASH``; the hash (account+region+name) makes it unique."""
    digest = hashlib.sha256(f"{account}:{region}:{cluster}".encode()).hexdigest()[:8]
    name = f"sparkube-{cluster}-{region}-{digest}"
    if len(name) > 63:
        name = f"sparkube-{cluster}-{digest}"
    return name


@dataclass(frozen=True)
class BucketState:
    exists: bool
    tagged: bool = False
    public_access_blocked: bool = False
    encrypted: bool = False
    #: The bucket's lifecycle rules as S3 gives them (others' too: a write keeps them).
    lifecycle_rules: tuple[dict[str, Any], ...] = ()
    #: ``TransitionDefaultMinimumObjectSize`` of that configuration, kept by a write.
    lifecycle_minimum_size: str | None = None

    @property
    def decommission_expires(self) -> bool:
        """Whether :data:`DECOMMISSION_RULE` is there as sparkube writes it."""
        return any(_is_decommission_rule(r) for r in self.lifecycle_rules)


def _is_decommission_rule(rule: Mapping[str, Any]) -> bool:
    want = DECOMMISSION_RULE
    prefix = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix"))
    return (
        rule.get("ID") == want["ID"]
        and rule.get("Status") == want["Status"]
        and prefix == DECOMMISSION_PREFIX
        and rule.get("Expiration") == want["Expiration"]
        and rule.get("AbortIncompleteMultipartUpload") == want["AbortIncompleteMultipartUpload"]
    )


def inspect(s3: Any, bucket: str, cluster: str) -> BucketState:
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return BucketState(exists=False)
        if code in ("403", "AccessDenied"):
            raise CloudError(
                f"S3 bucket {bucket} exists but belongs to someone else or is not "
                "readable; use another cluster name."
            ) from exc
        raise
    try:
        tags = T.from_aws(s3.get_bucket_tagging(Bucket=bucket).get("TagSet"))
    except Exception as exc:
        if not is_code(exc, "NoSuchTagSet", "NoSuchTagSetError"):
            raise
        tags = {}
    try:
        config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        blocked = all(config.get(k) for k in PUBLIC_ACCESS_BLOCK)
    except Exception as exc:
        if not is_code(exc, "NoSuchPublicAccessBlockConfiguration"):
            raise
        blocked = False
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        encrypted = bool(rules.get("Rules"))
    except Exception as exc:
        if not is_code(exc, "ServerSideEncryptionConfigurationNotFoundError"):
            raise
        encrypted = False
    try:
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    except Exception as exc:
        if not is_code(exc, "NoSuchLifecycleConfiguration"):
            raise
        lifecycle = {}
    return BucketState(
        True,
        tags.get(T.CLUSTER) == cluster,
        blocked,
        encrypted,
        tuple(lifecycle.get("Rules") or ()),
        lifecycle.get("TransitionDefaultMinimumObjectSize"),
    )


def ensure(s3: Any, bucket: str, cluster: str, region: str, tags: Mapping[str, str]) -> str:
    state = inspect(s3, bucket, cluster)
    if not state.exists:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**kwargs)
        except Exception as exc:
            if not is_code(exc, "BucketAlreadyOwnedByYou"):
                raise
    if not state.tagged:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": T.to_aws({**tags, T.NAME: bucket})})
    if not state.public_access_blocked:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
        )
    if not state.encrypted:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
    if not state.decommission_expires:
        # S3 replaces the whole configuration: every other rule is written back as it was
        others = [r for r in state.lifecycle_rules if r.get("ID") != DECOMMISSION_RULE["ID"]]
        extra = (
            {"TransitionDefaultMinimumObjectSize": state.lifecycle_minimum_size}
            if state.lifecycle_minimum_size
            else {}
        )
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": [*others, DECOMMISSION_RULE]},
            **extra,
        )
    return bucket


def exists(s3: Any, bucket: str) -> bool:
    """Whether the bucket exists (its name, derived from account and region, is ours)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


def empty_and_delete(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker, then the bucket; return objects."""
    count = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            count += len(batch)
    s3.delete_bucket(Bucket=bucket)
    return count
