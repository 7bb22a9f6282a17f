"""The Debian archive as an update source (``hardening.pending``), on the signed repository of
conftest.py served on 127.0.0.1: findings, gaps that fail closed, the result cache.

Expectations are written out by hand from the scenario (conftest.py's docstring and lists).
"""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.archive.image import TargetOptions
from hardening.findings import Finding, Origin, Severity
from hardening.pending.debian import NAME, ArchiveSettings, DebianArchiveSource
from hardening.pending.findings import PENDING_RULE, UNKNOWN_RULE, facts_of
from hardening.pending.interface import CheckState, PendingCheck
from hardening.scan.interface import ScanTarget
from tests.archive.conftest import SECURITY_DATE, Scenario

NOW = datetime(2026, 1, 20, 12, tzinfo=UTC)
SECURITY_INRELEASE = "/debian-security/dists/bookworm-security/InRelease"
IMAGE_ID = "sha256:" + "0" * 64


def source(repo: Scenario, tmp_path: Path, **extra: object) -> DebianArchiveSource:
    settings = ArchiveSettings(cache_dir=tmp_path / "cache", keyrings=(repo.key.keyring,), now=NOW, timeout=5)
    return DebianArchiveSource(replace(settings, **extra))  # type: ignore[arg-type]


def check(
    repo: Scenario, tmp_path: Path, image: str = "labelled", image_id: str = IMAGE_ID, **extra: object
) -> PendingCheck:
    target = ScanTarget(image="demo", ref=f"{image}.tar", image_id=image_id, tar_path=repo.images[image])
    return source(repo, tmp_path, **extra).check(target, None)


def pending(found: PendingCheck) -> dict[str, Finding]:
    return {f.package or "": f for f in found.findings if f.rule_id == PENDING_RULE}


def test_pending_updates_become_findings(repo: Scenario, tmp_path: Path) -> None:
    found = check(repo, tmp_path)
    assert found.state is CheckState.PARTIAL  # gaps are named: local-only, nolog, libshort1
    assert found.suite == "bookworm" and found.tool.name == NAME and not found.cached
    assert all(f.origin is Origin.ARCHIVE and f.tool == NAME and f.image == "demo" for f in found.findings)
    updates = pending(found)
    assert {n: (f.installed_version, f.fixed_version, f.severity) for n, f in updates.items()} == {
        "bar": ("2.0-1", "2.0-1+deb12u1", Severity.LOW),  # -updates: not a security update
        "tilde": ("1.0~rc1-1", "1.0-1", Severity.LOW),  # the release itself
        "foo-tools": ("1.0-1", "1.0-1+deb12u1", Severity.HIGH),
        "libfoo1": ("1.0-1", "1.0-1+deb12u1", Severity.HIGH),
        "libbin1": ("2.0-1+b1", "2.0-1+deb12u1", Severity.HIGH),
        "libdocs1": ("1.0-1", "1.0-1+deb12u1", Severity.HIGH),
        "libshort1": ("1.0-1", "1.0-4", Severity.HIGH),
        "nolog": ("1.0-1", "1.0-2", Severity.HIGH),
    }  # baz: the epoch outranks the security pocket's 3.5-1; common-data: current
    libfoo = updates["libfoo1"]
    assert "it fixes CVE-2024-1111, CVE-2024-2222" in libfoo.message
    assert libfoo.references == (
        "https://security-tracker.debian.org/tracker/CVE-2024-1111",
        "https://security-tracker.debian.org/tracker/CVE-2024-2222",
    )
    facts = facts_of(libfoo)
    assert facts.security and facts.first_seen == SECURITY_DATE and facts.checked_at == NOW
    assert round(facts.age_days() or 0, 2) == 5.67
    assert dict(libfoo.properties)["pocket"] == "security"
    # CVE lists a gap leaves unknown (or incomplete) say so in the update's own message.
    assert "CVEs unknown (no-changelog" in updates["nolog"].message
    assert "CVE-2024-6666 (perhaps more: CVEs may be missing" in updates["libshort1"].message
    assert "its changelog was not read" in updates["bar"].message  # only security changelogs are read
    # A package no pocket carries: a pending update cannot be ruled out.
    (unknown,) = [f for f in found.findings if f.rule_id == UNKNOWN_RULE]
    assert (unknown.package, unknown.installed_version, unknown.severity) == (
        "local-only",
        "1.0",
        Severity.MEDIUM,
    )
    assert dict(unknown.properties)["gap"] == "not-in-archive"
    assert found.installed["foo"] == "1.0-1" and found.installed["bin"] == "2.0-1"
    assert found.record["summary"]["pending"] == 8


def test_a_known_earlier_sighting_wins(repo: Scenario, tmp_path: Path) -> None:
    known = {"bookworm-security/foo/1.0-1+deb12u1": "2026-01-02T03:04:05Z"}
    found = check(repo, tmp_path, known_sightings=known)
    assert dict(pending(found)["libfoo1"].properties)["first_seen"] == "2026-01-02T03:04:05Z"
    assert dict(pending(found)["libbin1"].properties)["first_seen"] == "2026-01-14T20:00:00Z"


def test_the_same_image_and_archive_is_answered_from_the_cache(repo: Scenario, tmp_path: Path) -> None:
    first = check(repo, tmp_path)
    repo.behaviour.requests.clear()
    again = check(repo, tmp_path, now=datetime(2026, 1, 21, 12, tzinfo=UTC))
    assert again.cached and not first.cached
    # Three signed Release files, nothing else: no index, no .deb.
    assert sorted(repo.behaviour.requests) == sorted(
        [
            "/debian/dists/bookworm/InRelease",
            "/debian/dists/bookworm-updates/InRelease",
            SECURITY_INRELEASE,
        ]
    )
    assert [f.key for f in again.findings] == [f.key for f in first.findings]
    assert facts_of(pending(again)["libfoo1"]).checked_at == datetime(2026, 1, 21, 12, tzinfo=UTC)
    # Another image id is another result.
    other = check(repo, tmp_path, image_id="sha256:" + "1" * 64)
    assert not other.cached


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _unavailable(found: PendingCheck, gap: str) -> Finding:
    assert found.state is CheckState.UNAVAILABLE and found.unavailable
    (finding,) = found.findings
    assert (finding.rule_id, finding.severity, finding.package) == (UNKNOWN_RULE, Severity.MEDIUM, None)
    assert dict(finding.properties)["gap"] == gap
    assert finding.message.startswith("Pending updates are unknown, not none: ")
    return finding


def test_mirror_down_is_unknown_never_up_to_date(repo: Scenario, tmp_path: Path) -> None:
    options = TargetOptions(mirror=f"http://127.0.0.1:{_closed_port()}/debian")
    finding = _unavailable(check(repo, tmp_path, options=options), "archive-unreachable")
    assert "the mirror did not answer for the Release file of bookworm" in finding.message


def test_mirror_error_status_is_unknown(repo: Scenario, tmp_path: Path) -> None:
    repo.behaviour.statuses[SECURITY_INRELEASE] = 503
    _unavailable(check(repo, tmp_path), "archive-unreachable")


def test_signature_by_an_unknown_key_is_untrusted(repo: Scenario, tmp_path: Path) -> None:
    signed = tmp_path / "InRelease"
    release = (repo.root / "debian-security/dists/bookworm-security/Release").read_text()
    repo.other_key.clearsign(release, signed)
    repo.behaviour.bodies[SECURITY_INRELEASE] = signed.read_bytes()
    finding = _unavailable(check(repo, tmp_path), "archive-untrusted")
    assert "bookworm-security/InRelease does not verify" in finding.message


def test_slow_mirror_is_unknown(repo: Scenario, tmp_path: Path) -> None:
    repo.behaviour.trickle[SECURITY_INRELEASE] = 0.05
    _unavailable(check(repo, tmp_path, timeout=1.0), "archive-unreachable")


def test_images_whose_packages_cannot_be_compared(repo: Scenario, tmp_path: Path) -> None:
    no_dpkg = _unavailable(check(repo, tmp_path, image="no-dpkg"), "not-comparable")
    assert "has no dpkg status database" in no_dpkg.message
    no_suite = _unavailable(check(repo, tmp_path, image="no-suite"), "not-comparable")
    assert "cannot tell which Debian suite" in no_suite.message


def test_a_bad_deb_leaves_the_update_listed_and_its_cves_unknown(repo: Scenario, tmp_path: Path) -> None:
    found = check(repo, tmp_path, image="faulty")
    updates = pending(found)
    assert "CVEs unknown (changelog-truncated" in updates["libtrunc1"].message
    assert facts_of(updates["libtrunc1"]).security
    # A fault is never kept: the next check reads the archive again.
    assert not check(repo, tmp_path, image="faulty").cached


def test_lookup_answers_without_the_image_once_it_was_read(repo: Scenario, tmp_path: Path) -> None:
    from hardening.archive.image import read_image_archive

    image_id = read_image_archive(repo.images["labelled"], reference="x").image_id
    gone = ScanTarget(image="demo", ref="labelled", image_id=image_id, tar_path=tmp_path / "not-saved.tar")
    archive = source(repo, tmp_path)
    assert archive.lookup(gone, None) is None  # never read: the image must be saved
    first = check(repo, tmp_path, image_id=image_id)
    found = archive.lookup(gone, None)  # the tar need not exist now
    assert found is not None and found.cached
    assert [f.key for f in found.findings] == [f.key for f in first.findings]
    # The archive moved (another security Release): the image is known, the answer is not.
    repo.behaviour.bodies[SECURITY_INRELEASE] = b"garbage"
    broken = archive.lookup(gone, None)
    assert broken is not None and broken.state is CheckState.UNAVAILABLE


def test_outdated_writes_the_record_harden_report_reads(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardening.pending.record import read_pending_record
    from tests.archive.test_local_repo import harden

    argv = [
        *("outdated", "--archive", str(repo.images["labelled"]), "--keyring", str(repo.key.keyring)),
        *("--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")),
        *("--pending-dir", str(tmp_path / "pending"), "--stale-list", str(tmp_path / "stale")),
    ]
    code, _, err = harden(argv, capsys)
    assert code == 0, err
    image_id, (written,) = read_pending_record(tmp_path / "pending" / "labelled.tar" / "pending.json")
    assert image_id.startswith("sha256:") and written.state is CheckState.PARTIAL
    direct = check(repo, tmp_path / "direct", image_id=image_id)
    assert sorted(f.key for f in written.findings) == sorted(f.key for f in direct.findings)
    # Only catalog images are named in the stale list (an --archive is not one).
    assert (tmp_path / "stale").read_text() == ""
