"""Server-side apply of packaged manifests (field manager ``sparkube``)."""

from __future__ import annotations

from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError

from sparkube.errors import ClusterError


def apply_manifest(client: Client, text: str) -> list[str]:
    """Apply every object of a multi-document manifest; return ``kind/name`` applied."""
    applied = []
    for obj in codecs.load_all_yaml(text):
        name = f"{obj.kind}/{obj.metadata.name}" if obj.metadata else str(obj.kind)
        try:
            client.apply(obj, field_manager="sparkube", force=True)
        except ApiError as exc:
            raise ClusterError(f"Applying {name} failed: {exc.status.message}.") from None
        applied.append(name)
    return applied
