"""`harden outdated` against a real, signed apt repository served on 127.0.0.1.

Every expectation below is written out by hand from the scenario in conftest.py: which packages
are pending, from which pocket, with which CVE ids, and which gaps are named.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hardening.cli import main
from tests.archive.aptrepo import (
    Deb,
    Entry,
    Pocket,
    build_deb,
    changelog,
    make_key,
    publish,
    serve,
    status_paragraph,
)
from tests.archive.conftest import SECURITY_DATE, UPDATES_DATE, Scenario
from tests.unit.imagetar import ImageSpec, file, legacy_save


def harden(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def outdated(
    repo: Scenario, image: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str, dict[str, Any] | None]:
    out = tmp_path / "out"
    code, stdout, stderr = harden(
        [
            "outdated",
            "--archive",
            str(repo.images[image]),
            "--keyring",
            str(repo.key.keyring),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            *extra,
        ],
        capsys,
    )
    record = out / f"{image}.tar" / "outdated.json"
    return code, stdout, stderr, json.loads(record.read_text()) if record.is_file() else None


def by_package(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["package"]: p for p in record["pending"]}


def test_pending_updates_pockets_and_cves(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, record = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 0, err
    assert record is not None
    assert record["suite"] == "bookworm"
    assert record["origin"] == "labels"
    assert record["compared"] == 11
    pending = by_package(record)
    assert sorted(pending) == [
        "bar",
        "foo-tools",
        "libbin1",
        "libdocs1",
        "libfoo1",
        "libshort1",
        "nolog",
        "tilde",
    ]

    foo = pending["libfoo1"]
    assert (foo["source"], foo["installed_version"], foo["candidate_version"]) == (
        "foo",
        "1.0-1",
        "1.0-1+deb12u1",
    )
    assert (foo["suite"], foo["pocket"], foo["security"]) == ("bookworm-security", "security", True)
    assert foo["cves"] == ["CVE-2024-1111", "CVE-2024-2222"]  # not CVE-2023-0001, fixed before
    assert foo["cves_known"] is True
    assert foo["first_seen"] == SECURITY_DATE.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert foo["uploaded"] == "Mon, 01 Jan 2024 12:00:00 +0000"
    assert pending["foo-tools"]["cves"] == foo["cves"]

    bar = pending["bar"]
    assert (bar["candidate_version"], bar["pocket"], bar["security"]) == ("2.0-1+deb12u1", "updates", False)
    assert bar["cves"] == ["CVE-2024-3333"]
    assert bar["first_seen"] == UPDATES_DATE.strftime("%Y-%m-%dT%H:%M:%SZ")

    tilde = pending["tilde"]
    assert (tilde["candidate_version"], tilde["pocket"]) == ("1.0-1", "release")
    assert tilde["cves"] == [] and tilde["cves_known"] is True

    libbin = pending["libbin1"]
    assert (libbin["installed_source_version"], libbin["candidate_version"]) == ("2.0-1", "2.0-1+deb12u1")
    assert libbin["cves"] == ["CVE-2024-4444"]

    assert pending["libdocs1"]["cves"] == ["CVE-2024-5555"]  # found through docs-data's docs link

    short = pending["libshort1"]
    assert short["cves"] == ["CVE-2024-6666"] and short["cves_known"] is False
    assert pending["nolog"]["cves"] == [] and pending["nolog"]["cves_known"] is False

    assert "baz" not in pending  # 1:3.0-2 outranks the security pocket's 3.5-1
    assert "common-data" not in pending
    gaps = {(g["kind"], g["subject"]) for g in record["gaps"]}
    assert gaps == {
        ("not-in-archive", "local-only:amd64 1.0"),
        ("changelog-too-short", "short 1.0-4"),
        ("no-changelog", "nolog 1.0-2"),
    }
    assert not any(g["fault"] for g in record["gaps"])
    summary = record["summary"]
    assert summary == {"pending": 8, "security": 6, "sources": 7, "cves": 6, "gaps": 3, "faults": 0}
    assert "libfoo1 1.0-1 → 1.0-1+deb12u1 bookworm-security [security]: CVE-2024-1111 CVE-2024-2222" in out
    assert "gap not-in-archive local-only:amd64 1.0" in out


def test_one_deb_per_source_and_indexes_by_hash(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err, _ = outdated(repo, "labelled", tmp_path, capsys)
    assert code == 0, err
    debs = [path for path in repo.behaviour.requests if path.endswith(".deb")]
    foo = [path for path in debs if "/foo/" in path]
    assert foo == [repo.pool_path("libfoo1-sec", "bookworm-security")]  # the smaller binary, once
    docs = [path for path in debs if "/docs/" in path]
    assert docs == [
        repo.pool_path("docs-data-sec", "bookworm-security"),
        repo.pool_path("libdocs1-sec", "bookworm-security"),
    ]
    assert all("/by-hash/SHA256/" in path for path in repo.behaviour.requests if "/Packages" in path)


def test_cache_second_run_reads_no_index_nor_deb(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = outdated(repo, "labelled", tmp_path, capsys)
    repo.behaviour.requests.clear()
    second = outdated(repo, "labelled", tmp_path, capsys)
    assert first[0] == second[0] == 0
    assert first[3] is not None and second[3] is not None
    assert first[3]["pending"] == second[3]["pending"]
    assert [p for p in repo.behaviour.requests if not p.endswith("/InRelease")] == []
    assert all(i["cached"] for pocket in second[3]["pockets"] for i in pocket["indexes"])


def test_os_release_and_own_sources_decide_without_labels(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err, record = outdated(repo, "os-release", tmp_path, capsys)
    assert code == 0, err
    assert record is not None
    assert record["origin"] == "os-release"
    assert sorted(by_package(record)) == [
        "bar",
        "foo-tools",
        "libbin1",
        "libdocs1",
        "libfoo1",
        "libshort1",
        "nolog",
        "tilde",
    ]
    assert {p["mirror"] for p in record["pockets"]} == {repo.server.mirror, repo.server.security_mirror}


def test_changelogs_security_only(repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err, record = outdated(repo, "labelled", tmp_path, capsys, "--changelogs", "security")
    assert code == 0, err
    assert record is not None
    pending = by_package(record)
    assert pending["bar"]["cves"] == [] and pending["bar"]["cves_known"] is False
    assert pending["libfoo1"]["cves"] == ["CVE-2024-1111", "CVE-2024-2222"]
    assert not any("/b/bar/" in path for path in repo.behaviour.requests)


def test_advisories_from_changelogs_feed_db_build(
    repo: Scenario, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "osv"
    code, stdout, err = harden(
        [
            "advisories",
            "--archive",
            str(repo.images["labelled"]),
            "--keyring",
            str(repo.key.keyring),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--output",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    records = {p.name: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    fixed = {
        name: [
            (a["package"]["ecosystem"], a["package"]["name"], a["ranges"][0]["events"][1]["fixed"])
            for a in r["affected"]
        ]
        for name, r in records.items()
    }
    assert fixed == {
        "DEBIAN-CVE-2022-9999.json": [("Debian:12", "tilde", "1.0~rc1-1")],
        "DEBIAN-CVE-2023-0001.json": [("Debian:12", "foo", "1.0-1")],
        # Named twice in one entry, and once more: the first (lowest) version counts.
        "DEBIAN-CVE-2024-1111.json": [("Debian:12", "foo", "1.0-1+deb12u1")],
        "DEBIAN-CVE-2024-2222.json": [("Debian:12", "foo", "1.0-1+deb12u1")],
        "DEBIAN-CVE-2024-3333.json": [("Debian:12", "bar", "2.0-1+deb12u1")],
        "DEBIAN-CVE-2024-4444.json": [("Debian:12", "bin", "2.0-1+deb12u1")],
        "DEBIAN-CVE-2024-5555.json": [("Debian:12", "docs", "1.0-1+deb12u1")],
        "DEBIAN-CVE-2024-6666.json": [("Debian:12", "short", "1.0-4")],
    }
    # baz's newest version is 1:3.0-2 (the epoch), whose changelog names no CVE.
    for record in records.values():
        assert record["upstream"] == [record["id"].replace("DEBIAN-", "")]
        assert record["modified"] == SECURITY_DATE.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "8 records from the changelogs of 8 source packages" in stdout
    gaps = [line for line in stdout.splitlines() if "gap " in line]
    assert len(gaps) == 1 and "no-changelog nolog 1.0-2" in gaps[0]

    code, stdout, err = harden(["db", "build", str(out), "--cache-dir", str(tmp_path / "trivy")], capsys)
    assert code == 0, err
    assert "from 8 advisories, 8 vulnerabilities" in stdout
    assert (tmp_path / "trivy" / "db" / "trivy.db").stat().st_size > 0


def test_indexes_kept_by_date_and_first_sighting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A new Release Date with a changed index fetches it; an unchanged index is reused; the
    first sighting of a candidate stays the Date it was first seen under."""
    key = make_key(tmp_path / "key")
    debs = tmp_path / "debs"
    log = [Entry("1.0-1+deb12u1", ["Fix CVE-2025-0001."], "bookworm-security"), Entry("1.0-1")]
    release = build_deb(debs, "libfoo1", "1.0-1", source="foo", changelog_text=changelog("foo", log[1:]))
    first = build_deb(debs, "libfoo1", "1.0-1+deb12u1", source="foo", changelog_text=changelog("foo", log))
    log2 = [Entry("1.0-1+deb12u2", ["Fix CVE-2025-0002."], "bookworm-security"), *log]
    second = build_deb(debs, "libfoo1", "1.0-1+deb12u2", source="foo", changelog_text=changelog("foo", log2))
    root = tmp_path / "www"
    day = [datetime(2026, 2, d, 6, tzinfo=UTC) for d in (1, 2, 3, 4)]
    until = datetime.now(UTC) + timedelta(days=3650)

    def security(debs: list[Deb], date: datetime) -> None:
        publish(root, Pocket("debian-security", "bookworm-security", debs, "12", date, until), key)

    publish(root, Pocket("debian", "bookworm", [release], date=day[0]), key)
    publish(root, Pocket("debian", "bookworm-updates", [], "12-updates", day[0]), key)
    security([first], day[0])
    server = serve(root)
    try:
        image = tmp_path / "image.tar"
        image.write_bytes(
            legacy_save(
                [[file("var/lib/dpkg/status", status_paragraph("libfoo1", "1.0-1", source="foo"))]],
                ImageSpec(
                    labels={
                        "org.hardening.base.suite": "bookworm",
                        "org.hardening.base.mirror": server.mirror,
                    }
                ),
            )
        )
        argv = ["outdated", "--archive", str(image), "--keyring", str(key.keyring)]
        argv += ["--cache-dir", str(tmp_path / "cache"), "--security-mirror", server.security_mirror]

        def run(out: str) -> dict[str, Any]:
            code, _, err = harden([*argv, "--out", str(tmp_path / out)], capsys)
            assert code == 0, err
            return json.loads((tmp_path / out / "image.tar" / "outdated.json").read_text())

        def security_index(record: dict[str, Any]) -> dict[str, Any]:
            pocket = next(p for p in record["pockets"] if p["suite"] == "bookworm-security")
            return {"date": pocket["date"], **pocket["indexes"][0]}

        one = run("one")
        assert [(p["candidate_version"], p["cves"], p["first_seen"]) for p in one["pending"]] == [
            ("1.0-1+deb12u1", ["CVE-2025-0001"], "2026-02-01T06:00:00Z")
        ]
        assert security_index(one)["cached"] is False

        security([first], day[1])  # a new Date, the same index: nothing to download
        two = run("two")
        assert security_index(two)["date"] == "2026-02-02T06:00:00+00:00"
        assert security_index(two)["cached"] is True
        assert two["pending"][0]["first_seen"] == "2026-02-01T06:00:00Z"  # seen since day one

        security([first, second], day[2])  # a new upload: a new index, a new candidate
        three = run("three")
        assert security_index(three)["cached"] is False
        assert security_index(three)["sha256"] != security_index(two)["sha256"]
        assert [(p["candidate_version"], p["cves"], p["first_seen"]) for p in three["pending"]] == [
            ("1.0-1+deb12u2", ["CVE-2025-0001", "CVE-2025-0002"], "2026-02-03T06:00:00Z")
        ]

        security([first, second], day[3])
        four = run("four")
        assert security_index(four)["cached"] is True
        assert four["pending"][0]["first_seen"] == "2026-02-03T06:00:00Z"
    finally:
        server.stop()
        key.close()
