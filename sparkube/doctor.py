"""``sparkube doctor``: preflight checks of the machine and the AWS account.

Each check returns a :class:`Check` (ok / warn / fail, a one-line finding and, when not
ok, a one-line fix). Nothing here prints; the CLI renders the list. AWS calls go through
:class:`~sparkube.aws.session.AwsClients` and :func:`~sparkube.aws.errors.aws_errors`,
so endpoints (moto in tests), credentials and error sentences are the same as in every
other command. Only reads are made. The public IP is looked up only when
``SPARKUBE_DETECT_IP`` allows it.
"""

from __future__ import annotations

import importlib
import ipaddress
import shutil
import socket
import ssl
import urllib.error
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sparkube.aws import instances, network
from sparkube.aws.errors import NO_CREDENTIALS, aws_errors, error_code, error_message
from sparkube.aws.provider import check_region
from sparkube.aws.session import AwsClients, resolve_region
from sparkube.env import Environment
from sparkube.errors import SparkubeError
from sparkube.spark.java import INSTALL_HINT, MINIMUM_JAVA, find_java
from sparkube.spark.versions import SparkVersions, spark_versions
from sparkube.spec import ClusterSpec

Status = Literal["ok", "warn", "fail"]
OK: Status = "ok"
WARN: Status = "warn"
FAIL: Status = "fail"

#: Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances, in vCPUs.
VCPU_QUOTA_CODE = "L-1216C47A"
#: Used to reach STS when no region is configured (credentials are not regional).
_FALLBACK_REGION = "us-east-1"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    finding: str
    fix: str = ""


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _split(message: str, default_fix: str) -> tuple[str, str]:
    """A sparkube sentence 'what is wrong; what to do' as (finding, fix)."""
    what, sep, todo = message.partition("; ")
    if sep:
        return _sentence(what), _sentence(todo)
    return _sentence(message), _sentence(default_fix)


# --- local --------------------------------------------------------------------------


def check_java(env: Environment) -> Check:
    try:
        java = find_java(env.environ)
    except SparkubeError as exc:
        finding, fix = _split(exc.message, INSTALL_HINT)
        return Check("Java", FAIL, finding, fix)
    return Check("Java", OK, f"Java {java.version} at {java.path} (Spark needs {MINIMUM_JAVA}+).")


def check_pyspark(versions: SparkVersions | None = None) -> Check:
    """The embedded Spark: importable, and the version sparkube pins (the cluster's)."""
    versions = versions or spark_versions()
    try:
        module = importlib.import_module("pyspark")
    except Exception as exc:  # ImportError, or a broken install
        return Check(
            "PySpark",
            FAIL,
            f"pyspark cannot be imported ({exc}).",
            "Reinstall sparkube in its environment (pip install --force-reinstall sparkube).",
        )
    version = getattr(module, "__version__", "unknown")
    where = f"pyspark {version} on Python {versions.local_python} runs local jobs"
    if versions.mismatch():
        return Check(
            "PySpark",
            WARN,
            f"{where}; sparkube pins pyspark {versions.pinned}, the Spark of the cluster "
            "image, so a job tried locally is not the job the cluster runs.",
            f"pip install pyspark=={versions.pinned} (or reinstall sparkube) in sparkube's "
            "environment.",
        )
    return Check("PySpark", OK, f"{where}. {versions.difference()}")


def check_cluster_spark(versions: SparkVersions) -> Check:
    """What cluster jobs run on: the image's Spark and Python (no cluster is contacted)."""
    image = versions.image
    if not versions.known_image:
        return Check(
            "Cluster Spark",
            WARN,
            versions.difference(),
            f"Leave spark_image and spark_version unset to run {image.ref}, or use an "
            f"image with Spark {versions.pinned}.",
        )
    return Check(
        "Cluster Spark",
        OK,
        f"Spark {image.spark_version} on Python {image.python_version} and Java "
        f"{image.java_version} in {image.ref}.",
    )


def check_ssh(env: Environment) -> Check:
    path = shutil.which("ssh", path=env.environ.get("PATH"))
    if path is None:
        return Check(
            "ssh client",
            WARN,
            "No ssh client on PATH; 'sparkube ssh' will not work.",
            "Install OpenSSH (Debian/Ubuntu: sudo apt-get install openssh-client).",
        )
    return Check("ssh client", OK, f"ssh at {path}.")


# --- AWS ----------------------------------------------------------------------------


def check_region_of(env: Environment, spec: ClusterSpec) -> tuple[Check, str | None]:
    try:
        region = resolve_region(env.environ, spec.region)
        check_region(region)
    except SparkubeError as exc:
        finding, fix = _split(exc.message, "Pass --region or set AWS_REGION.")
        return Check("Region", FAIL, finding, fix), None
    source = "from --region / sparkube.yaml" if spec.region else "from the AWS SDK settings"
    return Check("Region", OK, f"{region} ({source})."), region


def check_credentials(clients: AwsClients) -> Check:
    try:
        with aws_errors(clients.region):
            identity = clients.client("sts").get_caller_identity()
    except SparkubeError as exc:
        finding, fix = _split(exc.message, NO_CREDENTIALS)
        return Check("AWS credentials", FAIL, finding, fix)
    return Check(
        "AWS credentials",
        OK,
        f"Account {identity.get('Account')} as {identity.get('Arn')}.",
    )


def check_instance_types(clients: AwsClients, spec: ClusterSpec) -> tuple[Check, int | None]:
    """EC2 answers, and the spec's types exist, are offered and are big enough.

    Returns the check and the vCPUs a full ``up`` of the spec would launch.
    """
    names = [spec.control_plane_type, spec.instance_type]
    try:
        with aws_errors(clients.region):
            types = instances.describe_types(clients.ec2, names)
            instances.check_kubeadm_minimum(types[spec.control_plane_type], "--control-plane-type")
            instances.check_kubeadm_minimum(types[spec.instance_type], "--instance-type")
            instances.check_offered(clients.ec2, names, clients.region, None)
    except SparkubeError as exc:
        finding, fix = _split(exc.message, "Choose another --instance-type or region.")
        return Check("EC2 instance types", FAIL, finding, fix), None
    cp, worker = types[spec.control_plane_type], types[spec.instance_type]
    needed = cp.vcpus + spec.max_count * worker.vcpus  # the worker group at its maximum
    shown = ", ".join(
        f"{t.name} ({t.vcpus} vCPU, {t.memory_mib / 1024:g} GiB)"
        for t in sorted(types.values(), key=lambda t: t.name)
    )
    return Check("EC2 instance types", OK, f"{shown} offered in {clients.region}."), needed


def check_vcpu_quota(clients: AwsClients, needed: int | None, spot: bool) -> Check:
    name = "vCPU quota"
    try:
        response = clients.client("service-quotas", attempts=1).get_service_quota(
            ServiceCode="ec2", QuotaCode=VCPU_QUOTA_CODE
        )
        value = int(float(response["Quota"]["Value"]))
    except Exception as exc:  # no permission, no endpoint (moto), unexpected shape
        reason = error_code(exc) or error_message(exc) or type(exc).__name__
        return Check(
            name,
            WARN,
            f"Could not read the quota {VCPU_QUOTA_CODE} in {clients.region} ({reason}).",
            "Check 'Running On-Demand Standard instances' in the Service Quotas console "
            "(or allow servicequotas:GetServiceQuota).",
        )
    what = f"On-Demand Standard vCPU quota in {clients.region} is {value}"
    if needed is None:
        return Check(name, OK, what + ".")
    if spot:
        return Check(name, OK, f"{what}; spot workers count against L-34B43A08.")
    if value < needed:
        return Check(
            name,
            FAIL,
            f"{what}; the cluster needs {needed} vCPUs.",
            f"Request more in Service Quotas ({VCPU_QUOTA_CODE}), or use fewer/smaller instances.",
        )
    return Check(name, OK, f"{what}; the cluster needs {needed} (running instances count too).")


def check_public_ip(
    env: Environment, spec: ClusterSpec, detect_ip: network.IpDetector | None
) -> Check:
    name = "Public IP"
    if spec.allow_cidrs:
        return Check(name, OK, f"SSH and the API will allow {', '.join(spec.allow_cidrs)}.")
    try:
        cidrs = network.operator_cidrs((), _in_words(detect_ip), env.environ)
    except SparkubeError as exc:
        finding, _ = _split(exc.message, "")
        return Check(
            name,
            WARN,
            finding,
            "Pass --allow-cidr to up with the address you connect from "
            "(e.g. --allow-cidr 203.0.113.7/32).",
        )
    return Check(name, OK, f"Detected {', '.join(cidrs)}; up will allow SSH and the API from it.")


def network_failure(exc: BaseException, host: str) -> str:
    """What failed when asking ``host`` over HTTPS, in words (never ``<urlopen error
    [Errno -3] ...>``): name resolution, refusal, timeout, TLS, a proxy, an HTTP status."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"{host} answered HTTP {exc.code}"
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return f"the name {host} could not be resolved (no network or no DNS)"
    if isinstance(reason, ConnectionRefusedError):
        return f"the connection to {host} was refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"{host} did not answer in time"
    if isinstance(reason, ssl.SSLError):
        what = getattr(reason, "reason", None) or reason.strerror or "handshake"
        return f"the TLS connection to {host} failed ({str(what).lower().replace('_', ' ')})"
    if isinstance(reason, ConnectionError):
        return f"the connection to {host} was cut"
    text = str(reason)
    if "Tunnel connection failed" in text:
        return f"the HTTPS proxy refused to connect to {host} ({text.split(':', 1)[-1].strip()})"
    if isinstance(reason, OSError) and reason.strerror:
        return f"{host} could not be reached ({reason.strerror.lower()})"
    return f"{host} could not be reached ({text or type(reason).__name__})"


def _in_words(detector: network.IpDetector | None) -> network.IpDetector | None:
    """``detector`` whose failures say in words what failed (an OSError, so the network
    layer treats it as before)."""
    if detector is None:
        return None
    host = urllib.parse.urlsplit(network.CHECKIP_URL).hostname or "checkip.amazonaws.com"

    def detect() -> str:
        try:
            answer = detector()
        except OSError as exc:
            raise OSError(network_failure(exc, host)) from None
        try:
            ipaddress.ip_address(answer.strip())
        except ValueError:
            raise OSError(f"{host} answered something that is not an IP address") from None
        return answer

    return detect


def _skipped(name: str, why: str) -> Check:
    return Check(name, WARN, f"Not checked: {why}.", "Fix the failed check above, then run again.")


def run_checks(
    env: Environment,
    spec: ClusterSpec,
    *,
    detect_ip: network.IpDetector | None = network.checkip,
    clients_for: Callable[[str], AwsClients] | None = None,
) -> list[Check]:
    """Every preflight check, in order; never raises for what it checks."""
    make: Callable[[str], Any] = clients_for or (lambda region: AwsClients(env.environ, region))
    versions = spark_versions(spec.image)
    checks = [
        check_java(env),
        check_pyspark(versions),
        check_cluster_spark(versions),
        check_ssh(env),
    ]
    region_check, region = check_region_of(env, spec)
    clients = make(region or _FALLBACK_REGION)
    credentials = check_credentials(clients)
    checks += [credentials, region_check]
    if credentials.status == FAIL or region is None:
        why = "the AWS credentials check failed" if credentials.status == FAIL else "no AWS region"
        checks += [_skipped("EC2 instance types", why), _skipped("vCPU quota", why)]
    else:
        types_check, needed = check_instance_types(clients, spec)
        checks += [types_check, check_vcpu_quota(clients, needed, spec.spot)]
    checks.append(check_public_ip(env, spec, detect_ip))
    return checks
