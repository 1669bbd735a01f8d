"""Every cluster command's --help says what it does and shows examples."""

from __future__ import annotations

import io

import pytest

from sparkube.cli.app import run


@pytest.mark.parametrize("command", ["plan", "up", "down", "ls", "status", "ssh", "kubeconfig"])
def test_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([command, "--help"], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    text = " ".join(capsys.readouterr().out.split())  # Typer's help goes to the real stdout
    assert "Examples:" in text and f"sparkube {command}" in text
