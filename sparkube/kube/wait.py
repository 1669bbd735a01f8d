"""Wait until the cluster is usable: every expected node Ready, CoreDNS available.

Polls (every ``interval``) rather than watches: the wait spans node boots, API server
restarts and CNI roll-outs, and a poll survives all of them without reconnect logic.
On timeout the message names each node that is not Ready and why, from its conditions.
Kubelet serving-certificate requests of the expected nodes, for their own names and
addresses, are approved on the way (kubeadm config sets ``serverTLSBootstrap``; without
approval ``kubectl logs`` fails); the addons phase then installs an approver that keeps
doing so for nodes that join or renew later (kube/approver.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

import httpx2
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.certificates_v1 import (
    CertificateSigningRequestCondition,
    CertificateSigningRequestStatus,
)
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.certificates_v1 import CertificateSigningRequest
from lightkube.resources.core_v1 import Node

from sparkube.errors import ClusterError

log = logging.getLogger(__name__)

KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"


@dataclass
class ReadinessReport:
    ready: list[str] = field(default_factory=list)
    #: node -> why it is not Ready (its conditions, or "not registered")
    not_ready: dict[str, str] = field(default_factory=dict)
    coredns: str = "not checked"

    @property
    def ok(self) -> bool:
        return not self.not_ready and self.coredns == "available"


def _node_problem(node: Node) -> str | None:
    conditions = list((node.status.conditions if node.status else None) or [])
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if ready is not None and ready.status == "True":
        return None
    parts = []
    if ready is None:
        parts.append("no Ready condition yet")
    else:
        parts.append(
            f"Ready={ready.status}"
            + (f" ({ready.reason}: {ready.message})" if ready.reason or ready.message else "")
        )
    for cond in conditions:
        if cond.type != "Ready" and cond.status == "True":
            parts.append(f"{cond.type}=True" + (f" ({cond.reason})" if cond.reason else ""))
    return "; ".join(parts)


def check_readiness(client: Client, names: Iterable[str]) -> ReadinessReport:
    report = ReadinessReport()
    found = {n.metadata.name: n for n in client.list(Node) if n.metadata and n.metadata.name}
    for name in names:
        node = found.get(name)
        if node is None:
            report.not_ready[name] = "not registered with the API server"
            continue
        problem = _node_problem(node)
        if problem is None:
            report.ready.append(name)
        else:
            report.not_ready[name] = problem
    try:
        dep = client.get(Deployment, "coredns", namespace="kube-system")
    except ApiError as exc:
        report.coredns = "missing" if exc.status.code == 404 else f"unknown ({exc.status.code})"
    else:
        available = next(
            (c for c in (dep.status.conditions or []) if c.type == "Available")
            if dep.status
            else iter(()),
            None,
        )
        if available is not None and available.status == "True":
            report.coredns = "available"
        else:
            ready = dep.status.readyReplicas if dep.status else 0
            report.coredns = f"not available ({ready or 0} ready replicas)"
    return report


#: What a kubelet's serving certificate is for (RSA keys add key encipherment).
SERVING_USAGES = frozenset({"digital signature", "key encipherment", "server auth"})


def serving_request_problem(
    csr: CertificateSigningRequest, nodes: Mapping[str, Collection[str]]
) -> str | None:
    """Why ``csr`` is not a kubelet's request for its own serving certificate, or None.

    Its own: from ``system:node:NAME`` for a NAME in ``nodes``, with that CN and the
    ``system:nodes`` organisation, server usages only, and subject alternative names
    that are NAME itself or one of the node's addresses as sparkube knows them from EC2
    (``nodes[NAME]``), at least one of them."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    spec = csr.spec
    if spec.signerName != KUBELET_SERVING_SIGNER:
        return f"signer {spec.signerName}"
    name = (spec.username or "").removeprefix("system:node:")
    if not spec.username or name == spec.username or name not in nodes:
        return f"requested by {spec.username}, not by a node of this cluster"
    if not set(spec.usages or ()) <= SERVING_USAGES:
        return f"usages {sorted(spec.usages or ())}"
    try:
        # the API gives the PEM base64-encoded (a byte field in JSON)
        request = x509.load_pem_x509_csr(base64.b64decode(spec.request, validate=True))
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, binascii.Error, x509.ExtensionNotFound) as exc:
        return f"unreadable request ({type(exc).__name__})"
    subject = request.subject
    cns = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if cns != [spec.username] or orgs != ["system:nodes"]:
        return f"subject CN {cns} O {orgs}"
    dns = sans.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    others = len(list(sans)) - len(dns) - len(ips)
    if others or not (dns or ips):
        return "names other than DNS names and IP addresses, or none"
    if not set(dns) <= {name}:
        return f"DNS names {dns} are not the node's name {name}"
    if not set(ips) <= set(nodes[name]):
        return f"IP addresses {ips} are not the node's {sorted(nodes[name])}"
    return None


def approve_kubelet_serving_csrs(client: Client, nodes: Mapping[str, Collection[str]]) -> list[str]:
    """Approve pending kubelet-serving CSRs of our own nodes, for their own names and
    addresses only (``nodes``: name -> its addresses); others are left to the cluster's
    approver (kube/approver.py), which denies them."""
    approved = []
    for csr in client.list(CertificateSigningRequest):
        status = csr.status
        if status and status.conditions:
            continue  # already approved or denied
        name = csr.metadata.name if csr.metadata else None
        if not name or serving_request_problem(csr, nodes) is not None:
            continue
        approval = CertificateSigningRequest.Approval(
            apiVersion="certificates.k8s.io/v1",
            kind="CertificateSigningRequest",
            metadata=csr.metadata,
            spec=csr.spec,
            status=CertificateSigningRequestStatus(
                conditions=[
                    CertificateSigningRequestCondition(
                        type="Approved",
                        status="True",
                        reason="SparkubeApprove",
                        message="kubelet serving certificate of a sparkube node",
                    )
                ]
            ),
        )
        client.replace(approval, name)
        approved.append(name)
    return approved


def wait_cluster_ready(
    client: Client,
    names: list[str],
    *,
    timeout: float = 600.0,
    interval: float = 2.0,
    approve_csrs: bool = True,
    addresses: Mapping[str, Collection[str]] | None = None,
    on_progress: Callable[[ReadinessReport], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReadinessReport:
    """Block until every node in ``names`` is Ready and CoreDNS is available, approving
    the nodes' serving-certificate requests for their names and ``addresses`` (name ->
    its IP addresses) on the way."""
    own = {n: tuple((addresses or {}).get(n, ())) for n in names}
    deadline = clock() + timeout
    last_error = ""
    report = ReadinessReport(not_ready=dict.fromkeys(names, "not checked yet"))
    while True:
        try:
            if approve_csrs:
                approve_kubelet_serving_csrs(client, own)
            report = check_readiness(client, names)
            last_error = ""
        except (ApiError, httpx2.HTTPError, OSError) as exc:
            last_error = str(exc) or type(exc).__name__
            log.debug("readiness check failed: %s", last_error)
        else:
            if on_progress is not None:
                on_progress(report)
            if report.ok:
                return report
        if clock() >= deadline:
            break
        sleep(interval)
    lines = [f"{name}: {why}" for name, why in report.not_ready.items()]
    lines.append(f"CoreDNS: {report.coredns}")
    if last_error:
        lines.append(f"last API error: {last_error}")
    waiting = ", ".join(report.not_ready) or "CoreDNS"
    raise ClusterError(
        f"The cluster was not ready after {timeout:.0f} s: waiting for {waiting}; "
        "run `sparkube up` again to keep waiting, or `sparkube ssh NODE` to look at "
        "the kubelet (journalctl -u kubelet).",
        detail="\n".join(lines),
    )
