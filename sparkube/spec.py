"""The cluster spec: what a cluster should look like, validated once.

Values come from four places with one precedence, implemented only here:
command-line flags > ``SPARKUBE_*`` environment variables > the cluster file
(``--config FILE``, else ``./sparkube.yaml`` when present) > defaults.

A bad value is a :class:`~sparkube.errors.ConfigError` (exit 2) whose one sentence names
the key, where it came from (file and line, variable or flag) and how to fix it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sparkube.env import Environment
from sparkube.errors import ConfigError
from sparkube.spark.image import SPARK_IMAGE

DEFAULT_CLUSTER = "sparkube"
DEFAULT_FILE = "sparkube.yaml"
CLUSTER_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
#: Supported Kubernetes minors (FACTS-KUBEADM.md: 1.35-1.37 in support late 2026).
SUPPORTED_KUBERNETES = ("1.35", "1.36", "1.37")
DEFAULT_KUBERNETES = "1.36"
DEFAULT_SPARK = SPARK_IMAGE.spark_version
MIN_TTL = timedelta(minutes=10)
MAX_TTL = timedelta(days=30)
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """Parse ``4h``, ``90m``, ``1d12h``, ``45s`` into a timedelta."""
    match = _DURATION_RE.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 4h, 90m or 1d12h")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta) -> str:
    total = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or "0s"


def validate_cluster_name(name: str) -> str:
    if not CLUSTER_NAME_RE.match(name):
        raise ValueError(
            f"cluster name {name!r} is invalid: use 1-32 lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


class ClusterSpec(BaseModel):
    """Everything that defines a cluster. Field names are the keys of sparkube.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(DEFAULT_CLUSTER, description="Cluster name; tags and local files use it.")
    region: str | None = Field(None, description="AWS region; default: the AWS SDK's own.")
    workers: int = Field(2, ge=0, le=200, description="Number of worker nodes.")
    instance_type: str = Field("t3.medium", description="EC2 type of the workers.")
    control_plane_type: str = Field("t3.medium", description="EC2 type of the control plane.")
    spot: bool = Field(False, description="Run workers on spot capacity.")
    allow_cidrs: tuple[str, ...] = Field(
        (), description="CIDRs allowed to reach SSH and the API; default: your public IP/32."
    )
    ami: str | None = Field(None, description="AMI id; default: Ubuntu 24.04 from SSM.")
    kubernetes_version: str = Field(DEFAULT_KUBERNETES, description="Kubernetes minor.")
    spark_version: str = Field(DEFAULT_SPARK, description="Spark version of the cluster image.")
    spark_image: str | None = Field(None, description="Spark container image override.")
    ttl: timedelta | None = Field(None, description="Nodes terminate themselves after this.")
    root_volume_gb: int = Field(40, ge=20, le=2000, description="Root volume size (GiB).")
    vpc_id: str | None = Field(None, description="VPC; default: the default VPC.")
    subnet_id: str | None = Field(None, description="Subnet; default: one of the VPC's.")
    cni: Literal["flannel"] = Field("flannel", description="Pod network add-on.")
    pod_cidr: str = Field("10.244.0.0/16", description="Pod network CIDR.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra AWS tags.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_cluster_name(value)

    @field_validator("allow_cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            out = []
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f"{item!r} is not a CIDR string")
                try:
                    out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
                except ValueError:
                    raise ValueError(f"{item!r} is not a CIDR like 203.0.113.7/32") from None
            return tuple(out)
        return value

    @field_validator("ami")
    @classmethod
    def _ami(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"ami-[0-9a-f]{8,17}", value):
            raise ValueError(f"{value!r} is not an AMI id like ami-0123456789abcdef0")
        return value

    @field_validator("instance_type", "control_plane_type")
    @classmethod
    def _itype(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", value):
            raise ValueError(f"{value!r} is not an EC2 instance type like t3.medium")
        return value

    @field_validator("kubernetes_version")
    @classmethod
    def _k8s(cls, value: str) -> str:
        value = value.removeprefix("v")
        minor = ".".join(value.split(".")[:2])
        if minor not in SUPPORTED_KUBERNETES:
            raise ValueError(
                f"Kubernetes {value} is not supported; use one of "
                + ", ".join(SUPPORTED_KUBERNETES)
            )
        return minor

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = parse_duration(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError("write the TTL with a unit, like 4h or 90m")
        if isinstance(value, timedelta) and not MIN_TTL <= value <= MAX_TTL:
            raise ValueError("the TTL must be between 10m and 30d")
        return value

    @field_validator("kubernetes_version", "spark_version", mode="before")
    @classmethod
    def _quoted_version(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f"write the version in quotes, like '{value}' (YAML reads 1.30 as 1.3)"
            )
        return value

    @field_validator("workers", "root_volume_gb", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a whole number, not true/false")
        return value

    @field_validator("pod_cidr")
    @classmethod
    def _pod_cidr(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError:
            raise ValueError(f"{value!r} is not a network CIDR like 10.244.0.0/16") from None

    @property
    def image(self) -> str:
        """The Spark container image jobs run in (official image, Java 17, with Python).
        The default is the one verified in sparkube.spark.image; another version maps to
        the same tag pattern (note ``X-python3`` alone is the Java 21 variant)."""
        if self.spark_image:
            return self.spark_image
        if self.spark_version == SPARK_IMAGE.spark_version:
            return SPARK_IMAGE.ref
        return f"apache/spark:{self.spark_version}-scala2.13-java17-python3-ubuntu"

    @property
    def node_count(self) -> int:
        return 1 + self.workers


#: Environment variable for each field (``name`` is ``SPARKUBE_CLUSTER`` per DESIGN.md).
ENV_VARS: dict[str, str] = {
    name: ("SPARKUBE_CLUSTER" if name == "name" else f"SPARKUBE_{name.upper()}")
    for name in ClusterSpec.model_fields
}
#: The flag that sets each field, for messages.
FLAG_NAMES: dict[str, str] = {
    "name": "--cluster",
    "allow_cidrs": "--allow-cidr",
    **{
        name: "--" + name.replace("_", "-")
        for name in ClusterSpec.model_fields
        if name not in ("name", "allow_cidrs")
    },
}


@dataclass(frozen=True)
class _Source:
    kind: Literal["flag", "env", "file", "default"]
    where: str


def find_config_file(env: Environment, config: Path | None) -> Path | None:
    if config is not None:
        path = config if config.is_absolute() else env.cwd / config
        if not path.is_file():
            raise ConfigError(f"Config file {config} does not exist; check the --config path.")
        return path
    default = env.cwd / DEFAULT_FILE
    return default if default.is_file() else None


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Load a cluster file; return its mapping and the line of each top-level key."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; save it as UTF-8.") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{line}: {problem}; fix the YAML syntax.") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path} must be a mapping of keys like 'workers: 3'; fix its layout.")
    lines = {
        str(key.value): key.start_mark.line + 1
        for key, _ in node.value
        if isinstance(key, yaml.ScalarNode)
    }
    return data, lines


def _describe_source(source: _Source, key: str) -> str:
    if source.kind == "file":
        return f"{source.where}: {key}"
    if source.kind == "env":
        return f"environment variable {source.where}"
    if source.kind == "flag":
        return f"option {source.where}"
    return f"default {key}"


def load_spec(
    *,
    env: Environment,
    config: Path | None = None,
    flags: Mapping[str, Any] | None = None,
    use_file: bool = True,
) -> ClusterSpec:
    """Build the spec from flags > environment > file > defaults.

    ``flags`` holds only the options the user gave (``None`` values are ignored).
    """
    values: dict[str, Any] = {}
    sources: dict[str, _Source] = {}

    path = find_config_file(env, config) if use_file else None
    if path is not None:
        data, lines = _read_file(path)
        for key, value in data.items():
            key = str(key)
            values[key] = value
            sources[key] = _Source("file", f"{path.name} line {lines.get(key, '?')}")

    for field_name, var in ENV_VARS.items():
        raw = env.environ.get(var)
        if raw is not None and raw != "":
            values[field_name] = _env_value(field_name, raw)
            sources[field_name] = _Source("env", var)

    for field_name, value in (flags or {}).items():
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        values[field_name] = value
        sources[field_name] = _Source("flag", FLAG_NAMES.get(field_name, field_name))

    try:
        return ClusterSpec(**values)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None


def _env_value(field_name: str, raw: str) -> Any:
    if field_name == "tags":
        pairs = [p.split("=", 1) for p in raw.split(",") if p.strip()]
        return {k.strip(): v.strip() for k, v in (p if len(p) == 2 else (p[0], "") for p in pairs)}
    return raw


def _config_error(exc: ValidationError, sources: Mapping[str, _Source]) -> ConfigError:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    key = loc[0] if loc else "?"
    source = sources.get(key, _Source("default", key))
    where = _describe_source(source, ".".join(loc))
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, list(ClusterSpec.model_fields), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "remove it"
        known = ", ".join(ClusterSpec.model_fields)
        return ConfigError(f"{where}: unknown key '{key}'; {hint} (known keys: {known}).")
    message = str(error["msg"]).removeprefix("Value error, ")
    got = error.get("input")
    shown = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
    return ConfigError(f"{where}: {message}{shown}; fix this value.")
