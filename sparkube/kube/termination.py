"""Spot interruptions: aws-node-termination-handler in IMDS mode on the spot workers.

EC2 tells a spot instance two minutes before it takes it back, through the instance
metadata service (``spot/instance-action``), and may recommend a rebalance earlier
(``events/recommendations/rebalance``). With ``spot: true`` the ``addons`` phase applies
AWS's aws-node-termination-handler as a DaemonSet on the nodes labelled
``sparkube.io/market=spot``: on a notice it cordons its node and drains it (evictions,
each pod's own grace period: Spark executors use theirs to migrate their blocks); on a
rebalance recommendation it only cordons. IMDS mode, not queue mode: nothing to create
in AWS (no SQS queue, EventBridge rules or IAM rights) nor to clean up at ``down``, and
each handler acts on the node it runs on, whatever the node is called (queue mode finds
the node by the instance's private DNS name). docs/DESIGN.md, "Spot interruptions".
"""

from __future__ import annotations

from typing import Any

from sparkube.manifests import render_manifest
from sparkube.model import MARKET_LABEL

NTH_VERSION = "v1.25.6"
NTH_IMAGE = f"public.ecr.aws/aws-ec2/aws-node-termination-handler:{NTH_VERSION}"
NTH_NAME = "aws-node-termination-handler"


def render_termination_handler() -> str:
    """The handler's manifest: service account, ClusterRole and binding, DaemonSet."""
    return render_manifest(NTH_NAME, {"VERSION": NTH_VERSION, "MARKET_LABEL": MARKET_LABEL})


def termination_documents(spot: bool) -> dict[str, str]:
    """Title -> manifest, for ``sparkube manifests``: the handler with spot workers only."""
    if not spot:
        return {}
    return {
        f"spot interruptions: {NTH_NAME} {NTH_VERSION} (IMDS mode) on the spot workers": (
            render_termination_handler()
        )
    }


def apply_termination_handler(client: Any) -> list[str]:
    """Apply the handler (server-side, idempotent); return kind/name applied."""
    from sparkube.kube.apply import apply_manifest

    return apply_manifest(client, render_termination_handler())
