"""sparkube's own approval during ``up`` (kube/wait.py): a node's serving-certificate
request is approved only for that node's own name and addresses."""

from __future__ import annotations

import base64
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lightkube.models.certificates_v1 import CertificateSigningRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.certificates_v1 import CertificateSigningRequest

from sparkube.kube.wait import serving_request_problem

NODES = {"worker-1": ("172.31.5.10", "203.0.113.9"), "control-plane": ("172.31.5.4",)}


def csr(
    user: str = "system:node:worker-1",
    *,
    cn: str | None = None,
    dns: tuple[str, ...] = ("worker-1",),
    ips: tuple[str, ...] = ("172.31.5.10",),
    signer: str = "kubernetes.io/kubelet-serving",
    usages: tuple[str, ...] = ("digital signature", "server auth"),
    org: str = "system:nodes",
) -> CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn or user),
        ])
    )  # fmt: skip
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    return CertificateSigningRequest(
        metadata=ObjectMeta(name="csr-x"),
        spec=CertificateSigningRequestSpec(
            request=base64.b64encode(pem).decode(),
            signerName=signer,
            username=user,
            usages=list(usages),
        ),
    )


def test_a_nodes_own_request_passes() -> None:
    assert serving_request_problem(csr(), NODES) is None
    assert serving_request_problem(csr(ips=("172.31.5.10", "203.0.113.9")), NODES) is None
    assert serving_request_problem(csr(dns=()), NODES) is None


def test_anything_else_is_left_alone() -> None:
    refused = {
        "another node's name": csr(dns=("control-plane",)),
        "a name that starts with its own": csr(dns=("worker-10",)),
        "another node's address": csr(ips=("172.31.5.4",)),
        "an address outside the cluster": csr(ips=("192.0.2.1",)),
        "a CN that is not the requester": csr(cn="system:node:control-plane"),
        "a node sparkube does not know": csr("system:node:worker-9", dns=("worker-9",)),
        "a user that is no node": csr("admin", cn="admin"),
        "another signer": csr(signer="kubernetes.io/kube-apiserver-client-kubelet"),
        "client usage": csr(usages=("digital signature", "client auth")),
        "another organisation": csr(org="system:masters"),
        "no names at all": csr(dns=(), ips=()),
        "not base64": CertificateSigningRequest(
            metadata=ObjectMeta(name="csr-y"),
            spec=CertificateSigningRequestSpec(
                request="-----BEGIN",
                signerName="kubernetes.io/kubelet-serving",
                username="system:node:worker-1",
                usages=["server auth"],
            ),
        ),
    }
    for why, request in refused.items():
        assert serving_request_problem(request, NODES) is not None, why
