"""``sparkube doctor`` against moto on loopback: exit codes, findings, fixes, JSON.

IP detection is off in ``moto_aws``'s environment and every AWS endpoint is the loopback
moto server, so nothing here reaches the internet.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkube import doctor
from sparkube.env import Environment
from sparkube.spark.image import SPARK_IMAGE
from sparkube.spec import ClusterSpec
from tests.fixtures.common import CliResult
from tests.fixtures.moto_server import ACCOUNT, MotoAws

VCPU_QUOTA = doctor.VCPU_QUOTA_CODE

CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


def _env(base: Environment, **changes: str) -> Environment:
    return dataclasses.replace(base, environ={**base.environ, **changes})


def _json(result: CliResult) -> dict[str, dict[str, str]]:
    data = json.loads(result.stdout)
    return {c["name"]: c for c in data["checks"]}


def _never_called() -> str:
    raise AssertionError("the public IP must not be looked up")


def test_all_good_against_moto(cli: Callable[..., CliResult], moto_aws: MotoAws) -> None:
    result = cli("doctor", env=moto_aws.env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert ACCOUNT in result.stdout
    assert "Traceback" not in result.stderr
    checks = _json(cli("doctor", "--output", "json", env=moto_aws.env))
    assert checks["Java"]["status"] == "ok"
    assert checks["PySpark"]["status"] == "ok"
    assert checks["AWS credentials"]["status"] == "ok"
    assert ACCOUNT in checks["AWS credentials"]["finding"]
    assert "arn:aws:" in checks["AWS credentials"]["finding"]
    assert checks["Region"]["status"] == "ok"
    assert "us-east-1" in checks["Region"]["finding"]
    assert checks["EC2 instance types"]["status"] == "ok"
    assert "t3.medium" in checks["EC2 instance types"]["finding"]
    assert checks["vCPU quota"]["status"] == "warn"
    assert "could not read the quota" in checks["vCPU quota"]["finding"].lower()
    assert checks["Public IP"]["status"] == "warn"
    assert "--allow-cidr" in checks["Public IP"]["fix"]


def test_no_credentials(cli: Callable[..., CliResult], moto_aws: MotoAws, tmp_path: Path) -> None:
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    environ = {k: v for k, v in moto_aws.env.environ.items() if k not in CREDENTIAL_VARS}
    environ["HOME"] = str(empty_home)
    env = dataclasses.replace(moto_aws.env, environ=environ)
    result = cli("doctor", "-o", "json", env=env)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    checks = _json(result)
    creds = checks["AWS credentials"]
    assert creds["status"] == "fail"
    assert "credentials" in creds["finding"].lower()
    assert "aws configure" in creds["fix"]
    assert "AWS_ACCESS_KEY_ID" in creds["fix"]
    assert checks["Java"]["status"] == "ok"
    text = cli("doctor", env=env)
    assert text.exit_code == 1
    assert "credentials" in text.stdout
    assert "Traceback" not in text.stderr


def test_old_java(cli: Callable[..., CliResult], moto_aws: MotoAws, tmp_path: Path) -> None:
    java_home = tmp_path / "jdk-11"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    java.chmod(0o755)
    env = _env(moto_aws.env, JAVA_HOME=str(java_home))
    result = cli("doctor", "--output", "json", env=env)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    checks = _json(result)
    assert checks["Java"]["status"] == "fail"
    assert "11.0.2" in checks["Java"]["finding"]
    assert "Java 17" in checks["Java"]["fix"]
    assert checks["AWS credentials"]["status"] == "ok"


def test_json_output_parses(cli: Callable[..., CliResult], moto_aws: MotoAws) -> None:
    result = cli("doctor", "-o", "json", "--region", "us-east-1", "-c", "demo", env=moto_aws.env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert [set(c) for c in data["checks"]] == [
        {"name", "status", "finding", "fix"} for _ in data["checks"]
    ]
    assert {c["status"] for c in data["checks"]} <= {"ok", "warn", "fail"}
    assert all(c["fix"] for c in data["checks"] if c["status"] != "ok")


def test_unknown_region_and_bad_output(cli: Callable[..., CliResult], moto_aws: MotoAws) -> None:
    result = cli("doctor", "-o", "json", "--region", "mars-north-1", env=moto_aws.env)
    assert result.exit_code == 1
    assert _json(result)["Region"]["status"] == "fail"
    bad = cli("doctor", "-o", "yaml", env=moto_aws.env)
    assert bad.exit_code == 2
    assert "use text or json" in bad.stderr


def test_help_has_an_example(
    cli: Callable[..., CliResult], capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli("doctor", "--help")
    assert result.exit_code == 0
    shown = result.stdout + capsys.readouterr().out  # Click prints help to sys.stdout
    lines = [line.strip() for line in shown.splitlines()]
    at = lines.index("Examples:")
    assert lines[at + 1 : at + 3] == [
        "$ sparkube doctor",
        "$ sparkube doctor --region eu-west-1 -o json",
    ]


def test_ip_detection_off_is_never_attempted(moto_aws: MotoAws) -> None:
    checks = doctor.run_checks(moto_aws.env, ClusterSpec(), detect_ip=_never_called)
    ip = next(c for c in checks if c.name == "Public IP")
    assert ip.status == "warn"
    assert "--allow-cidr" in ip.fix


def test_ip_detected_when_allowed(moto_aws: MotoAws) -> None:
    env = _env(moto_aws.env, SPARKUBE_DETECT_IP="on")
    check = doctor.check_public_ip(env, ClusterSpec(), lambda: "203.0.113.7")
    assert check.status == "ok"
    assert "203.0.113.7/32" in check.finding


def _three_workers(moto_aws: MotoAws, *, spot: bool = False) -> None:
    # doctor checks the cluster of ./sparkube.yaml: 1 control plane + 3 workers, all
    # t3.medium (2 vCPUs), need 8 vCPUs.
    spec = "workers: 3\n" + ("spot: true\n" if spot else "")
    (moto_aws.env.cwd / "sparkube.yaml").write_text(spec)


def test_vcpu_quota_enough_is_ok(cli: Callable[..., CliResult], moto_aws: MotoAws) -> None:
    _three_workers(moto_aws)
    moto_aws.seed_ec2_quota(VCPU_QUOTA, 8)
    result = cli("doctor", "-o", "json", env=moto_aws.env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    quota = _json(result)["vCPU quota"]
    assert quota["status"] == "ok", quota
    assert "quota in us-east-1 is 8; the cluster needs 8 " in quota["finding"]


def test_vcpu_quota_too_small_fails_with_the_fix(
    cli: Callable[..., CliResult], moto_aws: MotoAws
) -> None:
    _three_workers(moto_aws)
    moto_aws.seed_ec2_quota(VCPU_QUOTA, 6)
    result = cli("doctor", "-o", "json", env=moto_aws.env)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    checks = _json(result)
    quota = checks["vCPU quota"]
    assert quota["status"] == "fail", quota
    assert "quota in us-east-1 is 6; the cluster needs 8 vCPUs" in quota["finding"]
    assert VCPU_QUOTA in quota["fix"]
    assert {c["status"] for n, c in checks.items() if n != "vCPU quota"} <= {"ok", "warn"}
    text = cli("doctor", env=moto_aws.env)
    assert text.exit_code == 1
    assert "Service Quotas" in text.stdout


def test_vcpu_quota_is_not_held_against_spot_workers(
    cli: Callable[..., CliResult], moto_aws: MotoAws
) -> None:
    _three_workers(moto_aws, spot=True)
    moto_aws.seed_ec2_quota(VCPU_QUOTA, 2)
    result = cli("doctor", "-o", "json", env=moto_aws.env)
    quota = _json(result)["vCPU quota"]
    assert quota["status"] == "ok", quota
    assert "spot workers count against L-34B43A08" in quota["finding"]


def test_both_sparks_are_shown(cli: Callable[..., CliResult], moto_aws: MotoAws) -> None:
    result = cli("doctor", "-o", "json", env=moto_aws.env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    checks = {c["name"]: c for c in data["checks"]}
    minor = ".".join(map(str, sys.version_info[:2]))
    assert checks["PySpark"]["status"] == "ok"
    assert checks["PySpark"]["finding"].startswith(
        f"pyspark {SPARK_IMAGE.spark_version} on Python {minor}."
    )
    assert f"only Python differs: {minor} here, 3.10 in the image" in checks["PySpark"]["finding"]
    assert checks["Cluster Spark"] == {
        "name": "Cluster Spark",
        "status": "ok",
        "finding": f"Spark 4.1.2 on Python 3.10 and Java 17 in {SPARK_IMAGE.ref}.",
        "fix": "",
    }
    versions = data["versions"]
    assert versions["local"]["spark"] == versions["cluster"]["spark"] == "4.1.2"
    assert versions["pinned_pyspark"] == "4.1.2"
    assert versions["cluster"]["python"] == "3.10"
    assert versions["local"]["python"].startswith(minor + ".")
    text = cli("doctor", env=moto_aws.env)
    assert "Cluster Spark" in text.stdout and SPARK_IMAGE.ref in text.stdout


def test_another_cluster_image_is_a_warning(
    cli: Callable[..., CliResult], moto_aws: MotoAws
) -> None:
    (moto_aws.env.cwd / "sparkube.yaml").write_text("spark_version: 4.0.1\n")
    result = cli("doctor", "-o", "json", env=moto_aws.env)
    assert result.exit_code == 0, (result.stdout, result.stderr)  # a warning, not a failure
    data = json.loads(result.stdout)
    cluster = {c["name"]: c for c in data["checks"]}["Cluster Spark"]
    assert cluster["status"] == "warn"
    assert "apache/spark:4.0.1-scala2.13-java17-python3-ubuntu" in cluster["finding"]
    assert "is not known" in cluster["finding"]
    assert data["versions"]["cluster"]["spark"] is None
