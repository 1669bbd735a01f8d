"""Kubernetes manifests sparkube applies: packaged data, every image version-pinned."""

from __future__ import annotations

from importlib import resources

from sparkube.templates import render


def render_manifest(name: str, values: dict[str, str]) -> str:
    """A packaged manifest (``NAME.yaml`` here) with its ``@@X@@`` placeholders filled."""
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text("utf-8")
    return render(text, values)
