"""Trivy's JSON report at the boundary: a real (trimmed) report parses into findings, and every
malformation is a ScannerError that says what is wrong, never an empty, clean-looking result."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hardening.errors import ExitCode, ScannerError
from hardening.findings import Origin, Severity
from hardening.scan.trivy import check_db, parse_report, scrub_report, version_supported

DATA = Path(__file__).resolve().parents[1] / "data" / "trivy"
ARTIFACT = "/tmp/hardening-scan-fixture/image.tar"
IMAGE_ID = "sha256:a85a181837f118495e11272bbb46d6d6f07fe3fe6b54219635d3642deac58dd4"
ALL = ("vuln", "secret", "misconfig")


def report() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "image-report.json").read_text())
    return data


def parse(data: Any, **kwargs: Any) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    options: dict[str, Any] = {
        "image": "demo",
        "artifact_name": ARTIFACT,
        "image_id": IMAGE_ID,
        "scanners": ALL,
    }
    options.update(kwargs)
    return parse_report(raw, **options)


def by_rule(parsed: Any) -> dict[tuple[str, str | None], Any]:
    return {(f.rule_id, f.package): f for f in parsed.findings}


# --- the real shape ---------------------------------------------------------------------------


def test_real_report_parses_into_every_kind_of_finding() -> None:
    parsed = parse(report())
    assert parsed.packages == 5
    assert parsed.trivy_version == "0.76.0"
    assert parsed.os == "debian 12.15"
    assert len(parsed.findings) == 4 + 2 + 1
    assert all(f.origin is Origin.SCANNER and f.image == "demo" for f in parsed.findings)


def test_python_package_vulnerability() -> None:
    finding = by_rule(parse(report()))[("CVE-2024-6345", "setuptools")]
    assert finding.installed_version == "66.1.1"
    assert finding.fixed_version == "70.0.0"
    assert finding.fixable
    assert finding.severity is Severity.HIGH
    assert finding.status == "fixed"
    assert finding.cvss_score == 8.8  # only GHSA scored it: the vendor's score
    assert finding.package_type == "python-pkg"
    assert finding.image_path == "/opt/venv/lib/python3.11/site-packages/setuptools-66.1.1.dist-info/METADATA"
    assert finding.layer == "sha256:8c5cab7a88f578353e27817dc967961d773f52a9837bc117c7596229a70ee48e"
    assert finding.primary_url == "https://avd.aquasec.com/nvd/cve-2024-6345"
    assert finding.title.startswith("setuptools: remote code execution")
    assert "package_index" in finding.description
    assert "https://nvd.nist.gov/vuln/detail/CVE-2024-6345" in finding.references
    assert "CVE-2024-6345 in setuptools 66.1.1 (fixed in 70.0.0)" in finding.message
    assert ("trivy.vendor_ids", "GHSA-cx63-2mw6-8hw5") in finding.properties
    assert ("trivy.data_source", "ghsa") in finding.properties


def test_os_package_vulnerabilities_point_at_the_dpkg_database() -> None:
    findings = by_rule(parse(report()))
    fixed = findings[("CVE-2099-0001", "python3-setuptools")]
    assert fixed.package_type == "debian"
    assert fixed.image_path == "/var/lib/dpkg/status"
    assert (fixed.installed_version, fixed.fixed_version) == ("66.1.1-1+deb12u2", "66.1.1-1+deb12u9")
    assert fixed.severity is Severity.UNKNOWN
    assert fixed.cvss_score is None
    unfixed = findings[("CVE-2099-0002", "perl-base")]
    assert unfixed.fixed_version is None and not unfixed.fixable
    assert unfixed.status == "affected"
    assert unfixed.severity is Severity.LOW
    assert "no fixed version" in unfixed.message


def test_secret_finding_names_the_place_and_never_the_secret() -> None:
    finding = by_rule(parse(report()))[("aws-access-key-id", None)]
    assert finding.severity is Severity.CRITICAL
    assert finding.image_path == "/app/creds"
    assert finding.title == "AWS Access Key ID"
    assert "/app/creds:1" in finding.message
    text = json.dumps(finding.to_json())
    assert "wJalrXUtnFEMI" not in text and "AKIA" not in text


def test_misconfiguration_findings_keep_trivy_rule_ids() -> None:
    findings = by_rule(parse(report()))
    root = findings[("DS-0002", None)]
    assert root.severity is Severity.HIGH
    assert root.image_path == "/app/Dockerfile"
    assert root.package_type == "dockerfile"
    assert root.status == "fail"
    assert ("DS-0017", None) in findings


def test_passing_misconfiguration_checks_are_not_findings() -> None:
    data = report()
    config = next(r for r in data["Results"] if r["Class"] == "config")
    config["Misconfigurations"][0]["Status"] = "PASS"
    assert ("DS-0002", None) not in by_rule(parse(data))


def test_nvd_score_is_preferred_over_the_vendor_score() -> None:
    data = report()
    python = next(r for r in data["Results"] if r["Class"] == "lang-pkgs")
    vuln = next(v for v in python["Vulnerabilities"] if v["VulnerabilityID"] == "CVE-2024-6345")
    vuln["CVSS"]["nvd"] = {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", "V3Score": 8}
    assert by_rule(parse(data))[("CVE-2024-6345", "setuptools")].cvss_score == 8.0


def test_unknown_fields_are_ignored() -> None:
    data = report()
    data["SomethingNew"] = {"x": 1}
    data["Results"][0]["Vulnerabilities"][0]["NewField"] = [1, 2]
    assert len(parse(data).findings) == 7


def test_cached_report_is_checked_by_image_id_not_by_tarball_path() -> None:
    assert len(parse(report(), artifact_name=None).findings) == 7


def test_version_support() -> None:
    assert version_supported("0.76.0")
    assert version_supported("0.76.3")
    assert not version_supported("0.75.9")
    assert not version_supported("0.77.0")
    assert not version_supported("v0.76.0")
    assert not version_supported("dev")


def test_scrubbed_report_keeps_findings_but_drops_file_excerpts() -> None:
    raw = json.dumps(report()).encode()
    assert b"wJalrXUtnFEMI" in raw
    scrubbed = scrub_report(raw)
    assert b"wJalrXUtnFEMI" not in scrubbed
    assert parse(scrubbed).findings == parse(raw).findings


# --- malformations ---------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> Any:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return data

    return mutate


def _delete(path: tuple[Any, ...]) -> Mutation:
    def mutate(data: dict[str, Any]) -> Any:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return data

    return mutate


VULN = ("Results", 1, "Vulnerabilities", 0)

MALFORMED: dict[str, tuple[Mutation, str]] = {
    "not an object": (lambda d: [d], "not a Trivy JSON report"),
    "empty object": (lambda d: {}, "SchemaVersion is None"),
    "schema 1": (_set(("SchemaVersion",), 1), "SchemaVersion is 1, expected 2"),
    "schema as text": (_set(("SchemaVersion",), "2"), "SchemaVersion is '2'"),
    "no ArtifactName": (_delete(("ArtifactName",)), "has no ArtifactName"),
    "no Results": (_delete(("Results",)), "has no Results"),
    "Results not a list": (_set(("Results",), {}), "Results"),
    "another artifact": (_set(("ArtifactName",), "/tmp/other.tar"), "is about '/tmp/other.tar'"),
    "another image": (_set(("Metadata", "ImageID"), "sha256:" + "0" * 64), "is about image sha256:000"),
    "nothing seen": (
        lambda d: {**d, "Metadata": {"ImageID": IMAGE_ID}, "Results": []},
        "no operating system and no package",
    ),
    "vulnerability without id": (_delete((*VULN, "VulnerabilityID")), "VulnerabilityID"),
    "empty vulnerability id": (_set((*VULN, "VulnerabilityID"), ""), "VulnerabilityID"),
    "vulnerability without package": (_delete((*VULN, "PkgName")), "PkgName"),
    "installed version as number": (_set((*VULN, "InstalledVersion"), 23), "InstalledVersion"),
    "severity missing": (_delete((*VULN, "Severity")), "Severity"),
    "severity unknown word": (_set((*VULN, "Severity"), "SEVERE"), "unknown severity 'SEVERE'"),
    "score as text": (_set((*VULN, "CVSS", "ghsa", "V3Score"), "5.5"), "V3Score"),
    "references not a list": (_set((*VULN, "References"), "https://x"), "References"),
    "secret without rule": (_delete(("Results", 3, "Secrets", 0, "RuleID")), "RuleID"),
    "misconfiguration without status": (
        _delete(("Results", 2, "Misconfigurations", 0, "Status")),
        "Status",
    ),
    "result without class": (_delete(("Results", 0, "Class")), "Class"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_report_is_a_scanner_error(case: str) -> None:
    mutate, expected = MALFORMED[case]
    data = mutate(copy.deepcopy(report()))
    with pytest.raises(ScannerError) as caught:
        parse(data)
    assert expected in str(caught.value)
    assert caught.value.exit_code == ExitCode.INFRASTRUCTURE
    assert "Trivy's report for demo" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"garbage, not json", "is not valid JSON"),
        (json.dumps(report()).encode()[:5000], "is truncated: the JSON stops in the middle"),
        (json.dumps(report()).encode()[:-1], "is truncated"),
        (b'{"SchemaVersion": 2,}', "is not valid JSON"),
        (b"null", "not a Trivy JSON report"),
    ],
    ids=["empty", "blank", "garbage", "truncated", "last-byte", "broken", "null"],
)
def test_unreadable_report_is_a_scanner_error(raw: bytes, expected: str) -> None:
    with pytest.raises(ScannerError, match=expected):
        parse(raw)


# --- the DB -----------------------------------------------------------------------------------


def _db(tmp_path: Path, metadata: object) -> Path:
    db = tmp_path / "db"
    db.mkdir()
    (db / "trivy.db").write_bytes(b"\0" * 4096)
    (db / "metadata.json").write_text(json.dumps(metadata))
    return tmp_path


def test_missing_db_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(ScannerError) as caught:
        check_db(tmp_path)
    assert "no Trivy vulnerability DB" in str(caught.value)
    assert f"harden db build advisories --cache-dir {tmp_path}" in caught.value.diagnostics()


def test_db_without_metadata_is_refused(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "trivy.db").write_bytes(b"\0" * 4096)
    with pytest.raises(ScannerError, match=r"db/metadata.json missing"):
        check_db(tmp_path)


@pytest.mark.parametrize("metadata", [{"Version": 1}, {"Version": "2"}, {}, [2], {"Version": 3}])
def test_db_of_another_schema_is_refused(tmp_path: Path, metadata: object) -> None:
    with pytest.raises(ScannerError, match=r"Trivy 0\.76 reads only Version 2") as caught:
        check_db(_db(tmp_path, metadata))
    assert "harden db build" in caught.value.diagnostics()


def test_db_state_identifies_the_content(tmp_path: Path) -> None:
    cache = _db(tmp_path, {"Version": 2, "UpdatedAt": "2026-11-26T00:00:00Z"})
    first = check_db(cache)
    assert first.updated_at == "2026-11-26T00:00:00Z"
    (cache / "db" / "trivy.db").write_bytes(b"\1" * 4096)
    assert check_db(cache).digest != first.digest
