"""Changelog-derived advisories beside hand-written ones and an upstream DB: the collision settled.

A derived record (``database_specific.derived_from: debian-changelog``, as `harden advisories`
writes) yields: to a hand-written record for the same CVE and package, and to the base DB's when
merging. It still fills every package neither has. Two hand-written records still conflict.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hardening.db import bboltread
from hardening.db.build import build_db
from hardening.errors import AdvisoryError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def record(cve: str, *fixes: tuple[str, str], derived: bool) -> dict[str, Any]:
    affected = []
    for package, fixed in fixes:
        entry: dict[str, Any] = {
            "package": {"ecosystem": "Debian:12", "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
        }
        if derived:
            entry["database_specific"] = {"derived_from": "debian-changelog", "suite": "bookworm-security"}
        affected.append(entry)
    return {
        "id": f"DEBIAN-{cve}",
        "modified": "2026-11-20T00:00:00Z",
        "upstream": [cve],
        "summary": f"{cve} ({'derived' if derived else 'hand-written'})",
        "affected": affected,
    }


def folder(path: Path, *records: dict[str, Any]) -> Path:
    path.mkdir(parents=True)
    for item in records:
        (path / f"{item['id']}.json").write_text(json.dumps(item))
    return path


def fixed(cache: Path, package: str, cve: str) -> str | None:
    tree = bboltread.Reader.open(cache / "db" / "trivy.db").tree()
    value = tree.get(b"debian 12", {}).get(package.encode(), {}).get(cve.encode())
    return json.loads(value).get("FixedVersion") if isinstance(value, bytes) else None


def test_a_hand_written_record_wins_and_the_derived_one_fills_the_rest(tmp_path: Path) -> None:
    # The hand-written record says glibc's fix is another version; the derived one knows libxml2 too.
    written = folder(
        tmp_path / "written", record("CVE-2026-0001", ("glibc", "2.36-9+deb12u9"), derived=False)
    )
    derived = folder(
        tmp_path / "derived",
        record(
            "CVE-2026-0001", ("glibc", "2.36-9+deb12u7"), ("libxml2", "2.9.14+dfsg-1.3~deb12u2"), derived=True
        ),
    )
    for index, order in enumerate(([written, derived], [derived, written])):  # either way round
        cache = tmp_path / f"cache-{index}"
        info = build_db(order, cache, now=NOW)
        assert fixed(cache, "glibc", "CVE-2026-0001") == "2.36-9+deb12u9"
        assert fixed(cache, "libxml2", "CVE-2026-0001") == "2.9.14+dfsg-1.3~deb12u2"
        assert info.derived_set_aside == 1


def test_two_hand_written_records_still_conflict(tmp_path: Path) -> None:
    first = folder(tmp_path / "a", record("CVE-2026-0002", ("glibc", "2.36-9+deb12u9"), derived=False))
    second = folder(tmp_path / "b", record("CVE-2026-0002", ("glibc", "2.36-9+deb12u8"), derived=False))
    with pytest.raises(AdvisoryError, match="also defined by"):
        build_db([first, second], tmp_path / "cache", now=NOW)


def test_the_upstream_db_wins_over_a_derived_record_when_merging(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    build_db(
        [
            folder(
                tmp_path / "tracker", record("CVE-2026-0003", ("openssl", "3.0.15-1~deb12u1"), derived=False)
            )
        ],
        upstream,
        now=NOW,
    )
    ours = folder(
        tmp_path / "derived",
        record("CVE-2026-0003", ("openssl", "3.0.14-1~deb12u2"), derived=True),
        record("CVE-2026-0004", ("perl", "5.36.0-7+deb12u3"), derived=True),
    )
    merged = tmp_path / "merged"
    info = build_db([ours], merged, base_db=upstream, now=NOW)
    assert fixed(merged, "openssl", "CVE-2026-0003") == "3.0.15-1~deb12u1"  # the tracker's
    assert fixed(merged, "perl", "CVE-2026-0004") == "5.36.0-7+deb12u3"  # what only we knew
    assert info.derived_set_aside == 1
    # A hand-written record the base DB also has is still refused, as before.
    written = folder(
        tmp_path / "written", record("CVE-2026-0003", ("openssl", "3.0.14-1~deb12u2"), derived=False)
    )
    with pytest.raises(AdvisoryError, match="defined both by our records and by the base DB"):
        build_db([written], tmp_path / "refused", base_db=upstream, now=NOW)
