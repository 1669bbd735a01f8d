"""Building boto3 clients from the injected :class:`~sparkube.env.Environment`.

sparkube has no credential or endpoint options of its own: credentials, profiles and
endpoints (``AWS_ENDPOINT_URL`` points every client at moto in tests) come from the
standard SDK chain. botocore reads ``os.environ`` by itself, so the few variables that
matter are taken from the injected environment and handed to botocore explicitly; the
rest of the chain (profiles, SSO, IMDS on EC2) behaves as the SDK documents.

One :class:`AwsClients` per command and region. Clients are created lazily and are not
shared across threads (boto3 sessions are not thread-safe; clients are, once made).
Throttling is retried by botocore's ``standard`` retry mode (``AWS_RETRY_MODE`` /
``AWS_MAX_ATTEMPTS`` override it, as the SDK documents).

Tests and ``bench/aws_calls.py`` observe every API call through :func:`observe_calls`,
which registers a botocore ``before-call`` hook on each client made while it is active.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from sparkube.errors import ConfigError

log = logging.getLogger(__name__)

#: Called with (service, operation) before every AWS API call.
CallObserver = Callable[[str, str], None]
_observers: list[CallObserver] = []
_observers_lock = threading.Lock()

#: Operations that change nothing (used to count writes).
READ_PREFIXES = ("Describe", "Get", "List", "Head")


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


@contextlib.contextmanager
def observe_calls(observer: CallObserver) -> Iterator[None]:
    """Call ``observer(service, operation)`` for every API call of clients made inside."""
    with _observers_lock:
        _observers.append(observer)
    try:
        yield
    finally:
        with _observers_lock:
            _observers.remove(observer)


@dataclass
class CallCounter:
    """Counts API calls by ``Service.Operation``; a ready-made observer."""

    calls: dict[str, int] = field(default_factory=dict)

    def __call__(self, service: str, operation: str) -> None:
        key = f"{service}.{operation}"
        self.calls[key] = self.calls.get(key, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def writes(self) -> dict[str, int]:
        return {k: v for k, v in self.calls.items() if not is_read(k.split(".", 1)[1])}


def _retry_config(environ: Mapping[str, str], *, attempts: int | None = None) -> Config:
    mode = environ.get("AWS_RETRY_MODE") or "standard"
    if mode not in ("standard", "adaptive", "legacy"):
        mode = "standard"
    max_attempts = attempts or int(environ.get("AWS_MAX_ATTEMPTS") or 8)
    return Config(
        retries={"mode": mode, "total_max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="sparkube",
    )


def resolve_region(environ: Mapping[str, str], requested: str | None) -> str:
    """The region: ``--region``/spec, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, else the
    profile's ``region``."""
    if requested:
        return requested
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(var):
            return environ[var]
    region = _botocore_session(environ).get_config_variable("region")
    if not region:
        raise ConfigError(
            "No AWS region is set; pass --region, set AWS_REGION, or add 'region:' to "
            "sparkube.yaml."
        )
    return str(region)


def _botocore_session(environ: Mapping[str, str]) -> botocore.session.Session:
    session = botocore.session.Session()
    home = environ.get("HOME")
    if environ.get("AWS_CONFIG_FILE"):
        session.set_config_variable("config_file", environ["AWS_CONFIG_FILE"])
    elif home:
        session.set_config_variable("config_file", f"{home}/.aws/config")
    if environ.get("AWS_SHARED_CREDENTIALS_FILE"):
        session.set_config_variable("credentials_file", environ["AWS_SHARED_CREDENTIALS_FILE"])
    elif home:
        session.set_config_variable("credentials_file", f"{home}/.aws/credentials")
    resolver = session.get_component("credential_provider")
    env_provider = resolver.get_provider("env")
    if env_provider is not None:
        env_provider.environ = dict(environ)
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        resolver.remove("iam-role")
    return session


class AwsClients:
    """Lazily created boto3 clients for one region, configured from the environment."""

    def __init__(self, environ: Mapping[str, str], region: str) -> None:
        self.environ = environ
        self.region = region
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._account: str | None = None

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            bs = _botocore_session(self.environ)
            profile = self.environ.get("AWS_PROFILE") or None
            has_keys = self.environ.get("AWS_ACCESS_KEY_ID") and self.environ.get(
                "AWS_SECRET_ACCESS_KEY"
            )
            self._session = boto3.Session(
                botocore_session=bs,
                region_name=self.region,
                profile_name=None if has_keys else profile,
            )
        return self._session

    def endpoint_url(self, service: str) -> str | None:
        specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
        return self.environ.get(specific) or self.environ.get("AWS_ENDPOINT_URL") or None

    def client(
        self, service: str, *, region: str | None = None, attempts: int | None = None
    ) -> Any:
        region = region or self.region
        key = (service, region)
        if key in self._clients:
            return self._clients[key]
        config = _retry_config(self.environ, attempts=attempts)
        endpoint = self.endpoint_url(service)
        if service == "s3" and endpoint:
            config = config.merge(Config(s3={"addressing_style": "path"}))
        client = self.session.client(
            service, region_name=region, endpoint_url=endpoint, config=config
        )
        client.meta.events.register("before-call", _notify)
        self._clients[key] = client
        return client

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    def account_id(self) -> str:
        if self._account is None:
            self._account = str(self.client("sts").get_caller_identity()["Account"])
        return self._account

    def for_region(self, region: str) -> AwsClients:
        other = AwsClients(self.environ, region)
        other._session = self._session
        other._account = self._account
        return other


def _notify(model: Any, **_: Any) -> None:
    with _observers_lock:
        observers = list(_observers)
    if not observers:
        return
    service = model.service_model.service_id.hyphenize()
    for observer in observers:
        observer(service, model.name)


def known_regions() -> list[str]:
    """Regions botocore knows for EC2, in every partition (offline; lags new regions)."""
    session = botocore.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return sorted(regions)
