"""The monitoring addons ``up`` applies: metrics-server, kube-opex-analytics, History Server.

Every image is pinned here, in one place:

- metrics-server v0.8.1 (what the upstream Helm chart 3.13.1 ships);
- kube-opex-analytics 25.10.0, the image the v25.10.1 release's own manifests pin (the
  last Apache-2.0 line; later releases are BSL-licensed as KubeLedger);
- the Spark History Server runs sparkube's Spark image (sparkube.spark.image).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from sparkube.manifests import render_manifest
from sparkube.spark.config import ClusterConfig
from sparkube.spark.podspec import EVENTS_PREFIX, Endpoints, role_jars_container
from sparkube.spark.rbac import SPARK_NAMESPACE, SPARK_SERVICE_ACCOUNT

METRICS_SERVER_VERSION = "v0.8.1"
OPEX_VERSION = "25.10.0"
OPEX_NAMESPACE = "monitoring"
OPEX_SERVICE = "kube-opex-analytics"
OPEX_PORT = 80
HISTORY_SERVICE = "spark-history"
HISTORY_PORT = 18080


def render_metrics_server() -> str:
    return render_manifest("metrics-server", {"VERSION": METRICS_SERVER_VERSION})


def render_opex(usd_per_hour: float) -> str:
    return render_manifest(
        "kube-opex-analytics", {"VERSION": OPEX_VERSION, "HOURLY_RATE": f"{usd_per_hour:.4f}"}
    )


def history_opts(config: ClusterConfig, endpoints: Endpoints) -> str:
    opts = {
        "spark.history.fs.logDirectory": f"s3a://{config.bucket}/{EVENTS_PREFIX}",
        "spark.history.fs.update.interval": "10s",
        "spark.hadoop.fs.s3a.endpoint.region": config.region,
    }
    opts.update(endpoints.s3a_properties())
    return " ".join(f"-D{k}={v}" for k, v in opts.items())


def history_documents(config: ClusterConfig, endpoints: Endpoints) -> list[dict[str, Any]]:
    text = render_manifest(
        "spark-history",
        {
            "BUCKET": config.bucket,
            "NAMESPACE": SPARK_NAMESPACE,
            "SERVICE_ACCOUNT": SPARK_SERVICE_ACCOUNT,
            "IMAGE": config.image,
        },
    )
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        pod["initContainers"] = [role_jars_container(config, endpoints)]
        env = pod["containers"][0]["env"]
        for item in env:
            if item["name"] == "SPARK_HISTORY_OPTS":
                item["value"] = history_opts(config, endpoints)
    return docs


def render_history(config: ClusterConfig, endpoints: Endpoints) -> str:
    return yaml.safe_dump_all(history_documents(config, endpoints), sort_keys=False)


def all_documents(config: ClusterConfig, endpoints: Endpoints) -> Mapping[str, str]:
    """Title -> manifest text, in the order ``up`` applies them."""
    return {
        f"metrics-server {METRICS_SERVER_VERSION}": render_metrics_server(),
        f"kube-opex-analytics {OPEX_VERSION} (hourly rate ${config.usd_per_hour:.4f})": (
            render_opex(config.usd_per_hour)
        ),
        "Spark History Server (event logs in the cluster's bucket)": render_history(
            config, endpoints
        ),
    }


def apply_monitoring(
    client: Any, config: ClusterConfig, endpoints: Endpoints, *, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Apply the monitoring addons (server-side, idempotent); return kind/name applied.
    ``skip``: parts left out (``metrics-server`` where the cluster already has one)."""
    from sparkube.kube.apply import apply_manifest

    applied: list[str] = []
    if "metrics-server" not in skip:
        applied += apply_manifest(client, render_metrics_server())
    if "kube-opex-analytics" not in skip:
        applied += apply_manifest(client, render_opex(config.usd_per_hour))
    if "spark-history" not in skip:
        applied += apply_manifest(client, render_history(config, endpoints))
    return applied
