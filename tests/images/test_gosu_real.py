"""The gosu claim, measured: Debian's gosu binary, installed the way the official postgres image
installs gosu (a downloaded binary in /usr/local/bin that no package manager owns), scanned by the
real Trivy against a DB built from the Go vulnerability database's export.

The expectation is computed here, independently of our converter: the Go version is read from the
binary's own build information, and the records are those of the export whose ``stdlib`` SEMVER
ranges contain that version.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hardening.db.build import build_db
from hardening.scan.trivy import OFFLINE_FLAGS

pytestmark = [pytest.mark.docker, pytest.mark.trivy]

REPO = Path(__file__).resolve().parents[2]
GO_EXPORT = REPO / "advisories" / "upstream" / "Go.zip"
TRIVY = Path(sys.executable).parent / "trivy"
BUILDINFO_MAGIC = b"\xff Go buildinf:"
RENAMED = "/usr/local/bin/docker-entrypoint-helper"

# Stage one fetches Debian bookworm's gosu .deb from the mirror in the base image's apt sources
# (the machine's) and unpacks it; the image gets only the binary, as the official image does.
DOCKERFILE = f"""\
FROM {{base}} AS fetch
WORKDIR /fetch
RUN apt-get update -q && apt-get download gosu && dpkg-deb -x gosu_*.deb /fetch/root
FROM {{base}}
COPY --from=fetch /fetch/root/usr/sbin/gosu /usr/local/bin/gosu
COPY --from=fetch /fetch/root/usr/sbin/gosu {RENAMED}
"""


def docker(*args: str, stdin: str | None = None, timeout: float = 900) -> str:
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"docker {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def naive_image(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tag = f"hardening-test/gosu-naive:{uuid.uuid4().hex[:12]}"
    context = tmp_path_factory.mktemp("gosu-context")
    docker(
        "build",
        "--quiet",
        "--tag",
        tag,
        "--file",
        "-",
        str(context),
        stdin=DOCKERFILE.format(base=base_image),
    )
    try:
        yield tag
    finally:
        subprocess.run(
            ["docker", "image", "rm", "--force", tag], capture_output=True, check=False, timeout=120
        )


@pytest.fixture(scope="module")
def go_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("go-db") / "cache"
    build_db([GO_EXPORT], cache, now=datetime.now(UTC))
    return cache


def go_version(binary: bytes) -> str:
    """The toolchain version in a Go (>= 1.18) binary's build information, e.g. ``1.19.8``."""
    start = binary.index(BUILDINFO_MAGIC)
    assert binary[start + 15] & 2, "build info strings are not inline (Go older than 1.18?)"
    offset, length, shift = start + 32, 0, 0
    while True:
        byte = binary[offset]
        offset += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    text = binary[offset : offset + length].decode()
    assert text.startswith("go"), text
    return text[2:]


def _semver(text: str) -> tuple[tuple[int, ...], int, tuple[Any, ...]]:
    core, _, pre = text.partition("-")
    parts = tuple(int(p) for p in core.split("."))
    ident = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return parts, 0 if pre else 1, ident


def expected_stdlib_ids(export: Path, version: str) -> set[str]:
    """The ids Trivy should report: CVE aliases (or the record id) of the affecting records."""
    target = _semver(version)
    found: set[str] = set()
    with zipfile.ZipFile(export) as archive:
        for member in archive.namelist():
            record = json.loads(archive.read(member))
            if record.get("withdrawn"):
                continue
            for affected in record["affected"]:
                if affected["package"]["name"] != "stdlib":
                    continue
                for span in affected.get("ranges", []):
                    assert span["type"] == "SEMVER"
                    inside = False
                    for event in span["events"]:
                        if "introduced" in event:
                            inside = event["introduced"] == "0" or _semver(event["introduced"]) <= target
                        elif "fixed" in event and inside:
                            if target < _semver(event["fixed"]):
                                break
                            inside = False
                    if inside:
                        cves = [i for i in [record["id"], *record.get("aliases", [])] if i.startswith("CVE-")]
                        found.update(cves or [record["id"]])
    return found


def scan_image(tag: str, cache: Path, tmp_path: Path) -> dict[str, Any]:
    archive = tmp_path / "image.tar"
    docker("save", "--output", str(archive), tag)
    result = subprocess.run(
        [str(TRIVY), "image", "--input", str(archive), "--cache-dir", str(cache), *OFFLINE_FLAGS,
         "--scanners", "vuln", "--format", "json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_trivy_reports_the_go_standard_librarys_advisories_for_gosu_even_renamed(
    naive_image: str, go_db: Path, tmp_path: Path
) -> None:
    container = docker("create", naive_image, "/usr/local/bin/gosu").strip()
    try:
        docker("cp", f"{container}:/usr/local/bin/gosu", str(tmp_path / "gosu"))
    finally:
        docker("rm", container)
    version = go_version((tmp_path / "gosu").read_bytes())
    expected = expected_stdlib_ids(GO_EXPORT, version)
    assert re.fullmatch(r"1\.\d+\.\d+", version), version
    assert expected, f"no stdlib record of the export affects Go {version}"

    report = scan_image(naive_image, go_db, tmp_path)
    by_target: dict[str, set[str]] = {}
    for result in report.get("Results", []):
        for vuln in result.get("Vulnerabilities") or []:
            if vuln["PkgName"] == "stdlib":
                assert vuln["InstalledVersion"] == f"v{version}"
                assert vuln["DataSource"]["ID"] == "govulndb"
                by_target.setdefault(result["Target"], set()).add(vuln["VulnerabilityID"])
    assert set(by_target) == {"usr/local/bin/gosu", RENAMED.lstrip("/")}
    for target, ids in by_target.items():
        assert ids == expected, f"{target}: {len(ids)} reported, {len(expected)} expected"
    print(f"gosu: Go {version}, {len(expected)} standard-library advisories reported per copy")
