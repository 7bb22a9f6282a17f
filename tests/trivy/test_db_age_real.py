"""The gate's max_db_age with the real engine, the real Trivy and DBs `harden db build` made.

A DB built from an advisory last modified in 2024 is that old, whenever it was built: `harden
scan`, `run` and `report` refuse it (exit 3) under the gate's 2 days, before anything is saved,
built or written. Lifted on the command line, the scan goes ahead and its record, SARIF and
summary say how old the data was. A DB whose newest advisory was modified today passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.db.build import build_db
from tests.conftest import REPO_ROOT
from tests.reliability.harness import GATE, assert_fails_closed, harden, make_repo

pytestmark = [pytest.mark.trivy, pytest.mark.docker]

OLD_ADVISORY = REPO_ROOT / "advisories" / "GHSA-mq26-g339-26xf.json"  # modified 2024-05-03T03:30:46Z


@pytest.fixture(scope="module")
def old_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = tmp_path_factory.mktemp("old-advisories")
    shutil.copy(OLD_ADVISORY, inputs)
    cache = tmp_path_factory.mktemp("old-db")
    build_db([inputs], cache)  # built now; its data is from 2024
    return cache


@pytest.fixture(scope="module")
def fresh_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = tmp_path_factory.mktemp("fresh-advisories")
    record = json.loads(OLD_ADVISORY.read_text())
    record["modified"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (inputs / OLD_ADVISORY.name).write_text(json.dumps(record))
    cache = tmp_path_factory.mktemp("fresh-db")
    build_db([inputs], cache)
    return cache


@pytest.fixture
def repo(tmp_path: Path, base_image: str) -> Iterator[Path]:
    repository = f"hardening-test/db-age-{uuid.uuid4().hex[:8]}"
    catalog = make_repo(tmp_path / "repo", gate=GATE + "max_db_age: 2d\n", repository=repository)
    yield catalog
    for tag in ("candidate", "1"):
        subprocess.run(
            ["docker", "image", "rm", "--force", f"{repository}:{tag}"], capture_output=True, timeout=120
        )


def _cache_copy(db: Path, tmp_path: Path) -> str:
    """A private copy: the scan result cache lands beside the DB."""
    copy = tmp_path / f"cache-{db.name}"
    shutil.copytree(db, copy)
    return str(copy)


def test_scan_and_report_refuse_old_data_and_say_how_old_it_is_when_lifted(
    repo: Path, old_db: Path, base_image: str, tmp_path: Path
) -> None:
    cache = _cache_copy(old_db, tmp_path)
    refused_dir = tmp_path / "refused"
    refused = harden(repo, "scan", "--image", base_image, "--out", str(refused_dir), "--cache-dir", cache)
    words = (
        "days old (updated 2024-05-03T03:30:46Z)",
        "max_db_age 2d, policies/gate.yaml:6",
        "harden db pull",
    )
    assert_fails_closed(refused, 3, words, refused_dir)
    assert not refused_dir.exists()

    scan_dir = tmp_path / "scan"
    args = ("scan", "--image", base_image, "--out", str(scan_dir), "--cache-dir", cache)
    lifted = harden(repo, *args, "--max-db-age", "none")
    assert lifted.code == 0, lifted.output
    assert "days old)" in lifted.stdout
    record = json.loads((scan_dir / "scan.json").read_text())
    db = record["tool"]["db"]
    assert db["source"] == "built" and db["updated_at"] == "2024-05-03T03:30:46Z"
    assert db["age_seconds"] > 365 * 86400
    (described,) = db["inputs"]
    assert described.startswith("1 OSV records from ") and described.endswith("(newest 2024-05-03T03:30:46Z)")
    assert record["db_source"] == "built" and record["db_inputs"] == db["inputs"]

    out = tmp_path / "out"
    report = ("report", "demo", "--scan-dir", str(scan_dir), "--sarif", str(out / "demo.sarif"))
    refused = harden(repo, *report, "--markdown", str(out / "summary.md"))
    assert_fails_closed(refused, 3, ("days old", "harden db pull"), out)
    assert not out.exists()
    reported = harden(repo, *report, "--markdown", str(out / "summary.md"), "--max-db-age", "none")
    assert reported.code == 0, reported.output
    summary = (out / "summary.md").read_text()
    assert "the DB built from 1 input, no upstream DB; data updated 2024-05-03T03:30:46Z, **" in summary
    assert "**No limit on the data's age applied** (no limit, lifted by --max-db-age none)" in summary
    sarif = json.loads((out / "demo.sarif").read_text())
    properties = sarif["runs"][1]["properties"]["vulnerabilityDatabase"]
    assert properties["source"] == "built" and properties["ageSecondsAtScan"] == db["age_seconds"]


def test_run_refuses_old_data_before_building_and_passes_fresh_data(
    repo: Path, old_db: Path, fresh_db: Path, tmp_path: Path
) -> None:
    scans = repo.parent / "scans"
    refused = harden(repo, "run", "--cache-dir", _cache_copy(old_db, tmp_path))
    assert_fails_closed(refused, 3, ("days old (updated 2024-05-03T03:30:46Z)", "run harden db pull"), scans)
    assert not (scans / "runs").exists()
    assert refused.stdout.strip() == ""  # nothing built, nothing to report

    passed = harden(repo, "run", "--cache-dir", _cache_copy(fresh_db, tmp_path), "--record-history")
    assert passed.code == 0, passed.output
    run_dir = Path(passed.stdout.strip().splitlines()[-1].removeprefix("reports: "))
    summary = (run_dir / "summary.md").read_text()
    assert "the DB built from 1 input, no upstream DB" in summary
    assert "Age limit: max_db_age 2d, policies/gate.yaml:6; older data stops the scan." in summary
    (line,) = (scans / "history" / "demo.jsonl").read_text().splitlines()
    history = json.loads(line)["db"]
    assert history["source"] == "built" and 0 <= history["age_seconds"] < 3600
