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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sparkube.defaults import (
    DEFAULT_CLUSTER,
    DEFAULT_CONTAINERD_RELEASE_URL,
    DEFAULT_CONTROL_PLANE_TYPE,
    DEFAULT_CPU_CREDITS,
    DEFAULT_IDLE_MINUTES,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_ROOT_VOLUME_GB,
    DEFAULT_WORKERS,
    MAX_ROOT_VOLUME_GB,
    MAX_WORKERS,
    MIN_ROOT_VOLUME_GB,
)
from sparkube.env import Environment
from sparkube.errors import ConfigError
from sparkube.spark.image import SPARK_IMAGE

DEFAULT_FILE = "sparkube.yaml"
CLUSTER_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
#: Supported Kubernetes minors (FACTS-KUBEADM.md: 1.35-1.37 in support late 2026).
SUPPORTED_KUBERNETES = ("1.35", "1.36", "1.37")
DEFAULT_KUBERNETES = "1.36"
DEFAULT_SPARK = SPARK_IMAGE.spark_version
#: Where nodes install kubelet, kubeadm and kubectl from (``{minor}``: the Kubernetes
#: minor, e.g. 1.36): the Kubernetes project's own apt repository.
DEFAULT_KUBERNETES_APT_REPO = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"
#: What the apt repository URL may hold (it is written into the node's shell script).
_APT_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._/:{}-]*)?")
#: A registry host as images name it (``docker.io``, ``registry.k8s.io``,
#: ``registry.example.com:5000``), or ``_default`` (every registry without its own entry).
_REGISTRY_RE = re.compile(
    r"_default|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?"
)
_MIRROR_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._/-]*)?")
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
    workers: int = Field(
        DEFAULT_WORKERS,
        ge=0,
        le=MAX_WORKERS,
        description="Workers the cluster keeps at least: the minimum of its worker group "
        "(the same setting as min_workers).",
    )
    min_workers: int | None = Field(
        None,
        ge=0,
        le=MAX_WORKERS,
        description="The worker group's minimum; another name for workers (give one of them).",
    )
    max_workers: int | None = Field(
        None,
        ge=0,
        le=MAX_WORKERS,
        description="The worker group's maximum (at least the minimum); default: the minimum.",
    )
    idle_minutes: int = Field(
        DEFAULT_IDLE_MINUTES,
        ge=1,
        le=24 * 60,
        description="Minutes a worker above the minimum may hold nothing of an unfinished "
        "job before the controller removes it.",
    )
    instance_type: str = Field(DEFAULT_INSTANCE_TYPE, description="EC2 type of the workers.")
    control_plane_type: str = Field(
        DEFAULT_CONTROL_PLANE_TYPE, description="EC2 type of the control plane."
    )
    spot: bool = Field(False, description="Run workers on spot capacity.")
    cpu_credits: Literal["standard", "unlimited"] = Field(
        DEFAULT_CPU_CREDITS,
        description="CPU credit mode of burstable types (t2, t3, t3a, t4g); others ignore it.",
    )
    allow_cidrs: tuple[str, ...] = Field(
        (), description="CIDRs allowed to reach SSH and the API; default: your public IP/32."
    )
    ami: str | None = Field(None, description="AMI id; default: Ubuntu 24.04 from SSM.")
    kubernetes_version: str = Field(DEFAULT_KUBERNETES, description="Kubernetes minor.")
    kubernetes_apt_repo: str = Field(
        DEFAULT_KUBERNETES_APT_REPO,
        description="apt repository (https) of kubelet, kubeadm and kubectl; {minor} is "
        "replaced by the Kubernetes minor.",
    )
    registry_mirrors: dict[str, str] = Field(
        default_factory=dict,
        description="Registry host -> mirror URL (https) the nodes pull its images through.",
    )
    containerd: Literal["auto", "distro", "release"] = Field(
        "auto",
        description="Where nodes get containerd: the distribution's package (distro), "
        "containerd's pinned 2.x release (release), or auto: distro up to Kubernetes 1.36, "
        "release from 1.37.",
    )
    containerd_release_url: str = Field(
        DEFAULT_CONTAINERD_RELEASE_URL,
        description="Where the containerd release is downloaded (GitHub's release download "
        "path or a mirror with its layout); its SHA-256 stays the pinned one.",
    )
    spark_version: str = Field(DEFAULT_SPARK, description="Spark version of the cluster image.")
    spark_image: str | None = Field(None, description="Spark container image override.")
    ttl: timedelta | None = Field(None, description="Nodes terminate themselves after this.")
    root_volume_gb: int = Field(
        DEFAULT_ROOT_VOLUME_GB,
        ge=MIN_ROOT_VOLUME_GB,
        le=MAX_ROOT_VOLUME_GB,
        description="Root volume size (GiB).",
    )
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

    @field_validator("cpu_credits", mode="before")
    @classmethod
    def _credits(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

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

    @field_validator("kubernetes_apt_repo", mode="before")
    @classmethod
    def _apt_repo(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        url = value.strip()
        if not url.endswith("/"):
            url += "/"
        rest = url.replace("{minor}", "")
        if not _APT_URL_RE.fullmatch(url) or "{" in rest or "}" in rest:
            raise ValueError(
                f"{value!r} is not an https URL of an apt repository like "
                f"{DEFAULT_KUBERNETES_APT_REPO} (letters, digits and ._:/- only; "
                "{minor} stands for the Kubernetes minor)"
            )
        return url

    @field_validator("registry_mirrors", mode="before")
    @classmethod
    def _mirrors(cls, value: Any) -> Any:
        if isinstance(value, str):  # REGISTRY=URL pairs, comma or space separated
            value = value.replace(",", " ").split()
        if isinstance(value, list | tuple):
            pairs: dict[str, Any] = {}
            for item in value:
                if not isinstance(item, str) or "=" not in item:
                    raise ValueError(
                        f"{item!r} is not REGISTRY=URL like registry.k8s.io=https://mirror.example.com"
                    )
                registry, _, url = item.partition("=")
                pairs[registry] = url
            value = pairs
        if not isinstance(value, dict):
            return value
        out: dict[str, str] = {}
        for registry, url in value.items():
            host = str(registry).strip().lower()
            if not _REGISTRY_RE.fullmatch(host) or host == "localhost":
                raise ValueError(
                    f"{registry!r} is not a registry host like docker.io, registry.k8s.io or "
                    "registry.example.com:5000 (or _default for every other registry)"
                )
            text = url.strip().rstrip("/") if isinstance(url, str) else ""
            if not _MIRROR_URL_RE.fullmatch(text):
                raise ValueError(
                    f"the mirror of {host}, {url!r}, is not an https URL like "
                    "https://mirror.example.com or https://mirror.example.com:5000/prefix "
                    "(letters, digits and ._/- only)"
                )
            out[host] = text
        return dict(sorted(out.items()))

    @field_validator("containerd", mode="before")
    @classmethod
    def _containerd(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("containerd_release_url")
    @classmethod
    def _release_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._:+-]+)*", value):
            raise ValueError(
                f"{value!r} is not a URL like {DEFAULT_CONTAINERD_RELEASE_URL} (http or "
                "https; letters, digits and . _ : + - in its path)"
            )
        return value

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

    @model_validator(mode="after")
    def _minimum(self) -> ClusterSpec:
        """``min_workers`` given alone sets ``workers`` (one setting, two names); both
        given and different are refused by :func:`load_spec`, which knows where each
        came from."""
        if self.min_workers is not None and "workers" not in self.model_fields_set:
            object.__setattr__(self, "workers", self.min_workers)
            self.model_fields_set.add("workers")
        return self

    @field_validator("workers", "min_workers", "max_workers", "root_volume_gb", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{str(value).lower()} is not a whole number")
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
    def kubernetes_apt_url(self) -> str:
        """The apt repository the nodes install Kubernetes from, for this minor."""
        return self.kubernetes_apt_repo.replace("{minor}", self.kubernetes_version)

    @property
    def node_count(self) -> int:
        return 1 + self.workers

    @property
    def max_count(self) -> int:
        """The worker group's maximum: ``max_workers``, else the minimum."""
        return self.workers if self.max_workers is None else max(self.max_workers, self.workers)


#: Environment variable for each field (``name`` is ``SPARKUBE_CLUSTER`` per DESIGN.md).
ENV_VARS: dict[str, str] = {
    name: ("SPARKUBE_CLUSTER" if name == "name" else f"SPARKUBE_{name.upper()}")
    for name in ClusterSpec.model_fields
}
#: The flag that sets each field, for messages.
FLAG_NAMES: dict[str, str] = {
    "name": "--cluster",
    "allow_cidrs": "--allow-cidr",
    "registry_mirrors": "--registry-mirror",
    "containerd_release_url": "--containerd-url",
    **{
        name: "--" + name.replace("_", "-")
        for name in ClusterSpec.model_fields
        if name not in ("name", "allow_cidrs", "registry_mirrors", "containerd_release_url")
    },
}


@dataclass(frozen=True)
class _Source:
    kind: Literal["flag", "env", "file", "default"]
    where: str
    #: The line in the file (0 for other sources): problems are listed in file order.
    line: int = 0


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

    ``flags`` holds only the options the user gave (``None`` values are ignored). Every
    problem (unknown keys and bad values, from every source) is reported at once, in
    one :class:`ConfigError`.
    """
    values: dict[str, Any] = {}
    sources: dict[str, _Source] = {}

    path = find_config_file(env, config) if use_file else None
    if path is not None:
        data, lines = _read_file(path)
        for key, value in data.items():
            key = str(key)
            line = lines.get(key, 0)
            values[key] = value
            sources[key] = _Source("file", f"{path.name} line {line or '?'}", line)

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

    unknown = [key for key in values if key not in ClusterSpec.model_fields]
    known = {key: value for key, value in values.items() if key not in unknown}
    try:
        spec = ClusterSpec(**known)
    except ValidationError as exc:
        raise _config_error(_problems(exc.errors(), unknown, sources)) from None
    if unknown:
        raise _config_error(_problems([], unknown, sources))
    _check_group_size(spec, sources)
    return spec


def _where(sources: Mapping[str, _Source], key: str, value: Any) -> str:
    source = sources.get(key, _Source("default", key))
    if source.kind == "flag":
        return f"{source.where} {value}"
    return f"{_describe_source(source, key)} {value}"


def _check_group_size(spec: ClusterSpec, sources: Mapping[str, _Source]) -> None:
    """The worker group's size across fields: ``workers`` and ``min_workers`` are one
    setting, and the maximum is at least the minimum."""
    if spec.min_workers is not None and spec.min_workers != spec.workers:
        raise ConfigError(
            f"{_where(sources, 'workers', spec.workers)} and "
            f"{_where(sources, 'min_workers', spec.min_workers)} differ; they are one "
            "setting (the worker group's minimum), so give only one of them."
        )
    if spec.max_workers is not None and spec.max_workers < spec.workers:
        key = "min_workers" if spec.min_workers is not None else "workers"
        raise ConfigError(
            f"{_where(sources, 'max_workers', spec.max_workers)} is less than the minimum "
            f"({_where(sources, key, spec.workers)}); raise the maximum or leave it out "
            "(it defaults to the minimum)."
        )


def _env_value(field_name: str, raw: str) -> Any:
    if field_name == "registry_mirrors":
        return [p.strip() for p in raw.split(",") if p.strip()]
    if field_name == "tags":
        pairs = [p.split("=", 1) for p in raw.split(",") if p.strip()]
        return {k.strip(): v.strip() for k, v in (p if len(p) == 2 else (p[0], "") for p in pairs)}
    return raw


@dataclass(frozen=True)
class _Problem:
    source: _Source
    key: str
    text: str
    #: What to do, for a message with this one problem.
    fix: str

    @property
    def line(self) -> str:
        return f"{_describe_source(self.source, self.key)}: {self.text}"

    @property
    def order(self) -> tuple[int, int]:
        rank = {"file": 0, "env": 1, "flag": 2, "default": 3}[self.source.kind]
        return rank, self.source.line


def _shown(value: Any) -> str:
    """A value the user gave, as they would write it (text in single quotes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


#: What the value should have been, in sparkube's words, for pydantic's type errors.
_EXPECTED: dict[str, str] = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "dict_type": "a mapping like {team: data}",
    "tuple_type": "a list",
    "list_type": "a list",
    "time_delta_type": "a duration like 4h",
    "time_delta_parsing": "a duration like 4h",
}


def _value_problem(error: Mapping[str, Any]) -> str:
    """One pydantic error in sparkube's words: the value given and what is expected."""
    kind = str(error["type"])
    got = error.get("input")
    limits = error.get("ctx") or {}
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if got is None:
        return "has no value"
    if kind in _EXPECTED:
        return f"{_shown(got)} is not {_EXPECTED[kind]}"
    if kind == "greater_than_equal":
        return f"{_shown(got)} is less than {limits.get('ge')}, the least allowed"
    if kind == "less_than_equal":
        return f"{_shown(got)} is more than {limits.get('le')}, the most allowed"
    if kind == "literal_error":
        expected = str(limits.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{_shown(got)} is not one of: {expected}"
    return f"{_shown(got)} is not valid here"


def _problems(
    errors: list[Any], unknown: list[str], sources: Mapping[str, _Source]
) -> list[_Problem]:
    found = []
    known = list(ClusterSpec.model_fields)
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        text = (
            f"unknown key (did you mean {close[0]}?)"
            if close
            else f"unknown key (known keys: {', '.join(known)})"
        )
        found.append(_Problem(sources[key], key, text, "rename or remove it"))
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        key = loc[0] if loc else "?"
        source = sources.get(key, _Source("default", key))
        found.append(_Problem(source, ".".join(loc), _value_problem(error), "fix this value"))
    return sorted(found, key=lambda problem: problem.order)


def _config_error(problems: list[_Problem]) -> ConfigError:
    """One problem: its sentence. Several: one sentence saying how many and where, then
    one line per problem (in file order, then variables, then options)."""
    lines = tuple(problem.line for problem in problems)
    if len(problems) == 1:
        return ConfigError(f"{lines[0]}; {problems[0].fix}.", problems=lines)
    files = {p.source.where.split(" line ")[0] for p in problems if p.source.kind == "file"}
    only_file = len(files) == 1 and all(p.source.kind == "file" for p in problems)
    where = f"{files.pop()} has" if only_file else "The cluster settings have"
    return ConfigError(
        f"{where} {len(problems)} problems; fix each one and run again.",
        detail="\n".join(lines),
        problems=lines,
    )
