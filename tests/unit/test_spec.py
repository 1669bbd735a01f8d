from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sparkube.env import Environment
from sparkube.errors import ConfigError
from sparkube.spec import format_duration, load_spec, parse_duration


def make_env(tmp_path: Path, **environ: str) -> Environment:
    return Environment(environ={"HOME": str(tmp_path), **environ}, cwd=tmp_path, interactive=False)


def test_defaults(tmp_path: Path) -> None:
    spec = load_spec(env=make_env(tmp_path))
    assert spec.name == "sparkube"
    assert spec.workers == 2
    assert spec.kubernetes_version == "1.36"
    assert spec.image.startswith("apache/spark:")
    assert spec.node_count == 3


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "sparkube.yaml").write_text(
        "name: from-file\nworkers: 5\ninstance_type: m6i.large\nspot: true\n"
    )
    env = make_env(tmp_path, SPARKUBE_CLUSTER="from-env", SPARKUBE_WORKERS="7")
    spec = load_spec(env=env, flags={"name": "from-flag", "workers": None})
    assert spec.name == "from-flag"  # flag beats env and file
    assert spec.workers == 7  # env beats file; a None flag means "not given"
    assert spec.instance_type == "m6i.large"  # file beats default
    assert spec.spot is True


def test_explicit_config_file_and_lists(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text("allow_cidrs: [203.0.113.7/32, 198.51.100.0/24]\nttl: 4h\ntags: {team: data}\n")
    spec = load_spec(env=make_env(tmp_path), config=Path("conf/c.yaml"))
    assert spec.allow_cidrs == ("203.0.113.7/32", "198.51.100.0/24")
    assert spec.ttl == timedelta(hours=4)
    assert spec.tags == {"team": "data"}


def test_env_cidrs_are_comma_separated(tmp_path: Path) -> None:
    env = make_env(tmp_path, SPARKUBE_ALLOW_CIDRS="10.0.0.1/32, 10.1.0.0/16")
    assert load_spec(env=env).allow_cidrs == ("10.0.0.1/32", "10.1.0.0/16")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "workers: 3\nwrokers: 4\n",
            r"sparkube.yaml line 2: wrokers: unknown key \(did you mean workers\?\); rename",
        ),
        ("name: ok\nworkers: 500\n", r"sparkube.yaml line 2: workers: 500 is more than 200"),
        ("workers: many\n", r"sparkube.yaml line 1: workers: 'many' is not a whole number"),
        ("name: Bad_Name\n", r"line 1: name: cluster name 'Bad_Name' is invalid"),
        ("workers: [1\n", r"sparkube.yaml line 2: .*fix the YAML syntax"),
        ("- a\n- b\n", r"must be a mapping"),
        ("allow_cidrs: [999.1.1.1/32]\n", r"line 1: allow_cidrs.*not a CIDR"),
        ("ttl: 90\n", r"line 1: ttl: write the TTL with a unit"),
        ("kubernetes_version: '1.30'\n", r"Kubernetes 1.30 is not supported"),
        ("ami: ubuntu\n", r"not an AMI id"),
        ("ttl: 99999999999d\n", r"ttl: .*too long a duration"),
        ("ttl: 1m\n", r"between 10m and 30d"),
        ("kubernetes_version: 1.30\n", r"write the version in quotes"),
        ("workers: true\n", r"workers: true is not a whole number"),
        ("spot: maybe\n", r"line 1: spot: 'maybe' is not true or false; fix this value\.$"),
        ("cni: calico\n", r"cni: 'calico' is not one of: flannel"),
        ("tags: {team: 5}\n", r"tags.team: 5 is not text"),
        ("instance_type:\n", r"line 1: instance_type: has no value"),
        ("root_volume_gb: 3.5\n", r"root_volume_gb: 3.5 is not a whole number"),
        ("colour: blue\n", r"colour: unknown key \(known keys: name, region, workers"),
    ],
)
def test_file_errors_name_key_and_line(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "sparkube.yaml").write_text(content)
    with pytest.raises(ConfigError, match=expected) as info:
        load_spec(env=make_env(tmp_path))
    assert info.value.exit_status == 2
    assert "\n" not in info.value.message


def test_every_problem_of_the_file_at_once(tmp_path: Path) -> None:
    """A value error no longer hides an unknown key, nor a second value error: each
    problem is one line with file and line, in file order, and the run exits 2."""
    (tmp_path / "sparkube.yaml").write_text(
        "name: demo\nwrokers: 4\nworkers: three\nspot: maybe\nroot_volume_gb: 5\n"
    )
    with pytest.raises(ConfigError) as info:
        load_spec(env=make_env(tmp_path))
    error = info.value
    assert error.exit_status == 2
    assert error.message == "sparkube.yaml has 4 problems; fix each one and run again."
    assert error.problems == (
        "sparkube.yaml line 2: wrokers: unknown key (did you mean workers?)",
        "sparkube.yaml line 3: workers: 'three' is not a whole number",
        "sparkube.yaml line 4: spot: 'maybe' is not true or false",
        "sparkube.yaml line 5: root_volume_gb: 5 is less than 20, the least allowed",
    )
    assert error.detail == "\n".join(error.problems)
    assert "unable to parse" not in str(error.detail) and "Input should" not in str(error.detail)


def test_problems_from_file_variables_and_options_together(tmp_path: Path) -> None:
    (tmp_path / "sparkube.yaml").write_text("spot: maybe\n")
    env = make_env(tmp_path, SPARKUBE_WORKERS="three")
    with pytest.raises(ConfigError) as info:
        load_spec(env=env, flags={"root_volume_gb": 3})
    assert info.value.message.startswith("The cluster settings have 3 problems")
    assert info.value.problems == (
        "sparkube.yaml line 1: spot: 'maybe' is not true or false",
        "environment variable SPARKUBE_WORKERS: 'three' is not a whole number",
        "option --root-volume-gb: 3 is less than 20, the least allowed",
    )


def test_cli_reports_all_problems_and_exits_2(cli: Any, sparkube_env: Environment) -> None:
    (sparkube_env.cwd / "sparkube.yaml").write_text("workers: three\nwrokers: 4\n")
    result = cli("plan")
    assert result.exit_code == 2
    assert "sparkube.yaml has 2 problems; fix each one and run again." in result.stderr
    assert "line 1: workers: 'three' is not a whole number" in result.stderr
    assert "line 2: wrokers: unknown key (did you mean workers?)" in result.stderr


def test_env_and_flag_errors_name_their_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable SPARKUBE_WORKERS"):
        load_spec(env=make_env(tmp_path, SPARKUBE_WORKERS="-1"))
    with pytest.raises(ConfigError, match="option --cluster: cluster name 'UPPER'"):
        load_spec(env=make_env(tmp_path), flags={"name": "UPPER"})


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(env=make_env(tmp_path), config=Path("nope.yaml"))


@pytest.mark.parametrize("name", ["a", "sparkube", "data-team-1", "x" * 32])
def test_valid_names(tmp_path: Path, name: str) -> None:
    assert load_spec(env=make_env(tmp_path), flags={"name": name}).name == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "x" * 33, "é"])
def test_invalid_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        load_spec(env=make_env(tmp_path), flags={"name": name})


def test_durations() -> None:
    assert parse_duration("4h") == timedelta(hours=4)
    assert parse_duration("1d12h30m") == timedelta(days=1, hours=12, minutes=30)
    assert format_duration(timedelta(hours=26, minutes=5)) == "1d2h5m"
    for bad in ("", "4", "h", "4x", "-1h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_cpu_credits_unlimited_by_default_standard_from_any_source(tmp_path: Path) -> None:
    assert load_spec(env=make_env(tmp_path)).cpu_credits == "unlimited"
    env = make_env(tmp_path, SPARKUBE_CPU_CREDITS="Standard")
    assert load_spec(env=env).cpu_credits == "standard"
    (tmp_path / "sparkube.yaml").write_text("cpu_credits: standard\n")
    assert load_spec(env=make_env(tmp_path)).cpu_credits == "standard"
    assert load_spec(env=make_env(tmp_path), flags={"cpu_credits": "unlimited"}).cpu_credits == (
        "unlimited"
    )


def test_a_bad_cpu_credit_mode_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_spec(env=make_env(tmp_path), flags={"cpu_credits": "fast"})
    assert str(err.value) == (
        "option --cpu-credits: 'fast' is not one of: standard, unlimited; fix this value."
    )
    with pytest.raises(ConfigError) as err:
        load_spec(env=make_env(tmp_path, SPARKUBE_CPU_CREDITS="burst"))
    assert str(err.value).startswith("environment variable SPARKUBE_CPU_CREDITS: 'burst' is not")


def test_the_worker_group_size_from_every_source(tmp_path: Path) -> None:
    """workers and min_workers are one setting (the group's minimum); max_workers is at
    least it and defaults to it."""
    spec = load_spec(env=make_env(tmp_path))
    assert (spec.workers, spec.max_workers, spec.max_count) == (2, None, 2)
    spec = load_spec(env=make_env(tmp_path, SPARKUBE_MIN_WORKERS="3", SPARKUBE_MAX_WORKERS="5"))
    assert (spec.workers, spec.min_workers, spec.max_count) == (3, 3, 5)
    assert "workers" in spec.model_fields_set  # a resume treats it as given
    spec = load_spec(env=make_env(tmp_path, SPARKUBE_WORKERS="4"), flags={"min_workers": 4})
    assert spec.workers == 4  # the same value from two places is no conflict
    (tmp_path / "sparkube.yaml").write_text("min_workers: 2\n")
    with pytest.raises(ConfigError) as clash:
        load_spec(env=make_env(tmp_path, SPARKUBE_WORKERS="3"))
    assert clash.value.message == (
        "environment variable SPARKUBE_WORKERS 3 and sparkube.yaml line 1: min_workers 2 "
        "differ; they are one setting (the worker group's minimum), so give only one of them."
    )
    with pytest.raises(ConfigError, match=r"--max-workers 1 is less than the minimum"):
        load_spec(env=make_env(tmp_path), flags={"max_workers": 1})
    with pytest.raises(ConfigError, match="--max-workers: true is not a whole number"):
        load_spec(env=make_env(tmp_path), flags={"max_workers": True})
