"""The bundled Flannel manifest: pinned images, pod CIDR, valid Kubernetes objects."""

from __future__ import annotations

import json

import pytest
import yaml

from sparkube.nodes.cni import FLANNEL_VERSION, render_cni_manifest
from sparkube.spec import ClusterSpec


def _docs(spec: ClusterSpec) -> list[dict]:  # type: ignore[type-arg]
    return list(yaml.safe_load_all(render_cni_manifest(spec)))


def test_images_are_pinned_and_from_the_release() -> None:
    text = render_cni_manifest(ClusterSpec())
    images = {line.split("image:")[1].strip() for line in text.splitlines() if "image:" in line}
    assert images == {
        f"ghcr.io/flannel-io/flannel:{FLANNEL_VERSION}",
        "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3",
    }
    assert "http" not in text.replace("https://", "")  # nothing fetched


def test_network_follows_the_pod_cidr() -> None:
    docs = _docs(ClusterSpec(pod_cidr="10.50.0.0/16"))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert json.loads(cm["data"]["net-conf.json"])["Network"] == "10.50.0.0/16"
    assert json.loads(cm["data"]["cni-conf.json"])["plugins"][0]["type"] == "flannel"


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0", "1.37.0"])
def test_validates_against_the_kubernetes_schema(version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in _docs(ClusterSpec()):
        kubernetes_validate.validate(doc, version, strict=True)
