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

Before the first call of a command, :func:`check_reachable` resolves the endpoint's host
and opens one TCP connection to it, each within a few seconds: offline, or with no route
to AWS, the command says so at once instead of after botocore's retries of a dead
connection (40-70 s of silence). When a proxy carries the traffic, the proxy is checked.
Without credentials either, the same sentence says so and how to fix both.

Tests and ``bench/aws_calls.py`` observe every API call through :func:`observe_calls`,
which registers a botocore ``before-call`` hook on each client made while it is active.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config

from sparkube.errors import CloudError, ConfigError

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


#: Seconds the endpoint's name may take to resolve, and then to accept a connection.
REACH_TIMEOUT = 4.0


class AwsUnreachable(CloudError):
    """AWS (or the proxy carrying requests to it) cannot be reached from this machine.

    ``problem`` says what failed ("Cannot reach AWS: HOST does not resolve (...)"),
    ``fix`` what to check; the message is both. ``short`` is the failure in a few
    words without the cause ("HOST does not resolve"), for ``plan``'s offline note.
    """

    def __init__(self, problem: str, fix: str, *, short: str) -> None:
        super().__init__(f"{problem}; {fix}, then try again.")
        self.problem = problem
        self.fix = fix
        self.short = short

    def without_credentials(self) -> AwsUnreachable:
        """The same failure, saying in the same sentence that no credentials were found
        either, and how to fix both."""
        return AwsUnreachable(
            f"{self.problem}, and no AWS credentials were found",
            f"{self.fix}, and run 'aws configure' (or 'aws sso login') or set AWS_PROFILE "
            "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            short=self.short,
        )


def check_reachable(
    url: str, environ: Mapping[str, str], *, timeout: float = REACH_TIMEOUT
) -> None:
    """Raise :class:`CloudError` unless ``url``'s host (or the proxy that carries
    requests to it) resolves and accepts a TCP connection within ``timeout`` seconds
    each; nothing is sent over the connection."""
    parts = urlsplit(url)
    if not parts.hostname:
        return
    custom = any(k.startswith("AWS_ENDPOINT_URL") and v for k, v in environ.items())
    where = " and AWS_ENDPOINT_URL" if custom else ""
    via = f"at {url}"
    proxy = _proxy(environ, parts.scheme, parts.hostname)
    if proxy:
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        where = f" and the proxy settings{where}"
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if proxy:  # shown without any user:password of the proxy URL
        via = f"through the proxy at {parts.scheme}://{host}:{port}"
    try:
        addresses = _resolve(host, port, timeout)
    except OSError as exc:
        what = "the proxy " if proxy else ""
        raise AwsUnreachable(
            f"Cannot reach AWS: {what}{host} does not resolve ({_reason(exc)})",
            f"check your network connection{where}",
            short=f"{what}{host} does not resolve",
        ) from None
    failure: OSError = OSError("no address")
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
            return
        except OSError as exc:
            failure = exc
    raise AwsUnreachable(
        f"Cannot reach AWS {via} ({_reason(failure)})",
        f"check your network connection, firewall or proxy{where}",
        short=f"no connection {via}",
    )


def _resolve(host: str, port: int, timeout: float) -> list[Any]:
    """``getaddrinfo`` with a deadline (it has none: a dead resolver takes 5 s a try)."""
    answer: dict[str, Any] = {}

    def lookup() -> None:
        try:
            answer["ok"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            answer["error"] = exc

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" in answer:
        raise answer["error"]
    if "ok" not in answer:
        raise TimeoutError(f"no DNS answer in {timeout:g} s")
    return list(answer["ok"])


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    if isinstance(exc, TimeoutError | socket.timeout):
        return str(exc) if str(exc) not in ("", "timed out") else "no answer in time"
    return exc.strerror or str(exc) or type(exc).__name__


def _proxy(environ: Mapping[str, str], scheme: str, host: str) -> str | None:
    """The proxy from the environment that carries requests to ``host``, if any (then
    the proxy, not this machine, resolves the host and connects to it)."""
    names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    proxy = next((environ[n] for n in names if environ.get(n)), None)
    if proxy is None:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    entries = [e.strip().lower().lstrip(".") for e in no_proxy.split(",") if e.strip()]
    host = host.lower()
    if any(e == "*" or host == e or host.endswith("." + e) for e in entries):
        return None
    return proxy


#: Where the list of an account's regions is asked for when no region is set
#: (DescribeRegions answers the same from any region of the partition).
LISTING_REGION = "us-east-1"


def configured_region(environ: Mapping[str, str], requested: str | None) -> str | None:
    """The region: ``--region``/spec, else ``AWS_REGION``/``AWS_DEFAULT_REGION``, else the
    profile's ``region``; None when none is set."""
    if requested:
        return requested
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(var):
            return environ[var]
    region = _botocore_session(environ).get_config_variable("region")
    return str(region) if region else None


def resolve_region(environ: Mapping[str, str], requested: str | None) -> str:
    """:func:`configured_region`, or a :class:`ConfigError` when none is set."""
    region = configured_region(environ, requested)
    if not region:
        raise ConfigError(
            "No AWS region is set; pass --region, set AWS_REGION, or add 'region:' to "
            "sparkube.yaml."
        )
    return region


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
        #: Shared with :meth:`for_region` copies: one reachability check per command.
        self._reach: dict[str, float] = {}

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

    def has_credentials(self) -> bool:
        """Whether the SDK's chain finds credentials (local files, variables, SSO cache,
        or the instance's role); nothing is sent to AWS."""
        return self.session.get_credentials() is not None

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
        client.meta.events.register(
            "before-call", functools.partial(self._first_call, client.meta.endpoint_url)
        )
        self._clients[key] = client
        return client

    def _first_call(self, endpoint_url: str, **_: Any) -> None:
        """Before the first API call of this command: is AWS reachable at all?"""
        if self._reach:
            return
        started = time.monotonic()
        try:
            check_reachable(endpoint_url, self.environ)
        except AwsUnreachable as exc:
            # Offline and without credentials: say both at once, not one per run.
            if not self._credentials_found():
                raise exc.without_credentials() from None
            raise
        self._reach[endpoint_url] = time.monotonic() - started

    def _credentials_found(self) -> bool:
        """:meth:`has_credentials`, True when the chain itself fails (a broken profile
        is reported by the call that needs it)."""
        try:
            return self.has_credentials()
        except Exception:
            return True

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def autoscaling(self) -> Any:
        return self.client("autoscaling")

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
        other._reach = self._reach
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
