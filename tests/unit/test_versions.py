"""Versions that must move together."""

from __future__ import annotations

from pathlib import Path

from sparkube.spec import DEFAULT_KUBERNETES, SUPPORTED_KUBERNETES

REPO = Path(__file__).resolve().parents[2]


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip().strip('"') for k, v in pairs}


def test_test_control_plane_runs_the_default_kubernetes_minor() -> None:
    versions = read_env(REPO / "tools" / "kube" / "versions.env")
    minor = ".".join(versions["KUBE_VERSION"].removeprefix("v").split(".")[:2])
    assert minor == DEFAULT_KUBERNETES
    assert DEFAULT_KUBERNETES in SUPPORTED_KUBERNETES
