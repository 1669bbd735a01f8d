"""Deleting a cluster, found by tag, in dependency order.

The workers' Auto Scaling group first (force-deleted, so its instances go with it) and
the join parameter (no worker joins any more), together with the other instances,
waiting until the group and every instance are gone (their network interfaces hold the
security group), then the launch template, then the
security group (EC2 may still answer ``DependencyViolation`` for a while: retried with
backoff), the instance profile and role, the key pair, the
bucket (emptied first) unless the data is kept, and the local files. Every step is
idempotent, so an interrupted ``down`` is finished by the next one.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from sparkube.aws import iam, instances, joinparam, storage, workergroup
from sparkube.aws.errors import is_code
from sparkube.aws.session import AwsClients
from sparkube.env import Environment
from sparkube.errors import CloudError
from sparkube.model import ClusterInfo
from sparkube.progress import Reporter

log = logging.getLogger(__name__)

#: Backoff between DeleteSecurityGroup attempts (about 5 minutes in all).
GROUP_DELETE_DELAYS = (2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0)

Sleep = Callable[[float], None]
PHASE = "down"


@dataclass
class TeardownResult:
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def delete_group(clients: AwsClients, group_id: str, *, sleep: Sleep) -> None:
    delays = list(GROUP_DELETE_DELAYS)
    while True:
        try:
            clients.ec2.delete_security_group(GroupId=group_id)
            return
        except Exception as exc:
            if is_code(exc, "InvalidGroup.NotFound"):
                return
            if is_code(exc, "DependencyViolation") and delays:
                delay = delays.pop(0)
                log.info("security group %s still in use; retrying in %.0f s", group_id, delay)
                sleep(delay)
                continue
            if is_code(exc, "DependencyViolation"):
                raise CloudError(
                    f"Security group {group_id} is still in use after 5 minutes (another "
                    "resource uses it); remove that dependency and run 'sparkube down' again."
                ) from exc
            raise


def teardown(
    clients: AwsClients,
    env: Environment,
    info: ClusterInfo,
    *,
    keep_data: bool,
    reporter: Reporter,
    sleep: Sleep,
    on_terminated: Callable[[], None] | None = None,
) -> TeardownResult:
    result = TeardownResult()
    ec2 = clients.ec2
    ids = [n.instance_id for n in info.nodes]
    group = info.worker_group
    if group is not None:
        # the group first: it would replace the workers terminated under it
        reporter.step(PHASE, "worker group", f"deleting {group.name} and its instances")
        workergroup.start_delete(clients.autoscaling, info.name, group)
    reporter.step(PHASE, "join parameter", "deleting")  # no worker joins any more
    if joinparam.delete(clients.ssm, info.name):
        result.deleted.append("join parameter")
    if ids:
        reporter.step(PHASE, "instances", f"terminating {len(ids)}")
        instances.terminate(ec2, ids)
        instances.wait_terminated(ec2, ids)
        if on_terminated is not None:  # e.g. the ledger keeps when they ended
            on_terminated()
        result.deleted.append(f"{len(ids)} instance{'s' if len(ids) != 1 else ''}")
    if group is not None or info.launch_template:
        reporter.step(PHASE, "worker group", "waiting until it is gone, then the launch template")
        result.deleted += workergroup.finish_delete(
            clients.autoscaling, ec2, info.name, group=group
        )
    if info.security_group_id:
        reporter.step(PHASE, "security group", f"deleting {info.security_group_id}")
        delete_group(clients, info.security_group_id, sleep=sleep)
        result.deleted.append(f"security group {info.security_group_id}")
    reporter.step(PHASE, "iam", "deleting instance profile and role")
    result.deleted += iam.delete(clients.iam, info.name, clients.region)
    if info.key_name:
        reporter.step(PHASE, "key pair", f"deleting {info.key_name}")
        ec2.delete_key_pair(KeyName=info.key_name)
        result.deleted.append(f"key pair {info.key_name}")
    if info.bucket:
        if keep_data:
            result.kept.append(f"S3 bucket {info.bucket}")
        else:
            reporter.step(PHASE, "bucket", f"emptying and deleting {info.bucket}")
            objects = storage.empty_and_delete(clients.s3, info.bucket)
            result.deleted.append(f"S3 bucket {info.bucket} ({objects} objects)")
    local = env.cluster_dir(info.name)
    if local.exists():
        shutil.rmtree(local)
        result.deleted.append(f"local files {local}")
    return result
