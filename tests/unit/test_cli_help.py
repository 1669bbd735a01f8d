"""Every command's --help says what it does, shows examples and reads cleanly: value
names instead of Python types, no braces, paragraphs not broken mid-sentence, nothing
cut off, at a normal and a narrow terminal width."""

from __future__ import annotations

import io
import re

import pytest
import typer.main

from sparkube.cli.app import app, run
from sparkube.cli.helptext import reflow

COMMANDS = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
#: Typer's own labels: <str>, <bool>, <int>, <path>, <list[Path]>, <str|int>...
TYPE_LABEL = re.compile(r"<[A-Za-z_][\w\[\]., |]*>")
BRACED = re.compile(r"\{\w+\}")
MARKUP = re.compile(r"\[/?[a-z ]+\]")


def _help(
    argv: list[str], width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    assert run([*argv, "--help"], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    return capsys.readouterr().out  # Typer's help goes to the real stdout


def test_every_command_is_checked() -> None:
    assert {"plan", "up", "down", "status", "ls", "wordcount", "submit", "usage"} <= set(COMMANDS)


@pytest.mark.parametrize("command", ["plan", "up", "down", "ls", "status", "ssh", "kubeconfig"])
def test_help_has_examples(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help([command], 100, monkeypatch, capsys)
    assert re.search(r"Examples?: *\n", text), text
    assert f"$ sparkube {command}" in text  # one example a line, ready to paste


@pytest.mark.parametrize("width", [100, 60])
@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS)], ids=lambda a: " ".join(a) or "-")
def test_help_has_no_type_labels_or_braces(
    argv: list[str], width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(argv, width, monkeypatch, capsys)
    assert not TYPE_LABEL.findall(text), text
    assert not BRACED.findall(text), text
    assert "Usage: sparkube" in text


@pytest.mark.parametrize("width", [120, 80])
@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS)], ids=lambda a: " ".join(a) or "-")
def test_help_cuts_nothing_off(
    argv: list[str], width: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(argv, width, monkeypatch, capsys)
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("command", COMMANDS)
def test_paragraphs_are_not_broken_mid_sentence(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Wide enough that every paragraph fits on one line: each must then be one line,
    # whatever line breaks its docstring has.
    source = typer.main.get_command(app).commands[command].help  # type: ignore[attr-defined]
    lines = [
        " ".join(line.split()) for line in _help([command], 1000, monkeypatch, capsys).splitlines()
    ]
    for paragraph in source.split("\n\n"):
        words = " ".join(MARKUP.sub("", paragraph).split())
        if words.startswith("Example"):
            continue
        assert any(words in line for line in lines), f"{words!r} is not on one line"


def test_reflow_joins_paragraphs_and_lists_examples() -> None:
    text = reflow(
        """First line
        goes on.

        Second
        paragraph.

        Examples: sparkube up --workers 3 · sparkube up (resume)
        """
    )
    assert text == (
        "First line goes on.\n\nSecond paragraph.\n\n"
        "Examples:\n$ sparkube up --workers 3\n$ sparkube up  # resume"
    )


# --- one surface: every option shows its default; --cluster and --region everywhere ---

#: Options whose help does not say their default (none today).
_DEFAULT_PENDING: set[tuple[str, str]] = set()


def _options(command: str) -> list[typer.core.click.Option]:
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return [p for p in params if p.param_type_name == "option" and p.name != "help"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_shows_its_default(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join(_help([command], 1000, monkeypatch, capsys).split())
    for option in _options(command):
        if (command, option.opts[0]) in _DEFAULT_PENDING or option.hidden:
            continue
        if option.is_flag and option.default is False and not option.secondary_opts:
            continue  # a plain on/off flag: off unless given
        shown = " ".join((option.help or "").split())
        assert shown in text, (command, option.opts)
        typer_default = option.show_default is not False and option.default is not None
        assert typer_default or "default:" in shown.lower(), (
            f"{command} {option.opts[0]}: {shown!r}"
        )


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ("--instance-type", "instance_type"),
        ("--control-plane-type", "control_plane_type"),
        ("--root-volume-gb", "root_volume_gb"),
        ("--workers", "workers"),
    ],
)
@pytest.mark.parametrize("command", ["plan", "up"])
def test_spec_defaults_are_the_ones_shown(
    command: str,
    option: str,
    field: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sparkube.spec import ClusterSpec

    (help_text,) = [" ".join((o.help or "").split()) for o in _options(command) if option in o.opts]
    default = ClusterSpec.model_fields[field].default
    assert help_text.endswith(f"Default: {default}."), help_text
    assert f"Default: {default}." in " ".join(_help([command], 1000, monkeypatch, capsys).split())


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_cluster_and_region(command: str) -> None:
    names = {opt for option in _options(command) for opt in option.opts}
    assert {"--cluster", "-c", "--region"} <= names, command


def test_job_help_says_what_each_flag_does_locally(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    submit = " ".join(_help(["submit"], 1000, monkeypatch, capsys).split())
    assert "--executors × --executor-cores threads in one JVM (local[N])" in submit
    assert "Locally refused: use --driver-memory." in submit
    assert "(cluster only)" in submit and "locally $SPARKUBE_OUTPUT is this folder" in submit
    for command in ("submit", "wordcount"):
        text = _help([command], 1000, monkeypatch, capsys)
        assert "--driver-memory" in text and "-o," not in text
