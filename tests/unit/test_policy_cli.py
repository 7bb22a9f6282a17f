"""`harden check --dockerfile`: summary lines, exit 1 on failing findings, exit 2 on bad policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.cli import COMMANDS, main
from tests.reliability.harness import harden as harden_process

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


def test_every_finding_is_printed_with_severity_and_location_failing_ones_marked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:latest\nRUN pip install wheel>=0.45\nUSER root\n")
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nfail_level: high\nchecks:\n  non_root: {}\n  dockerfile: {}\n")
    code, out = harden(["check", "--dockerfile", str(dockerfile), "--policy", str(policy)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("FAIL (1 high, 2 medium; fails at high)")
    findings = lines[1:]
    assert len(findings) == 3, out
    # most severe first; only the one at the fail level is marked
    assert (
        findings[0]
        == f"  FAIL HARDEN-USER-DOCKERFILE-ROOT high {dockerfile}:3 " + findings[0].split(":3 ", 1)[1]
    )
    assert all(line.startswith("       HARDEN-") and " medium " in line for line in findings[1:])
    assert any(f"HARDEN-DF-PIP-REDIRECT medium {dockerfile}:2 " in line for line in findings[1:])

    # below the fail level nothing is marked, yet everything is shown
    policy.write_text("version: 1\nfail_level: critical\nchecks:\n  non_root: {}\n  dockerfile: {}\n")
    code, out = harden(["check", "--dockerfile", str(dockerfile), "--policy", str(policy)], capsys)
    assert code == 0
    assert out.splitlines()[0].endswith("pass (1 high, 2 medium; fails at critical)")
    assert len(out.splitlines()) == 4 and "FAIL" not in out


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


HEREDOC = REPO / "tests" / "data" / "dockerfiles" / "heredoc" / "Dockerfile"


def test_heredoc_dockerfile_is_checked_as_the_engine_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = harden(["check", "--dockerfile", str(HEREDOC)], capsys)
    assert code == 1, out
    # RUN <<EOF … EOF (lines 5-9): the script's unquoted floor package; COPY <<EOF is data.
    assert "FAIL (1 high, 2 medium; fails at high)" in out
    assert "HARDEN-DF-PIP-REDIRECT high" in out and "heredoc/Dockerfile:5 " in out
    assert "the policy's floor setuptools >= 75 is not applied" in out


def test_heredoc_dockerfile_through_the_harden_command() -> None:
    result = harden_process(None, "check", "--dockerfile", str(HEREDOC), cwd=REPO)
    assert result.code == 1, result.output
    assert "HARDEN-DF-PIP-REDIRECT high" in result.output


def test_a_dockerfile_anywhere_is_checked_with_the_shipped_default_policy(tmp_path: Path) -> None:
    # No catalog and no policies/ here: the default policy is the one beside the package.
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:bookworm\nUSER 0\n")
    result = harden_process(None, "check", "--dockerfile", str(dockerfile), cwd=tmp_path)
    assert result.code == 1, result.output
    assert "HARDEN-USER-DOCKERFILE-ROOT high" in result.output
    # a policies/default.yaml of this directory is the user's own and wins
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies/default.yaml").write_text(
        "version: 1\nfail_level: critical\nchecks:\n  non_root: {}\n"
    )
    result = harden_process(None, "check", "--dockerfile", str(dockerfile), cwd=tmp_path)
    assert result.code == 0, result.output
    assert "HARDEN-HEALTHCHECK-MISSING" not in result.output


def test_floor_package_redirect_fails_the_default_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM debian:12\nRUN pip install setuptools>=75 && pip install wheel>=0.45\n"
        "USER 10001\nHEALTHCHECK CMD true\n"
    )
    code, out = harden(["check", "--dockerfile", str(dockerfile)], capsys)
    assert code == 1, out
    assert "FAIL (1 high, 1 medium; fails at high)" in out
    assert "is not applied" in out


def test_a_dockerfile_the_engine_rejects_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:12\nUSER 10001\nRUN <<EOF\necho never terminated\n")
    code, out = harden(["check", "--dockerfile", str(dockerfile)], capsys)
    assert code == 2
    assert f"{dockerfile}:3: the engine's Dockerfile parser rejects it: unterminated heredoc" in out
    dockerfile.write_text("FROM debian:12\nUSER 10001\nRUN true\x00\nUSER root\n")
    code, out = harden(["check", "--dockerfile", str(dockerfile)], capsys)
    assert code == 2 and f"{dockerfile}:3: the Dockerfile contains a NUL byte" in out
