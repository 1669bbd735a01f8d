"""The in-cluster approver of the kubelets' serving certificates.

kubeadm's config sets ``serverTLSBootstrap``: each kubelet asks the API server for its
serving certificate (signer ``kubernetes.io/kubelet-serving``) when it starts and again
before the certificate expires, and nothing in Kubernetes approves those requests. The
``kubernetes`` phase approves the requests of the nodes it brings up (kube/wait.py);
this addon, postfinance's kubelet-csr-approver, approves them for as long as the
cluster lives: workers added or replaced later, and every renewal.

It approves only requests from a node (``system:node:NAME``, CN the same) for at most one
DNS name that starts with NAME and is one of sparkube's node names, and for IP addresses
inside the cluster's VPC; it denies every other kubelet-serving request (docs/DESIGN.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import yaml

from sparkube.manifests import render_manifest

APPROVER_VERSION = "v1.2.14"
APPROVER_IMAGE = f"ghcr.io/postfinance/kubelet-csr-approver:{APPROVER_VERSION}"
#: The DNS names a node's serving certificate may carry: sparkube's node names
#: (aws/instances.py ``node_name``), which are the kubelets' host names, and the EC2
#: instance ids a worker the group launched joins under (nodes/selfjoin.py): ``i-`` and
#: 8 or 17 hex digits.
NODE_NAME_REGEX = "^(control-plane|worker-[1-9][0-9]*|i-[0-9a-f]{8}([0-9a-f]{9})?)$"


def render_csr_approver(vpc_cidrs: Sequence[str]) -> str:
    """The approver's manifest, allowing IP addresses in ``vpc_cidrs`` only."""
    if not vpc_cidrs:
        raise ValueError("the kubelet-serving approver needs the VPC's CIDR blocks")
    prefixes = ",".join(str(ipaddress.ip_network(c, strict=True)) for c in vpc_cidrs)
    docs = [d for d in yaml.safe_load_all(render_manifest("kubelet-csr-approver", {
        "VERSION": APPROVER_VERSION})) if d]  # fmt: skip
    for doc in docs:
        if doc["kind"] == "Deployment":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            container["args"].insert(1, f"-provider-ip-prefixes={prefixes}")
    return yaml.safe_dump_all(docs, sort_keys=False)


def apply_csr_approver(client: Any, vpc_cidrs: Sequence[str]) -> list[str]:
    """Apply the approver (server-side, idempotent); return kind/name applied."""
    from sparkube.kube.apply import apply_manifest

    return apply_manifest(client, render_csr_approver(vpc_cidrs))
