"""A lightkube client from a kubeconfig file.

lightkube (httpx) rather than the official client: the official client's current
releases need python-dateutil >= 3 while botocore needs < 3. ``trust_env`` is off so an
``HTTPS_PROXY`` in the user's environment never sees cluster traffic or credentials.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
from lightkube import Client, KubeConfig
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from sparkube.errors import ClusterError


def client_from_kubeconfig(
    path: Path, *, context: str | None = None, timeout: float = 15.0
) -> Client:
    try:
        config = KubeConfig.from_file(path)
        return Client(
            config=config.get(context_name=context),
            timeout=httpx2.Timeout(timeout),
            field_manager="sparkube",
            trust_env=False,
        )
    except (OSError, LightkubeConfigError, ValueError, KeyError) as exc:
        raise ClusterError(f"Cannot use the kubeconfig {path} ({exc}).") from None
