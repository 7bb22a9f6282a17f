"""The update history: first sightings kept across machines, releases matched, latency measured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.errors import ReportInputError
from hardening.findings import Finding, Origin, Severity
from hardening.pending.findings import PENDING_RULE
from hardening.pending.updates import (
    Released,
    Seen,
    known_sightings,
    latencies,
    load_updates,
    record_released,
    record_seen,
    updates_path,
)

DIGEST = "sha256:" + "d" * 64


def pending(package: str, source: str, version: str, *, first_seen: str, security: bool = True) -> Finding:
    props = {
        "suite": "bookworm-security" if security else "bookworm-updates",
        "source": source,
        "candidate_source_version": version,
        "security": "true" if security else "false",
        "cves": "CVE-2026-0001 CVE-2026-0002" if security else "",
        "first_seen": first_seen,
    }
    return Finding(
        origin=Origin.ARCHIVE,
        rule_id=PENDING_RULE,
        severity=Severity.HIGH,
        message="",
        image="demo",
        package=package,
        installed_version="1",
        fixed_version=version,
        properties=tuple(sorted(props.items())),
    )


def at(hour: int, day: int = 1) -> datetime:
    return datetime(2026, 6, day, hour, tzinfo=UTC)


def test_seen_once_per_update_and_image_then_released(tmp_path: Path) -> None:
    history = tmp_path / "history"
    findings = [
        pending("libc6", "glibc", "2.36-9+deb12u7", first_seen="2026-06-01T02:00:00Z"),
        pending("libc-bin", "glibc", "2.36-9+deb12u7", first_seen="2026-06-01T02:00:00Z"),
        pending("tzdata", "tzdata", "2026a-0+deb12u1", first_seen="2026-05-20T00:00:00Z", security=False),
    ]
    added = record_seen(history, "demo", findings, now=at(4))
    assert [(e.source, e.packages, e.security) for e in added] == [
        ("glibc", ("libc-bin", "libc6"), True),
        ("tzdata", ("tzdata",), False),
    ]
    assert record_seen(history, "demo", findings, now=at(5)) == []  # already recorded
    # A release that carries glibc's update, not tzdata's.
    shipped = record_released(
        history,
        "demo",
        {"glibc": "2.36-9+deb12u7", "tzdata": "2025b-0+deb12u1"},
        released=at(9),
        digest=DIGEST,
        refs=["registry.example/demo:1"],
    )
    assert [(r.source, r.installed) for r in shipped] == [("glibc", "2.36-9+deb12u7")]
    assert record_released(
        history, "demo", {"glibc": "2.36-9+deb12u8"}, released=at(10), digest=DIGEST, refs=[]
    ) == [
        Released("demo", "bookworm-updates", "tzdata", "2026a-0+deb12u1", at(10), DIGEST, (), None)
    ]  # tzdata gone from the image: nothing pending any more
    events = load_updates(history)["demo"]
    assert [type(e).__name__ for e in events] == ["Seen", "Seen", "Released", "Released"]
    (latency, gone) = latencies(events)
    assert (latency.source, latency.hours, latency.security) == ("glibc", 7.0, True)
    assert latency.cves == ("CVE-2026-0001", "CVE-2026-0002")
    assert gone.source == "tzdata" and gone.hours == 24 * 12 + 10


def test_first_sightings_come_back_from_the_committed_history(tmp_path: Path) -> None:
    committed = tmp_path / "committed"
    fresh = tmp_path / "fresh"
    glibc = pending("libc6", "glibc", "2.36-9+deb12u7", first_seen="2026-06-01T02:00:00Z")
    record_seen(committed, "demo", [glibc], now=at(4))
    record_seen(
        committed,
        "other",
        [pending("libc6", "glibc", "2.36-9+deb12u7", first_seen="2026-05-31T23:00:00Z")],
        now=at(4),
    )
    assert known_sightings([committed, fresh]) == {
        "bookworm-security/glibc/2.36-9+deb12u7": "2026-05-31T23:00:00Z"
    }
    # A fresh machine's history does not repeat what the committed one records.
    assert record_seen(fresh, "demo", [glibc], now=at(6), also_in=[committed]) == []
    assert not updates_path(fresh, "demo").exists()
    # Latency starts at the earliest sighting, whichever image saw it.
    record_released(committed, "demo", {"glibc": "2.36-9+deb12u7"}, released=at(5), digest=DIGEST, refs=[])
    (latency,) = latencies(load_updates(committed)["demo"], known=known_sightings([committed]))
    assert latency.hours == 6.0


@pytest.mark.parametrize(
    ("line", "message", "field"),
    [
        ('{"event":"seen","image":"demo"}', "required field is missing", "suite"),
        ('{"event":"shipped","image":"demo"}', "does not match any of the expected tags", None),
        ("not json", "Invalid JSON", None),
        ("", "empty line", None),
    ],
)
def test_reading_is_strict_and_names_file_and_line(
    tmp_path: Path, line: str, message: str, field: str | None
) -> None:
    path = updates_path(tmp_path, "demo")
    path.parent.mkdir(parents=True)
    good = Seen(
        "demo",
        "bookworm-security",
        "glibc",
        "2.36-9+deb12u7",
        True,
        ("CVE-2026-0001", "CVE-2026-0002"),
        ("libc6",),
        at(2),
        at(4),
    )
    record_seen(
        tmp_path,
        "demo",
        [pending("libc6", "glibc", "2.36-9+deb12u7", first_seen="2026-06-01T02:00:00Z")],
        now=at(4),
    )
    assert load_updates(tmp_path)["demo"] == [good]
    with path.open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(ReportInputError, match=message) as info:
        load_updates(tmp_path)
    assert info.value.location is not None and info.value.location.line == 2
    if field is not None:
        assert info.value.location.field == field


def test_an_event_in_another_images_file_is_refused(tmp_path: Path) -> None:
    record_seen(
        tmp_path, "demo", [pending("libc6", "glibc", "1", first_seen="2026-06-01T02:00:00Z")], now=at(4)
    )
    updates_path(tmp_path, "demo").rename(updates_path(tmp_path, "other"))
    with pytest.raises(ReportInputError, match="event of image 'demo' in the file of 'other'"):
        load_updates(tmp_path)
