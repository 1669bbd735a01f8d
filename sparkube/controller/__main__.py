"""``python -m sparkube.controller``: the controller's process in its pod.

Environment (set by its Deployment): ``POD_NAME`` (its identity in the Lease),
``POD_NAMESPACE`` (where the Lease lives), ``SPARKUBE_JOBS_NAMESPACE`` (the jobs'
namespace, default ``spark``). Credentials: the pod's service account. Stops cleanly on
SIGTERM, giving up the Lease.

Scaling (:mod:`sparkube.controller.scaling`) is on when ``SPARKUBE_WORKER_GROUP`` names
the workers' Auto Scaling group: ``SPARKUBE_IDLE_SECONDS`` (default 600),
``SPARKUBE_WORKER_SHAPE`` (``CPU,MEMORY_BYTES`` a new worker offers jobs while the group
has none to measure) and the region in ``AWS_REGION``; AWS credentials are the node's
instance role (the metadata service). Its changes are recorded for the ledger in
``SPARKUBE_BUCKET`` (:mod:`sparkube.controller.scalelog`). With it, the controller also
keeps the self-join parameter of ``SPARKUBE_CLUSTER`` usable
(:mod:`sparkube.controller.jointoken`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkube.controller.jointoken import Renewer
    from sparkube.controller.loop import Scaler


def scaler_from(environ: Mapping[str, str]) -> Scaler | None:
    from sparkube.controller.loop import Scaler
    from sparkube.controller.scaling import Shape

    group = environ.get("SPARKUBE_WORKER_GROUP", "").strip()
    if not group:
        return None
    import boto3

    from sparkube.controller.scalelog import ScaleLog

    cpu, _, memory = environ.get("SPARKUBE_WORKER_SHAPE", "2,4000000000").partition(",")
    region = environ.get("AWS_REGION") or None
    bucket = environ.get("SPARKUBE_BUCKET", "").strip()
    return Scaler(
        autoscaling=boto3.client("autoscaling", region_name=region),
        group=group,
        shape=Shape(float(cpu), int(memory)),
        idle_seconds=float(environ.get("SPARKUBE_IDLE_SECONDS") or 600),
        record=ScaleLog(boto3.client("s3", region_name=region), bucket) if bucket else None,
    )


def renewer_from(environ: Mapping[str, str]) -> Renewer | None:
    """With a worker group, the controller keeps the self-join parameter usable."""
    from sparkube.controller.jointoken import Renewer

    cluster = environ.get("SPARKUBE_CLUSTER", "").strip()
    if not environ.get("SPARKUBE_WORKER_GROUP", "").strip() or not cluster:
        return None
    import boto3

    return Renewer(boto3.client("ssm", region_name=environ.get("AWS_REGION") or None), cluster)


def main() -> int:
    import httpx2
    from lightkube import Client, KubeConfig

    from sparkube.controller import NAMESPACE
    from sparkube.controller.lease import Lease
    from sparkube.controller.loop import Controller

    logging.basicConfig(
        level=os.environ.get("SPARKUBE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    identity = os.environ.get("POD_NAME") or socket.gethostname()
    namespace = os.environ.get("POD_NAMESPACE", NAMESPACE)
    jobs_namespace = os.environ.get("SPARKUBE_JOBS_NAMESPACE", "spark")
    client = Client(
        config=KubeConfig.from_env(),
        timeout=httpx2.Timeout(15.0),
        field_manager="sparkube-controller",
        trust_env=False,
    )
    controller = Controller(
        client,
        jobs_namespace=jobs_namespace,
        lease=Lease(client, namespace, identity),
        scaler=scaler_from(os.environ),
        renewer=renewer_from(os.environ),
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        controller.stopping.set()
        controller.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("sparkube.controller").info(
        "sparkube controller %s started: jobs in namespace %s, lease %s/%s",
        identity, jobs_namespace, namespace, "sparkube-controller",
    )  # fmt: skip
    controller.start_watches()
    controller.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
