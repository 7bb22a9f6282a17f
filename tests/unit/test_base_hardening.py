"""What the base does for every image: the setuid allowlist it shares with the policy check."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest

from hardening.base import (
    APT_SLIM,
    BaseSpec,
    _setuid_files,
    base_labels,
    is_current,
    recipe,
    setuid_allowlist,
)
from hardening.catalog import load_catalog
from hardening.errors import PolicyError
from hardening.policy.config import load_policies
from hardening.policy.options import AllowPaths
from hardening.policy.setuid import Setuid
from tests.conftest import REPO_ROOT

SPEC = BaseSpec("hardening/debian", "bookworm", "bookworm")


def _policy(tmp_path: Path, allow: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"version: 1\nchecks:\n  setuid:\n    allow: {allow}\n")
    return path


def test_the_catalog_bases_use_the_policy_the_images_are_checked_with() -> None:
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    default = REPO_ROOT / "policies/default.yaml"
    for base in catalog.bases.values():
        assert base.policies == (default,)
        shared = load_policies(REPO_ROOT, [Path("policies/default.yaml")]).config_of(Setuid)
        assert shared is not None
        assert setuid_allowlist(base) == shared.options


def test_allowlist_is_the_setuid_checks_own(tmp_path: Path) -> None:
    first = _policy(tmp_path, '["/usr/bin/ping"]', "a.yaml")
    second = _policy(tmp_path, '["/usr/lib/*/ssh-keysign"]', "b.yaml")
    keep = setuid_allowlist(replace(SPEC, policies=(first, second)))
    assert keep == AllowPaths(frozenset({"/usr/bin/ping", "/usr/lib/*/ssh-keysign"}))
    assert keep.allows("/usr/lib/openssh/ssh-keysign") and not keep.allows("/usr/bin/su")


def test_no_policy_or_a_disabled_check_keeps_nothing(tmp_path: Path) -> None:
    assert setuid_allowlist(SPEC) == AllowPaths()
    off = tmp_path / "off.yaml"
    off.write_text('version: 1\nchecks:\n  setuid:\n    enabled: false\n    allow: ["/usr/bin/su"]\n')
    assert setuid_allowlist(replace(SPEC, policies=(off,))) == AllowPaths()


def test_a_broken_policy_is_a_policy_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nchecks:\n  setuid:\n    allow: [relative/path]\n")
    with pytest.raises(PolicyError):
        setuid_allowlist(replace(SPEC, policies=(bad,)))


def test_the_allowlist_is_part_of_the_recipe(tmp_path: Path) -> None:
    assert recipe(AllowPaths()) != recipe(AllowPaths(frozenset({"/usr/bin/ping"})))
    allowing = replace(SPEC, policies=(_policy(tmp_path, '["/usr/bin/ping"]'),))
    labels = base_labels(allowing, "http://mirror/debian", 88, "2026-01-01T00:00:00Z", 10)
    assert labels["org.hardening.base.setuid-kept"] == "/usr/bin/ping"
    assert labels["org.hardening.base.setuid-cleared"] == "10"
    assert is_current(labels, allowing, "http://mirror/debian")
    # A base made with another allowlist is rebuilt.
    assert not is_current(labels, SPEC, "http://mirror/debian")


def test_setuid_files_are_found_without_following_links(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "var/mail").mkdir(parents=True)
    for name, mode in (("su", 0o4755), ("chage", 0o2755), ("ls", 0o755)):
        path = root / "usr/bin" / name
        path.write_bytes(b"")
        path.chmod(mode)
    (root / "usr/bin/su-link").symlink_to("su")
    (root / "var/mail").chmod(0o2775)  # a setgid directory is group inheritance, not privilege
    found = {path: stat.S_IMODE(info.st_mode) for path, info in _setuid_files(root)}
    assert found == {"/usr/bin/chage": 0o2755, "/usr/bin/su": 0o4755}


def test_images_inherit_the_logs_and_debconf_cleanup() -> None:
    assert 'Dir::Log::History "/dev/null";' in APT_SLIM
    assert "/var/cache/debconf/*-old" in APT_SLIM
