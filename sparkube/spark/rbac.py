"""Spark's place in the cluster: namespace, service account and a namespaced Role.

The original student project failed with "External scheduler cannot be instantiated"
because the driver's service account could not create executor pods. sparkube binds a
Role in the ``spark`` namespace with exactly the verbs the driver uses (its pod and its
executors' pods and ConfigMaps; clean-up of Services and volume claims), each proved
needed by a real job (tests/bed/test_5_rbac.py), never ``edit``
or anything cluster-wide. The CLI submits with the cluster's kubeconfig, not this account.
"""

from __future__ import annotations

from sparkube.manifests import render_manifest

SPARK_NAMESPACE = "spark"
SPARK_SERVICE_ACCOUNT = "spark"


def render_spark_rbac(
    namespace: str = SPARK_NAMESPACE, service_account: str = SPARK_SERVICE_ACCOUNT
) -> str:
    return render_manifest(
        "spark-rbac", {"NAMESPACE": namespace, "SERVICE_ACCOUNT": service_account}
    )
