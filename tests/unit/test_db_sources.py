"""OSV inputs beyond single files: export zips, the Go ecosystem, published data taken as published."""

from __future__ import annotations

import json
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hardening.db import bboltread
from hardening.db.build import build_db
from hardening.db.convert import GO_GHSA, GO_VULNDB, PIP_BUCKET, PIP_PYPA
from hardening.db.osv import MAX_MEMBER_BYTES
from hardening.db.ranges import SemVer, semver_matches
from hardening.errors import AdvisoryError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def go_record(ident: str = "GO-2023-1704", package: str = "stdlib", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": ident,
        "modified": "2024-05-20T16:03:47Z",
        "published": "2023-04-05T21:04:28Z",
        "aliases": ["CVE-2023-24534"],
        "summary": "Excessive memory allocation in net/http and net/textproto",
        "details": "HTTP and MIME header parsing can allocate large amounts of memory.",
        "affected": [
            {
                "package": {"name": package, "ecosystem": "Go"},
                "ranges": [
                    {
                        "type": "SEMVER",
                        "events": [
                            {"introduced": "0"},
                            {"fixed": "1.19.8"},
                            {"introduced": "1.20.0-0"},
                            {"fixed": "1.20.3"},
                        ],
                    }
                ],
                "ecosystem_specific": {
                    "imports": [{"path": "net/textproto", "goos": ["windows"], "goarch": ["amd64", "arm64"]}]
                },
            }
        ],
        "references": [{"type": "REPORT", "url": "https://go.dev/issue/58975"}],
        "database_specific": {"url": f"https://pkg.go.dev/vuln/{ident}", "review_status": "REVIEWED"},
    }
    record.update(overrides)
    return record


def export(path: Path, *records: dict[str, Any], raw: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
        for name, data in (raw or {}).items():
            archive.writestr(name, data)
    return path


def tree_of(path: Path) -> dict[bytes, Any]:
    reader = bboltread.Reader.open(path)
    assert reader.check() == []
    return reader.tree()


def value(tree: dict[bytes, Any], *keys: str) -> Any:
    node: Any = tree
    for key in keys:
        node = node[key.encode()]
    return json.loads(node)


class TestGo:
    def test_stdlib_goes_to_the_go_vulnerability_database_bucket(self, tmp_path: Path) -> None:
        info = build_db([export(tmp_path / "Go.zip", go_record())], tmp_path / "cache", now=NOW)
        tree = tree_of(info.path)
        assert value(tree, GO_VULNDB.name, "stdlib", "CVE-2023-24534") == {
            "VendorIDs": ["GO-2023-1704"],
            "VulnerableVersions": ["<1.19.8", ">=1.20.0-0, <1.20.3"],
            "PatchedVersions": ["1.19.8", "1.20.3"],
            "OSes": ["windows"],
            "Arches": ["amd64", "arm64"],
        }
        assert value(tree, "data-source", GO_VULNDB.name) == {
            "ID": "govulndb",
            "Name": "The Go Vulnerability Database",
            "URL": "https://pkg.go.dev/vuln/",
        }
        vulnerability = value(tree, "vulnerability", "CVE-2023-24534")
        # The Go database gives no severity: unknown, never guessed.
        assert vulnerability["Severity"] == "UNKNOWN"
        assert "VendorSeverity" not in vulnerability
        assert "https://pkg.go.dev/vuln/GO-2023-1704" in vulnerability["References"]
        assert vulnerability["PublishedDate"] == "2023-04-05T21:04:28Z"

    def test_modules_by_where_trivy_db_keeps_them(self, tmp_path: Path) -> None:
        records = [
            go_record("GO-2024-0001", "github.com/Example/Mod", aliases=["GHSA-aaaa-bbbb-cccc"]),
            go_record("GO-2024-0002", "golang.org/x/net", aliases=[]),
            go_record("GO-2024-0003", "toolchain", aliases=[]),
        ]
        info = build_db([export(tmp_path / "Go.zip", *records)], tmp_path / "cache", now=NOW)
        tree = tree_of(info.path)
        # Case is kept: Trivy looks Go modules up by their exact path.
        assert value(tree, GO_GHSA.name, "github.com/Example/Mod", "GO-2024-0001")["VendorIDs"] == [
            "GHSA-aaaa-bbbb-cccc"
        ]
        assert value(tree, "data-source", GO_GHSA.name)["ID"] == "ghsa"
        assert GO_VULNDB.name.encode() in tree and b"golang.org/x/net" in tree[GO_VULNDB.name.encode()]
        # The go command itself is not a package Trivy reports.
        assert (info.advisories, info.out_of_scope) == (2, 1)
        assert b"GO-2024-0003" not in tree[b"vulnerability"]

    def test_a_go_version_must_be_semver(self, tmp_path: Path) -> None:
        record = go_record()
        record["affected"][0]["ranges"][0]["events"][1] = {"fixed": "v1.19.8"}
        directory = tmp_path / "adv"
        directory.mkdir()
        (directory / "GO-2023-1704.json").write_text(json.dumps(record))
        with pytest.raises(AdvisoryError, match="not a semantic version") as raised:
            build_db([directory], tmp_path / "cache", now=NOW)
        assert raised.value.location is not None
        assert raised.value.location.field == "affected[0].ranges[0].events[1].fixed"

    @pytest.mark.parametrize(
        ("version", "constraint", "inside"),
        [
            ("1.19.8", "<1.19.8", False),
            ("1.19.7", "<1.19.8", True),
            ("1.20.0-rc.1", ">=1.20.0-0, <1.20.3", True),
            ("1.20.3", ">=1.20.0-0, <1.20.3", False),
            ("v1.19.8", "=1.19.8", True),
        ],
    )
    def test_semver_constraints(self, version: str, constraint: str, inside: bool) -> None:
        assert semver_matches(constraint, version) is inside

    def test_semver_precedence(self) -> None:
        ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11"]
        ordered.append("1.0.0")
        assert sorted(ordered, key=SemVer) == ordered


class TestExports:
    def test_a_malformed_member_names_the_zip_and_the_member(self, tmp_path: Path) -> None:
        broken = {"GO-2099-0001.json": b'{"id": "GO-2099-0001"}'}
        zipped = export(tmp_path / "Go.zip", go_record(), raw=broken)
        with pytest.raises(AdvisoryError) as raised:
            build_db([zipped], tmp_path / "cache", now=NOW)
        text = raised.value.diagnostics()
        assert f"{zipped}!/GO-2099-0001.json" in text
        assert "modified" in text
        assert not (tmp_path / "cache" / "db").exists()

    def test_a_file_named_zip_that_is_not_one_is_refused(self, tmp_path: Path) -> None:
        fake = tmp_path / "PyPI.zip"
        fake.write_text("<html>rate limited</html>")
        with pytest.raises(AdvisoryError, match="not a zip archive"):
            build_db([fake], tmp_path / "cache", now=NOW)

    def test_a_member_declaring_gigabytes_is_refused_before_inflating(self, tmp_path: Path) -> None:
        zipped = export(tmp_path / "bomb.zip", go_record())
        data = bytearray(zipped.read_bytes())
        central = data.index(b"PK\x01\x02")
        # The central directory's uncompressed size (offset 24): 3 GiB. Had the member been
        # read, zipfile would fail on the size instead of our check refusing it up front.
        struct.pack_into("<I", data, central + 24, 3 << 30)
        zipped.write_bytes(bytes(data))
        with pytest.raises(AdvisoryError, match="refused without unpacking") as raised:
            build_db([zipped], tmp_path / "cache", now=NOW)
        assert str(3 << 30) in raised.value.message
        assert MAX_MEMBER_BYTES < (3 << 30)

    def test_directories_read_json_only_an_export_beside_is_used_when_named(self, tmp_path: Path) -> None:
        directory = tmp_path / "advisories"
        (directory / "upstream").mkdir(parents=True)
        export(directory / "upstream" / "Go.zip", go_record())
        info = build_db([directory], tmp_path / "cache", now=NOW)
        assert info.advisories == 0
        info = build_db([directory, directory / "upstream" / "Go.zip"], tmp_path / "cache", now=NOW)
        assert info.advisories == 1

    def test_updated_at_is_the_newest_modified_of_all_inputs(self, tmp_path: Path) -> None:
        older = go_record("GO-2023-0001", modified="2023-01-01T00:00:00Z")
        newer = go_record("GO-2024-0001", aliases=["CVE-2024-0001"], modified="2024-06-01T10:00:00Z")
        withdrawn = go_record(
            "GO-2025-0001", aliases=[], modified="2025-02-02T00:00:00Z", withdrawn="2025-02-01T00:00:00Z"
        )
        info = build_db([export(tmp_path / "Go.zip", older, newer, withdrawn)], tmp_path / "cache", now=NOW)
        # A withdrawn record is left out of the DB but was part of the data read.
        assert (info.advisories, info.withdrawn) == (2, 1)
        assert info.updated_at == datetime(2025, 2, 2, tzinfo=UTC)
        metadata = json.loads((tmp_path / "cache" / "db" / "metadata.json").read_text())
        assert metadata["UpdatedAt"] == "2025-02-02T00:00:00Z"
        assert metadata["Hardening"]["Contents"] == [
            {
                "Kind": "osv",
                "Name": str(tmp_path / "Go.zip"),
                "UpdatedAt": "2025-02-02T00:00:00Z",
                "Records": 2,
            },
        ]


def pysec(ident: str, cve: str, *, versions: list[str], fixed: str = "2.0") -> dict[str, Any]:
    return {
        "id": ident,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": [cve],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "versions": versions,
            }
        ],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    }


class TestPublishedData:
    def test_pypa_records_are_attributed_to_the_pypa_database(self, tmp_path: Path) -> None:
        info = build_db(
            [export(tmp_path / "PyPI.zip", pysec("PYSEC-2024-1", "CVE-2024-1", versions=["1.0"]))],
            tmp_path / "cache",
            now=NOW,
        )
        tree = tree_of(info.path)
        assert PIP_BUCKET.encode() not in tree
        assert value(tree, PIP_PYPA.name, "demo", "CVE-2024-1")["VulnerableVersions"] == ["<2.0"]
        assert value(tree, "data-source", PIP_PYPA.name)["ID"] == "osv"
        assert value(tree, "vulnerability", "CVE-2024-1")["VendorSeverity"] == {"osv": 4}

    def test_an_export_is_taken_as_published(self, tmp_path: Path) -> None:
        records = [
            # A legacy version no PEP 440 parser reads: Trivy could never match it; left out.
            pysec("PYSEC-2024-1", "CVE-2024-1", versions=["2.0.0-final", "3.0"]),
            # A range bound that is not a version: the affected package is left out, noted.
            pysec("PYSEC-2024-2", "CVE-2024-2", versions=[], fixed="2019-09-12"),
            # A second record for the same vulnerability and package adds its ranges.
            pysec("PYSEC-2024-3", "CVE-2024-1", versions=[], fixed="1.5"),
        ]
        info = build_db([export(tmp_path / "PyPI.zip", *records)], tmp_path / "cache", now=NOW)
        tree = tree_of(info.path)
        assert value(tree, PIP_PYPA.name, "demo", "CVE-2024-1") == {
            "VendorIDs": ["PYSEC-2024-1"],
            "VulnerableVersions": ["<2.0", "=3.0", "<1.5"],
            "PatchedVersions": ["2.0", "1.5"],
        }
        assert b"CVE-2024-2" not in tree[b"vulnerability"]
        assert len(info.unusable) == 1
        assert "PYSEC-2024-2.json" in info.unusable[0]
        assert "'2019-09-12' is not a PEP 440 version" in info.unusable[0]

    def test_our_record_and_an_exports_for_the_same_package_conflict_unless_overridden(
        self, tmp_path: Path
    ) -> None:
        zipped = export(tmp_path / "PyPI.zip", pysec("PYSEC-2024-1", "CVE-2024-1", versions=[]))
        ours = tmp_path / "adv"
        ours.mkdir()
        mine = pysec("PYSEC-2024-9", "CVE-2024-1", versions=[], fixed="3.0")
        (ours / "PYSEC-2024-9.json").write_text(json.dumps(mine))
        for order in ([zipped, ours], [ours, zipped]):
            with pytest.raises(AdvisoryError, match="also defined by") as raised:
                build_db(order, tmp_path / "cache", now=NOW)
            assert "--override" in raised.value.diagnostics()
            info = build_db(order, tmp_path / "cache", now=NOW, override=True)
            tree = tree_of(info.path)
            assert value(tree, PIP_PYPA.name, "demo", "CVE-2024-1")["PatchedVersions"] == ["3.0"]

    def test_an_exports_record_may_name_other_ecosystems(self, tmp_path: Path) -> None:
        record = pysec("GHSA-mult-ieco-syst", "CVE-2024-7", versions=[])
        record["affected"].append({"package": {"ecosystem": "npm", "name": "demo"}, "versions": ["1.0.0"]})
        info = build_db([export(tmp_path / "PyPI.zip", record)], tmp_path / "cache", now=NOW)
        assert info.advisories == 1
        assert value(tree_of(info.path), PIP_BUCKET, "demo", "CVE-2024-7")["PatchedVersions"] == ["2.0"]

    def test_our_own_files_stay_strict(self, tmp_path: Path) -> None:
        directory = tmp_path / "adv"
        directory.mkdir()
        (directory / "PYSEC-2024-1.json").write_text(
            json.dumps(pysec("PYSEC-2024-1", "CVE-2024-1", versions=["2.0.0-final"]))
        )
        with pytest.raises(AdvisoryError, match=r"'2\.0\.0-final' is not a PEP 440 version"):
            build_db([directory], tmp_path / "cache", now=NOW)
