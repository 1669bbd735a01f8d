"""The admin kubeconfig: fetched from the control plane, renamed, rewritten, merged.

kubeadm's ``admin.conf`` names everything ``kubernetes`` / ``kubernetes-admin`` and
points at the private advertise address. The copy sparkube keeps names the cluster,
context and user after the cluster (so several sparkube clusters live side by side in
one ``~/.kube/config``) and points at an address the operator can reach. Merging only
ever replaces entries carrying those names; every other cluster/context/user stays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sparkube.env import Environment, write_private_file
from sparkube.errors import ClusterError, ConfigError

KUBECONFIG_FILE = "kubeconfig"


def names_for(cluster: str) -> tuple[str, str, str]:
    """(cluster, context, user) entry names for a sparkube cluster."""
    return cluster, cluster, f"{cluster}-admin"


def rewrite_admin_kubeconfig(text: str, *, cluster: str, server: str) -> str:
    """kubeadm's admin.conf -> sparkube's kubeconfig (renamed entries, reachable server)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClusterError(f"The control plane's admin.conf is not valid YAML ({exc}).") from None
    if not isinstance(doc, dict) or doc.get("kind") != "Config":
        raise ClusterError("The control plane's admin.conf is not a kubeconfig.")
    clusters = doc.get("clusters") or []
    users = doc.get("users") or []
    if len(clusters) != 1 or len(users) != 1:
        raise ClusterError(
            "The control plane's admin.conf should hold exactly one cluster and one user."
        )
    cluster_name, context_name, user_name = names_for(cluster)
    cluster_entry = dict(clusters[0].get("cluster") or {})
    cluster_entry["server"] = server
    user_entry = users[0].get("user") or {}
    out = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster_entry}],
        "users": [{"name": user_name, "user": user_entry}],
        "contexts": [
            {"name": context_name, "context": {"cluster": cluster_name, "user": user_name}}
        ],
        "current-context": context_name,
        "preferences": {},
    }
    return yaml.safe_dump(out, sort_keys=False)


def server_url(host: str, port: int = 6443) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def kubeconfig_path(env: Environment, cluster: str) -> Path:
    return env.cluster_dir(cluster) / KUBECONFIG_FILE


def save_kubeconfig(env: Environment, cluster: str, text: str) -> Path:
    return write_private_file(env.cluster_dir(cluster, create=True) / KUBECONFIG_FILE, text)


def user_kubeconfig_path(env: Environment) -> Path:
    """Where ``--merge`` writes: the first entry of $KUBECONFIG, else ~/.kube/config."""
    value = env.environ.get("KUBECONFIG", "")
    first = next((p for p in value.split(":") if p), None)
    if first:
        return Path(first).expanduser()
    home = env.environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".kube" / "config"


def merge_kubeconfig(ours: str, theirs: str | None) -> str:
    """Merge our kubeconfig into another: replace same-named entries, keep the rest.

    The other file's ``current-context`` is kept when it has one.
    """
    new = yaml.safe_load(ours)
    try:
        old = yaml.safe_load(theirs) if theirs and theirs.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"The existing kubeconfig is not valid YAML ({exc}); fix it before merging."
        ) from None
    if old is None:
        old = {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    if not isinstance(old, dict):
        raise ConfigError("The existing kubeconfig is not a mapping; fix it before merging.")
    merged: dict[str, Any] = dict(old)
    for section in ("clusters", "contexts", "users"):
        replacing = {entry["name"] for entry in new.get(section) or []}
        kept = [e for e in (old.get(section) or []) if e.get("name") not in replacing]
        merged[section] = kept + list(new.get(section) or [])
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    if not merged.get("current-context"):
        merged["current-context"] = new.get("current-context")
    return yaml.safe_dump(merged, sort_keys=False)


def merge_into_user_config(env: Environment, cluster: str) -> Path:
    """Merge the cluster's saved kubeconfig into ~/.kube/config (or $KUBECONFIG)."""
    ours_path = kubeconfig_path(env, cluster)
    if not ours_path.is_file():
        raise ClusterError(
            f"No kubeconfig for cluster {cluster} at {ours_path}; run `sparkube up` first."
        )
    target = user_kubeconfig_path(env)
    theirs = target.read_text(encoding="utf-8") if target.exists() else None
    merged = merge_kubeconfig(ours_path.read_text(encoding="utf-8"), theirs)
    return write_private_file(target, merged)
