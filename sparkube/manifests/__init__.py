"""Kubernetes manifests sparkube applies: packaged data, every image version-pinned."""
