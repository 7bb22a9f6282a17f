"""What `harden base --if-outdated` says of a base: only security updates count."""

from __future__ import annotations

from hardening.archive.basecheck import BaseFreshness
from hardening.archive.model import PendingUpdate


def _update(package: str, old: str, new: str) -> PendingUpdate:
    return PendingUpdate(
        package=package,
        architecture="amd64",
        source=package,
        installed_version=old,
        installed_source_version=old,
        candidate_version=new,
        candidate_source_version=new,
        suite="bookworm-security",
        pocket="security",
        security=True,
        cves=(),
        cves_known=False,
        first_seen="2026-12-01T00:00:00Z",
        uploaded=None,
    )


def test_a_current_base_names_what_was_compared() -> None:
    fresh = BaseFreshness("hardening/debian:bookworm", 88, ())
    assert not fresh.outdated
    assert fresh.describe() == "88 packages compared, no security update pending"


def test_an_outdated_base_names_the_first_five_updates() -> None:
    updates = tuple(_update(f"lib{i}", "1.0-1", "1.0-1+deb12u1") for i in range(7))
    stale = BaseFreshness("hardening/debian:bookworm", 88, updates)
    assert stale.outdated
    described = stale.describe()
    assert described.startswith("7 security updates pending: lib0 1.0-1 → 1.0-1+deb12u1, lib1")
    assert "lib4 1.0-1 → 1.0-1+deb12u1 and 2 more" in described and "lib5" not in described
