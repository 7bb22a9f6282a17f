"""Bad input and faults: each is an error or a named gap, never a silent "up to date".

The repository is the real one of conftest.py; the faults are made by the server (another body,
a status, a delay, a trickle) or by the image, and reach the reader through its real code.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.archive.conftest import Scenario
from tests.archive.test_local_repo import by_package, harden, outdated

SECURITY_INRELEASE = "/debian-security/dists/bookworm-security/InRelease"
RELEASE_INRELEASE = "/debian/dists/bookworm/InRelease"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_signature_by_an_unknown_key(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = tmp_path / "InRelease"
    release = (repo.root / "debian-security/dists/bookworm-security/Release").read_text()
    repo.other_key.clearsign(release, signed)
    repo.behaviour.bodies[SECURITY_INRELEASE] = signed.read_bytes()
    code, _, err, record = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "Debian archive data failed verification" in err
    assert "bookworm-security/InRelease does not verify" in err
    assert record is None


def test_signed_text_altered_after_signing(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = (repo.root / RELEASE_INRELEASE.lstrip("/")).read_bytes()
    tampered = original.replace(b"Version: 12.9", b"Version: 12.8")
    assert tampered != original
    repo.behaviour.bodies[RELEASE_INRELEASE] = tampered
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "bookworm/InRelease does not verify" in err
    assert "BAD signature" in err


def test_a_pocket_answered_with_another_suites_release(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Validly signed, but the Release of bookworm served as bookworm-security (a replay).
    repo.behaviour.bodies[SECURITY_INRELEASE] = (repo.root / RELEASE_INRELEASE.lstrip("/")).read_bytes()
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "is the Release of bookworm, not bookworm-security" in err


def test_expired_release(repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = (repo.root / "debian-security/dists/bookworm-security/Release").read_text()
    past = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    lines = [
        f"Valid-Until: {past}" if line.startswith("Valid-Until:") else line for line in release.splitlines()
    ]
    signed = tmp_path / "InRelease"
    repo.key.clearsign("\n".join(lines) + "\n", signed)
    repo.behaviour.bodies[SECURITY_INRELEASE] = signed.read_bytes()
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "expired on" in err and "Valid-Until" in err


def test_index_that_does_not_match_the_release(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = repo.root / "debian-security/dists/bookworm-security/main/binary-amd64"
    for path in (folder / "by-hash/SHA256").iterdir():
        data = path.read_bytes()
        altered = bytes([data[0] ^ 1]) + data[1:] if data else b"x"
        repo.behaviour.bodies["/" + str(path.relative_to(repo.root))] = altered
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "Debian archive data failed verification" in err
    assert "the index main/binary-amd64/Packages.gz of bookworm-security from" in err
    assert "has SHA-256" in err and "the signed index says" in err


def test_deb_that_does_not_match_the_index_is_a_named_gap(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repo.pool_path("libfoo1-sec", "bookworm-security")
    data = repo.debs["libfoo1-sec"].path.read_bytes()
    repo.behaviour.bodies[path] = data[:-1] + bytes([data[-1] ^ 1])
    code, out, err, record = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "could not be read or verified" in err
    assert record is not None  # written before the exit, with the gap named
    foo = by_package(record)["libfoo1"]
    assert foo["security"] is True and foo["cves"] == [] and foo["cves_known"] is False
    gaps = [g for g in record["gaps"] if g["kind"] == "deb-hash-mismatch"]
    assert [g["subject"] for g in gaps] == ["foo 1.0-1+deb12u1"] and gaps[0]["fault"] is True
    assert "gap deb-hash-mismatch foo 1.0-1+deb12u1" in out
    # The other updates are still reported with their CVEs.
    assert by_package(record)["bar"]["cves"] == ["CVE-2024-3333"]


def test_truncated_changelogs_are_named_gaps(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err, record = outdated(repo, "faulty", tmp_path, capsys)
    assert code == 3, err
    assert record is not None
    gaps = {g["subject"]: g for g in record["gaps"] if g["kind"] == "changelog-truncated"}
    assert sorted(gaps) == ["cut 1.0-1+deb12u1", "trunc 1.0-1+deb12u1"]
    assert "end-of-stream" in gaps["trunc 1.0-1+deb12u1"]["detail"]
    assert "no trailer line" in gaps["cut 1.0-1+deb12u1"]["detail"]
    pending = by_package(record)
    for name in ("libtrunc1", "libcut1"):
        assert pending[name]["security"] is True and pending[name]["cves_known"] is False


def test_mirror_down(repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err, record = outdated(
        repo, "labelled", tmp_path, capsys, "--mirror", f"http://127.0.0.1:{_closed_port()}/debian"
    )
    assert code == 3
    assert "cannot read the Debian archive" in err
    assert "the mirror did not answer for the Release file of bookworm" in err
    assert record is None


def test_mirror_answers_with_an_error(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo.behaviour.statuses["/debian/dists/bookworm-updates/InRelease"] = 503
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 3
    assert "the mirror answered HTTP 503 for the Release file of bookworm-updates" in err


@pytest.mark.parametrize("how", ["silent", "trickle"])
def test_slow_mirror_times_out(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    if how == "silent":
        repo.behaviour.delay[RELEASE_INRELEASE] = 4.0
    else:
        repo.behaviour.trickle[RELEASE_INRELEASE] = 0.2  # a byte every 0.2 s: minutes for the file
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys, "--timeout", "1")
    assert code == 3
    assert "the mirror did not deliver the Release file of bookworm within 1 s" in err


def test_image_without_dpkg_status(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err, record = outdated(repo, "no-dpkg", tmp_path, capsys)
    assert code == 2
    assert "has no dpkg status database" in err
    assert record is None


def test_image_without_suite_label_or_os_release(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err, _ = outdated(repo, "no-suite", tmp_path, capsys)
    assert code == 2
    assert "cannot tell which Debian suite" in err and "--suite" in err
    code, _, err, record = outdated(
        repo,
        "no-suite",
        tmp_path,
        capsys,
        "--suite",
        "bookworm",
        "--mirror",
        repo.server.mirror,
        "--security-mirror",
        repo.server.security_mirror,
    )
    assert code == 0, err
    assert record is not None and record["origin"] == "options"
    assert len(record["pending"]) == 8


def test_missing_keyring(repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys, "--keyring", str(tmp_path / "absent.gpg"))
    assert code == 3
    assert "absent.gpg does not exist" in err


def test_advisories_with_a_bad_deb_write_the_rest_and_exit_3(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repo.pool_path("libfoo1-sec", "bookworm-security")
    data = repo.debs["libfoo1-sec"].path.read_bytes()
    repo.behaviour.bodies[path] = data[:-1] + bytes([data[-1] ^ 1])
    out = tmp_path / "osv"
    code, stdout, err = harden(
        [
            *("advisories", "--archive", str(repo.images["labelled"]), "--keyring", str(repo.key.keyring)),
            *("--cache-dir", str(tmp_path / "cache"), "--output", str(out)),
        ],
        capsys,
    )
    assert code == 3
    assert "1 changelog(s) could not be read or verified" in err
    assert "gap deb-hash-mismatch foo 1.0-1+deb12u1" in stdout
    names = sorted(p.name for p in out.glob("*.json"))
    assert "DEBIAN-CVE-2024-1111.json" not in names  # foo's, unreadable
    assert "DEBIAN-CVE-2024-3333.json" in names  # bar's, read
