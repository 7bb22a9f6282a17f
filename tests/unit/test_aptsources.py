"""Finding the Debian mirror in an apt configuration, and what `harden base` says when there is none."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hardening import base
from hardening.aptsources import debian_mirror, read_sources, security_mirror
from hardening.base import BaseSpec, resolve_mirrors
from hardening.errors import ConfigError
from tests.apt_configs import UBUNTU_RUNNER, debian_image, write_apt_dir

MIRROR = "http://<debian-mirror>/debian"
SECURITY = "http://<debian-mirror>/debian-security"
SPEC = BaseSpec("hardening/debian", "bookworm", "bookworm")


def test_the_debian_job_container_names_its_mirrors(tmp_path: Path) -> None:
    sources = read_sources(write_apt_dir(tmp_path, debian_image(MIRROR, SECURITY)))
    assert debian_mirror("bookworm", sources) == MIRROR
    assert security_mirror(sources) == SECURITY


def test_an_ubuntu_runner_names_no_debian_mirror(tmp_path: Path) -> None:
    sources = read_sources(write_apt_dir(tmp_path, UBUNTU_RUNNER))
    assert {s.uri for s in sources} == {
        "http://<ubuntu-mirror>/ubuntu/",
        "http://<ubuntu-security-mirror>/ubuntu/",
        "https://<vendor-repository>/ubuntu/24.04/prod",
    }
    assert debian_mirror("bookworm", sources) is None
    assert security_mirror(sources) is None


def test_no_mirror_is_bad_input_that_names_what_was_read_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apt_dir = write_apt_dir(tmp_path, UBUNTU_RUNNER)
    monkeypatch.setattr(base, "read_sources", lambda: read_sources(apt_dir))
    with pytest.raises(ConfigError) as info:
        resolve_mirrors(SPEC)
    text = info.value.diagnostics()
    assert info.value.exit_code == 2
    assert "no Debian archive mirror is configured" in text
    assert "http://<ubuntu-mirror>/ubuntu/" in text  # what it read
    assert "--mirror" in text and "Debian job container" in text  # both ways out


def test_an_empty_apt_configuration_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "read_sources", lambda: read_sources(tmp_path))
    with pytest.raises(ConfigError) as info:
        resolve_mirrors(SPEC)
    assert "no repository at all" in info.value.diagnostics()


def test_a_mirror_given_needs_no_apt_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apt_dir = write_apt_dir(tmp_path, UBUNTU_RUNNER)
    monkeypatch.setattr(base, "read_sources", lambda: read_sources(apt_dir))
    assert resolve_mirrors(replace(SPEC, mirror=MIRROR)) == (MIRROR, None)
