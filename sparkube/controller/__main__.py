"""``python -m sparkube.controller``: the controller's process in its pod.

Environment (set by its Deployment): ``POD_NAME`` (its identity in the Lease),
``POD_NAMESPACE`` (where the Lease lives), ``SPARKUBE_JOBS_NAMESPACE`` (the jobs'
namespace, default ``spark``). Credentials: the pod's service account. Stops cleanly on
SIGTERM, giving up the Lease.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from types import FrameType


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
        client, jobs_namespace=jobs_namespace, lease=Lease(client, namespace, identity)
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
