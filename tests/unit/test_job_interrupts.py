"""Ctrl-C while a cluster job runs: cancel it, or (on a terminal, if the user says so)
leave it running. The cluster is replaced by a recorder of cancel calls (our own
boundary: ClusterJobs); the real cancel is tested on the real-node cluster
(tests/bed/test_4_jobs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import typer

from sparkube.cli.jobs import _job_interrupts
from sparkube.cli.ui import UI
from sparkube.env import Environment
from sparkube.errors import Interrupted


@dataclass
class Recorder:
    cancelled: list[str] = field(default_factory=list)

    def cancel(self, job_id: str, **_: Any) -> bool:
        self.cancelled.append(job_id)
        return True


def _interrupt(env: Environment, api: Recorder) -> Interrupted:
    with pytest.raises(Interrupted) as err, _job_interrupts(UI(), env, api, "job-1"):  # type: ignore[arg-type]
        raise KeyboardInterrupt
    return err.value


def test_without_a_terminal_ctrl_c_cancels() -> None:
    api = Recorder()
    err = _interrupt(Environment(environ={}, interactive=False), api)
    assert api.cancelled == ["job-1"]
    assert "job job-1 was cancelled" in err.message


def test_on_a_terminal_the_user_may_leave_it_running(monkeypatch: pytest.MonkeyPatch) -> None:
    api = Recorder()
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: False)
    err = _interrupt(Environment(environ={}, interactive=True), api)
    assert api.cancelled == []
    assert "keeps running" in err.message and "sparkube cancel job-1" in err.message


def test_on_a_terminal_yes_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    api = Recorder()
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: True)
    _interrupt(Environment(environ={}, interactive=True), api)
    assert api.cancelled == ["job-1"]
