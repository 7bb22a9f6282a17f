"""`harden check --dockerfile`: summary lines, exit 1 on failing findings, exit 2 on bad policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]


def harden(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(["--catalog", str(REPO / "hardening.toml"), *args])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def test_check_is_registered() -> None:
    assert "check" in {command.name for command in COMMANDS}


def test_failing_dockerfile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:latest\nRUN pip install setuptools>=75\nUSER root\n")
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nfail_level: medium\nchecks:\n  non_root: {}\n  dockerfile: {}\n")
    code, out = harden(["check", "--dockerfile", str(dockerfile), "--policy", str(policy)], capsys)
    assert code == 1
    assert "FAIL (1 high, 2 medium" in out
    assert "HARDEN-USER-DOCKERFILE-ROOT high" in out and "Dockerfile:3" in out
    assert "HARDEN-DF-PIP-REDIRECT medium" in out


def test_committed_renderings_pass_statically(capsys: pytest.CaptureFixture[str]) -> None:
    for image in ("python-secure", "postgres-secure"):
        dockerfile = REPO / "dockerfiles" / image / "Dockerfile"
        code, out = harden(["check", "--dockerfile", str(dockerfile)], capsys)
        assert code == 0, out


def test_invalid_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nchecks:\n  non_root: {sevrity: high}\n")
    code, out = harden(["check", "--dockerfile", str(dockerfile), "--policy", str(policy)], capsys)
    assert code == 2
    assert "p.yaml:3: checks.non_root.sevrity: unknown key" in out
