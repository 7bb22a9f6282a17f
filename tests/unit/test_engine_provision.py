"""Engine provisioning decisions that need no real daemon: who may start or stop what."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.engine import provision
from hardening.errors import EngineError, ExitCode


def test_up_leaves_an_answering_engine_alone(tmp_path: Path) -> None:
    status = provision.engine_up(state_dir=tmp_path, answers=lambda: True)
    assert status.answering and not status.started_by_us
    assert status.message == "engine already answers"
    assert not (tmp_path / provision.PID_FILE_NAME).exists()


def test_up_without_root_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision.os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError) as info:
        provision.engine_up(state_dir=tmp_path, answers=lambda: False)
    assert info.value.exit_code == ExitCode.INFRASTRUCTURE
    assert "needs root" in info.value.message
    assert info.value.hint is not None and "sudo harden engine up" in info.value.hint


def test_install_without_apt_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision.os, "geteuid", lambda: 0)
    monkeypatch.setattr(provision.shutil, "which", lambda _name: None)
    with pytest.raises(EngineError, match="no apt-get on this machine"):
        provision.apt_install(["docker.io"])


def test_down_never_stops_a_daemon_it_did_not_start(tmp_path: Path) -> None:
    # No pid file: whatever engine runs belongs to someone else.
    status = provision.engine_down(state_dir=tmp_path)
    assert not status.started_by_us
    assert status.message == "no engine started by harden is running"


def test_down_ignores_a_pid_file_naming_another_program(tmp_path: Path) -> None:
    # Our own pid is alive but is not dockerd: a stale or forged pid file must not kill it.
    import os

    (tmp_path / provision.PID_FILE_NAME).write_text(f"{os.getpid()}\n")
    status = provision.engine_down(state_dir=tmp_path)
    assert not status.started_by_us
    assert not (tmp_path / provision.PID_FILE_NAME).exists()


def test_ensure_commands_installs_only_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[list[str]] = []
    monkeypatch.setattr(provision.shutil, "which", lambda name: None if name == "b" else f"/usr/bin/{name}")
    monkeypatch.setattr(provision, "apt_install", installed.append)
    provision.ensure_commands({"a": "pkg-a", "b": "pkg-b"})
    assert installed == [["pkg-b"]]
