"""OSV records become Trivy's bucket layout; bad records are refused with file and field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hardening.db import bboltread
from hardening.db.build import DbInfo, build_db
from hardening.db.convert import PIP_BUCKET, normalize_pip_name
from hardening.db.cvss import cvss3_base_score
from hardening.db.osv import load_record
from hardening.errors import ConfigError, DatabaseError

REPO = Path(__file__).resolve().parents[2]
ADVISORIES = REPO / "advisories"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PIP = PIP_BUCKET.encode()


def osv(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "GHSA-aaaa-bbbb-cccc",
        "modified": "2025-01-02T03:04:05Z",
        "published": "2025-01-01T00:00:00Z",
        "aliases": ["CVE-2025-0001"],
        "summary": "a flaw",
        "details": "a longer story",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Demo_Package"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            }
        ],
        "database_specific": {"severity": "HIGH", "cwe_ids": ["CWE-20"]},
    }
    record.update(overrides)
    return record


def debian(package: str = "openssl", **affected_overrides: Any) -> dict[str, Any]:
    affected: dict[str, Any] = {
        "package": {"ecosystem": "Debian:12", "name": package},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.14-1~deb12u2"}]}],
    }
    affected.update(affected_overrides)
    return {
        "id": "DEBIAN-CVE-2025-0001",
        "modified": "2025-01-02T03:04:05Z",
        "upstream": ["CVE-2025-0001"],
        "summary": "a flaw in openssl",
        "affected": [affected],
    }


def write(directory: Path, *records: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record, indent=2))
    return directory


def build(tmp_path: Path, *records: dict[str, Any]) -> tuple[DbInfo, dict[bytes, Any]]:
    info = build_db([write(tmp_path / "adv", *records)], tmp_path / "cache", now=NOW)
    reader = bboltread.Reader.open(info.path)
    assert reader.check() == []
    return info, reader.tree()


def decoded(value: Any) -> Any:
    assert isinstance(value, bytes)
    return json.loads(value)


class TestRepositoryAdvisories:
    def test_build_from_the_repository_advisories(self, tmp_path: Path) -> None:
        info = build_db([ADVISORIES], tmp_path, now=NOW)
        assert info.path == tmp_path / "db" / "trivy.db"
        # Every record: the hand-written ones and those derived from Debian changelogs (debian/).
        records = list(ADVISORIES.rglob("*.json"))
        assert len(list((ADVISORIES / "debian").glob("DEBIAN-CVE-*.json"))) > 100
        assert info.advisories == len(records)
        # The data's age, not the build's: the newest `modified` among the records.
        newest = max(json.loads(p.read_text())["modified"] for p in records)
        assert info.updated_at == datetime.fromisoformat(newest)
        tree = bboltread.Reader.open(info.path).tree()
        pip: Any = tree[PIP]
        assert decoded(pip[b"setuptools"][b"CVE-2024-6345"]) == {
            "VendorIDs": ["GHSA-cx63-2mw6-8hw5"],
            "VulnerableVersions": ["<70.0.0"],
            "PatchedVersions": ["70.0.0"],
        }
        assert decoded(pip[b"setuptools"][b"CVE-2025-47273"])["PatchedVersions"] == ["78.1.1"]
        assert decoded(pip[b"pip"][b"CVE-2023-5752"])["PatchedVersions"] == ["23.3"]
        assert decoded(pip[b"pip"][b"CVE-2025-8869"])["PatchedVersions"] == ["25.3"]
        bookworm: Any = tree[b"debian 12"]
        assert decoded(bookworm[b"setuptools"][b"CVE-2024-6345"]) == {"FixedVersion": "66.1.1-1+deb12u1"}
        assert decoded(bookworm[b"setuptools"][b"CVE-2025-47273"]) == {"FixedVersion": "66.1.1-1+deb12u2"}
        assert info.vulnerabilities == len(tree[b"vulnerability"])

    def test_a_cve_known_to_ghsa_and_debian_gets_one_merged_vulnerability(self, tmp_path: Path) -> None:
        tree = bboltread.Reader.open(build_db([ADVISORIES], tmp_path, now=NOW).path).tree()
        vulnerabilities: Any = tree[b"vulnerability"]
        vuln = decoded(vulnerabilities[b"CVE-2024-6345"])
        assert vuln["Severity"] == "HIGH"
        assert vuln["VendorSeverity"] == {"ghsa": 3}
        assert vuln["CVSS"] == {
            "ghsa": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", "V3Score": 8.8}
        }
        assert vuln["CweIDs"] == ["CWE-94"]
        assert vuln["PublishedDate"] == "2024-07-15T03:30:57Z"
        assert vuln["LastModifiedDate"] == "2024-07-15T16:25:39Z"
        # Debian's one-line description wins the title, as in trivy-db's source precedence.
        assert vuln["Title"].startswith("setuptools: remote code execution")
        assert "https://security-tracker.debian.org/tracker/CVE-2024-6345" in vuln["References"]
        assert "https://nvd.nist.gov/vuln/detail/CVE-2024-6345" in vuln["References"]

    def test_data_sources_name_every_advisory_bucket(self, tmp_path: Path) -> None:
        tree = bboltread.Reader.open(build_db([ADVISORIES], tmp_path, now=NOW).path).tree()
        sources: Any = tree[b"data-source"]
        assert decoded(sources[PIP])["ID"] == "ghsa"
        assert decoded(sources[b"debian 12"]) == {
            "ID": "debian",
            "Name": "Debian Security Tracker",
            "URL": "https://salsa.debian.org/security-tracker-team/security-tracker",
        }
        assert set(tree) - {b"data-source", b"vulnerability"} == set(sources)

    def test_every_file_is_named_by_its_id_and_listed_in_the_readme(self) -> None:
        readme = (ADVISORIES / "README.md").read_text()
        files = sorted(ADVISORIES.glob("*.json"))
        assert len(files) >= 6
        for path in files:
            record = load_record(path)
            assert path.stem == record.id
            assert f"`{path.name}`" in readme
        listed = set(re.findall(r"`([A-Z][A-Za-z0-9-]+\.json)`", readme))
        assert listed == {p.name for p in files}


class TestPip:
    def test_the_debian_directory_holds_derived_records_only(self) -> None:
        files = sorted((ADVISORIES / "debian").glob("*.json"))
        assert len(files) > 100
        for path in files:
            record = load_record(path)
            assert path.stem == record.id and record.id.startswith("DEBIAN-CVE-")
            assert record.affected and all(
                (a.database_specific or {}).get("derived_from") == "debian-changelog" for a in record.affected
            ), path.name
            assert {a.package.ecosystem for a in record.affected} <= {"Debian:12", "Debian:13"}
        # The hand-written Debian records left are for packages the images do not carry.
        derived = {path.name for path in files}
        assert not derived & {p.name for p in ADVISORIES.glob("DEBIAN-CVE-*.json")}

    def test_advisory_value_and_package_normalisation(self, tmp_path: Path) -> None:
        _, tree = build(tmp_path, osv())
        assert decoded(tree[PIP][b"demo-package"][b"CVE-2025-0001"]) == {
            "VendorIDs": ["GHSA-aaaa-bbbb-cccc"],
            "VulnerableVersions": ["<2.0"],
            "PatchedVersions": ["2.0"],
        }

    def test_normalize_pip_name_matches_trivy(self) -> None:
        assert normalize_pip_name("Zope_Interface") == "zope-interface"
        assert normalize_pip_name("zope.interface") == "zope.interface"

    def test_without_a_cve_the_record_id_is_the_key(self, tmp_path: Path) -> None:
        _, tree = build(tmp_path, osv(aliases=["PYSEC-2025-1"]))
        assert decoded(tree[PIP][b"demo-package"][b"GHSA-aaaa-bbbb-cccc"])["VendorIDs"] == ["PYSEC-2025-1"]

    def test_ranges_and_versions_become_trivy_constraints(self, tmp_path: Path) -> None:
        affected = {
            "package": {"ecosystem": "PyPI", "name": "demo"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [
                        {"introduced": "1.0"},
                        {"fixed": "1.5"},
                        {"introduced": "2.0"},
                        {"last_affected": "2.3"},
                        {"introduced": "3.0"},
                    ],
                },
                {"type": "GIT", "events": [{"introduced": "abc123"}]},
            ],
            "versions": ["1.2", "0.9"],
        }
        _, tree = build(tmp_path, osv(affected=[affected]))
        value = decoded(tree[PIP][b"demo"][b"CVE-2025-0001"])
        assert value["VulnerableVersions"] == [">=1.0, <1.5", ">=2.0, <=2.3", ">=3.0", "=0.9"]
        assert value["PatchedVersions"] == ["1.5"]

    def test_vulnerability_entry(self, tmp_path: Path) -> None:
        record = osv(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N"}])
        _, tree = build(tmp_path, record)
        assert decoded(tree[b"vulnerability"][b"CVE-2025-0001"]) == {
            "Title": "a flaw",
            "Description": "a longer story",
            "Severity": "HIGH",
            "CweIDs": ["CWE-20"],
            "VendorSeverity": {"ghsa": 3},
            "CVSS": {"ghsa": {"V3Vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N", "V3Score": 5.5}},
            "PublishedDate": "2025-01-01T00:00:00Z",
            "LastModifiedDate": "2025-01-02T03:04:05Z",
        }

    def test_severity_falls_back_to_the_cvss_score(self, tmp_path: Path) -> None:
        record = osv(
            database_specific={},
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        )
        _, tree = build(tmp_path, record)
        vuln = decoded(tree[b"vulnerability"][b"CVE-2025-0001"])
        assert vuln["Severity"] == "CRITICAL"
        assert vuln["VendorSeverity"] == {"ghsa": 4}

    def test_withdrawn_records_are_left_out(self, tmp_path: Path) -> None:
        info, tree = build(tmp_path, osv(withdrawn="2025-06-01T00:00:00Z"))
        assert info.advisories == 0
        assert PIP not in tree
        assert tree[b"vulnerability"] == {}


class TestDebian:
    def test_fixed(self, tmp_path: Path) -> None:
        _, tree = build(tmp_path, debian())
        assert decoded(tree[b"debian 12"][b"openssl"][b"CVE-2025-0001"]) == {
            "FixedVersion": "3.0.14-1~deb12u2"
        }
        assert decoded(tree[b"vulnerability"][b"CVE-2025-0001"]) == {
            "Title": "a flaw in openssl",
            "Severity": "UNKNOWN",
        }

    @pytest.mark.parametrize(
        ("status", "number"),
        [(None, 2), ("unfixed", 2), ("no-dsa", 2), ("ignored", 5), ("postponed", 6), ("end-of-life", 7)],
    )
    def test_unfixed_status(self, tmp_path: Path, status: str | None, number: int) -> None:
        specific = {"urgency": "low"} | ({"status": status} if status else {})
        record = debian(
            ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}], ecosystem_specific=specific
        )
        _, tree = build(tmp_path, record)
        value = decoded(tree[b"debian 12"][b"openssl"][b"CVE-2025-0001"])
        assert value == {"Status": number, "Severity": 1}
        vuln = decoded(tree[b"vulnerability"][b"CVE-2025-0001"])
        assert vuln["VendorSeverity"] == {"debian": 1}
        assert vuln["Severity"] == "LOW"

    def test_point_release_ecosystem_maps_to_the_major_bucket(self, tmp_path: Path) -> None:
        record = debian()
        record["affected"][0]["package"]["ecosystem"] = "Debian:12.7"
        _, tree = build(tmp_path, record)
        assert b"debian 12" in tree

    def test_dsa_ids_stay_vendor_ids(self, tmp_path: Path) -> None:
        record = debian() | {"id": "DSA-5764-1", "upstream": [], "aliases": ["CVE-2025-0001"]}
        _, tree = build(tmp_path, record)
        assert decoded(tree[b"debian 12"][b"openssl"][b"CVE-2025-0001"])["VendorIDs"] == ["DSA-5764-1"]


class TestRefusals:
    def refuse(self, tmp_path: Path, record: dict[str, Any]) -> ConfigError:
        directory = write(tmp_path / "adv", record)
        with pytest.raises(ConfigError) as raised:
            build_db([directory], tmp_path / "cache", now=NOW)
        error = raised.value
        assert error.location is not None
        assert Path(error.location.path).name == f"{record['id']}.json"
        assert not (tmp_path / "cache" / "db" / "trivy.db").exists()
        return error

    def test_broken_json_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "X-1.json"
        path.write_text('{\n  "id": "X-1",\n  "modified": \n}\n')
        with pytest.raises(ConfigError) as raised:
            build_db([path], tmp_path / "cache")
        assert raised.value.location is not None
        assert raised.value.location.line == 4

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"modified": None}, "modified"),
            ({"modified": "2025-01-02T03:04:05"}, "modified"),
            ({"id": "../evil"}, "id"),
            ({"affected": []}, "affected"),
            ({"aliases": "CVE-2025-0001"}, "aliases"),
            ({"affected": [{"package": {"ecosystem": "PyPI"}}]}, "affected[0].package.name"),
            (
                {
                    "affected": [
                        {
                            "package": {"ecosystem": "PyPI", "name": "x"},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}],
                        }
                    ]
                },
                "affected[0].ranges[0].events[0]",
            ),
        ],
    )
    def test_schema_violations_name_the_field(
        self, tmp_path: Path, change: dict[str, Any], field: str
    ) -> None:
        record = osv()
        for key, value in change.items():
            if value is None:
                del record[key]
            else:
                record[key] = value
        path = tmp_path / "GHSA-aaaa-bbbb-cccc.json"
        path.write_text(json.dumps(record))
        with pytest.raises(ConfigError) as raised:
            build_db([path], tmp_path / "cache")
        assert raised.value.location is not None
        assert raised.value.location.field == field, raised.value.details

    def test_unsupported_ecosystem(self, tmp_path: Path) -> None:
        record = osv()
        record["affected"][0]["package"]["ecosystem"] = "npm"
        error = self.refuse(tmp_path, record)
        assert error.location is not None
        assert error.location.field == "affected[0].package.ecosystem"

    def test_bad_pep440_version(self, tmp_path: Path) -> None:
        record = osv()
        record["affected"][0]["ranges"][0]["events"][1] = {"fixed": "not a version"}
        error = self.refuse(tmp_path, record)
        assert error.location is not None
        assert error.location.field == "affected[0].ranges[0].events[1].fixed"

    def test_fixed_before_introduced(self, tmp_path: Path) -> None:
        record = osv()
        record["affected"][0]["ranges"][0]["events"] = [{"fixed": "2.0"}]
        self.refuse(tmp_path, record)

    def test_no_affected_versions(self, tmp_path: Path) -> None:
        record = osv()
        record["affected"][0]["ranges"] = []
        self.refuse(tmp_path, record)

    def test_bad_cvss_vector(self, tmp_path: Path) -> None:
        error = self.refuse(tmp_path, osv(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:X"}]))
        assert error.location is not None
        assert error.location.field == "severity[0].score"

    def test_unknown_ghsa_severity(self, tmp_path: Path) -> None:
        self.refuse(tmp_path, osv(database_specific={"severity": "SEVERE"}))

    def test_bad_debian_version_and_names(self, tmp_path: Path) -> None:
        record = debian(ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "v1.0"}]}])
        self.refuse(tmp_path, record)
        self.refuse(tmp_path / "2", debian(package="OpenSSL"))
        self.refuse(tmp_path / "3", debian(ecosystem_specific={"status": "wontfix"}))
        two_fixes = [{"introduced": "0"}, {"fixed": "1.0-1"}, {"introduced": "1.1-1"}, {"fixed": "1.2-1"}]
        self.refuse(tmp_path / "4", debian(ranges=[{"type": "ECOSYSTEM", "events": two_fixes}]))

    def test_the_same_advisory_in_two_files(self, tmp_path: Path) -> None:
        directory = write(tmp_path / "adv", osv(), osv(id="GHSA-dddd-eeee-ffff"))
        with pytest.raises(ConfigError, match="also defined by"):
            build_db([directory], tmp_path / "cache")

    def test_missing_path(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            build_db([tmp_path / "nope"], tmp_path / "cache")


class TestMetadata:
    def test_metadata_of_a_built_db(self, tmp_path: Path) -> None:
        build_db([], tmp_path, now=NOW)
        metadata = json.loads((tmp_path / "db" / "metadata.json").read_text())
        assert metadata == {
            "Version": 2,
            # A Trivy client that downloaded it from a site's registry looks for a newer one a
            # day after the build, as after the upstream DB's.
            "NextUpdate": "2026-11-27T12:00:00Z",
            # Nothing was read, so the data is of no date (Go's zero time), not of the build's.
            "UpdatedAt": "0001-01-01T00:00:00Z",
            "DownloadedAt": "2026-11-26T12:00:00Z",
            "Hardening": {"Source": "built", "Contents": []},
        }

    def test_an_empty_db_still_has_the_buckets_trivy_needs(self, tmp_path: Path) -> None:
        info = build_db([], tmp_path, now=NOW)
        assert bboltread.Reader.open(info.path).tree() == {b"data-source": {}, b"vulnerability": {}}
        assert (info.advisories, info.vulnerabilities) == (0, 0)

    def test_unwritable_cache_is_a_database_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "cache"
        blocker.write_text("a file")
        with pytest.raises(DatabaseError):
            build_db([], blocker, now=NOW)


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N", 5.5),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/", 7.5),
    ],
)
def test_cvss3_base_scores(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    ["CVSS:2.0/AV:N", "CVSS:3.1/AV:N/AC:L", "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "junk"],
)
def test_cvss3_refuses_what_is_not_a_v3_vector(vector: str) -> None:
    with pytest.raises(ValueError):
        cvss3_base_score(vector)
