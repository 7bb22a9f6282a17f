"""`harden run` end to end on the real catalog, twice, as CI runs it.

The runs write to a temporary directory (`--output-dir`), never to the repository's scans/, and
scan with a Trivy DB built from the repository's advisories/. The second run rebuilds the same
content: the same image ids, the scan served from the result cache, the same findings and the
same SARIF fingerprints, so GitHub keeps tracking the same alerts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hardening.catalog import Catalog, load_catalog
from hardening.db.build import build_db
from hardening.engine.client import Engine
from hardening.freshness import NO_LIMIT
from hardening.gate import load_gate
from hardening.report.github_rules import check_github_rules
from hardening.report.jsonreport import load_report
from hardening.report.registry import ReportFormat
from hardening.run.report import plan_report, report_scan
from hardening.scan.trivy import CACHE_SUBDIR
from tests.conftest import REPO_ROOT, SARIF_SCHEMA

pytestmark = [pytest.mark.docker, pytest.mark.trivy]

RUN_TIMEOUT = 3600.0
SARIF_TOOL = Path(sys.executable).parent / "sarif"
SARIF_LEVELS = ("error", "warning", "note")
ARCHIVE = "archive"  # the origin of pending-update findings
PENDING_RULES = "HARDEN-REBUILD-"


@dataclass(frozen=True)
class RunRecord:
    process: subprocess.CompletedProcess[str]
    run_dir: Path
    head: str
    # every entry of Trivy's result cache: name → (inode, mtime in ns, size)
    scan_cache: Mapping[str, tuple[int, int, int]]

    def image_file(self, image: str, name: str) -> Path:
        return self.run_dir / image / name

    def json(self, image: str, name: str) -> Any:
        return json.loads(self.image_file(image, name).read_text(encoding="utf-8"))

    def sarif(self, image: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.json(image, "results.sarif")
        return doc


@dataclass(frozen=True)
class TwoRuns:
    catalog: Catalog
    output_dir: Path
    cache_dir: Path
    first: RunRecord
    second: RunRecord

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.catalog.images)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"


def _head() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else "(no git)"


def _scan_cache(cache_dir: Path) -> dict[str, tuple[int, int, int]]:
    entries = {}
    for entry in sorted((cache_dir / CACHE_SUBDIR).glob("*")):
        info = entry.stat()
        entries[entry.name] = (info.st_ino, info.st_mtime_ns, info.st_size)
    return entries


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARDENING_", "GITHUB_"))}
    # The DB is built from advisories/, dated by their `modified`: older than the gate's
    # max_db_age, which tests/trivy/test_db_age_real.py holds to.
    env["HARDENING_MAX_DB_AGE"] = "none"
    return env


def _harden_run(output_dir: Path, cache_dir: Path) -> RunRecord:
    env = _env()
    harden = [sys.executable, "-m", "hardening", "--catalog", str(REPO_ROOT / "hardening.toml")]
    argv = [*harden, "--output-dir", str(output_dir), "run", "--cache-dir", str(cache_dir)]
    head = _head()
    process = subprocess.run(
        argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    found = re.search(r"^reports: (.+)$", process.stdout, re.MULTILINE)
    assert found, f"harden run reported no run directory (exit {process.returncode}):\n{_output(process)}"
    return RunRecord(process, Path(found.group(1)), head, _scan_cache(cache_dir))


@pytest.fixture(scope="module")
def runs(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """`harden run` twice on the real catalog, outputs and Trivy DB in temporary directories."""
    cache_dir = tmp_path_factory.mktemp("trivy-cache")
    build_db([REPO_ROOT / "advisories"], cache_dir)
    output_dir = tmp_path_factory.mktemp("scans")
    first = _harden_run(output_dir, cache_dir)
    second = _harden_run(output_dir, cache_dir)
    return TwoRuns(load_catalog(REPO_ROOT / "hardening.toml"), output_dir, cache_dir, first, second)


@cache
def _sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _schema_errors(doc: Mapping[str, Any]) -> list[str]:
    errors = sorted(_sarif_validator().iter_errors(doc), key=lambda error: list(error.absolute_path))
    return [f"{list(error.absolute_path)}: {error.message}" for error in errors]


def _results(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [result for run in doc["runs"] for result in run["results"]]


def _scanner_results(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The results of the Trivy run."""
    return [r for run in doc["runs"] if run["tool"]["driver"]["name"] == "Trivy" for r in run["results"]]


def _fingerprints(doc: Mapping[str, Any], *, skip_pending: bool = False) -> list[tuple[str, str]]:
    return sorted(
        (result["ruleId"], json.dumps(result["partialFingerprints"], sort_keys=True))
        for result in _results(doc)
        if not (skip_pending and result["ruleId"].startswith(PENDING_RULES))
    )


def _canonical(findings_doc: Mapping[str, Any]) -> list[str]:
    """The findings of the image's own content (the archive's offers are compared apart)."""
    return sorted(
        json.dumps(item, sort_keys=True) for item in findings_doc["findings"] if item["origin"] != ARCHIVE
    )


def _offers(findings_doc: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The updates the archive offered, without the moment they were checked."""
    return sorted(
        (item["rule_id"], item["package"] or "", item["installed_version"] or "", item["fixed_version"] or "")
        for item in findings_doc["findings"]
        if item["origin"] == ARCHIVE
    )


def _archive_state(record: RunRecord, image: str) -> list[Any]:
    """The signed Release files each update check compared against."""
    pending = record.json(image, "pending.json")
    return [check["record"].get("pockets") for check in pending["checks"]]


def _same_archive(runs: TwoRuns, image: str) -> bool:
    """The Debian archive moves on its own (a security upload between two runs is news, not a
    regression): what it offers is compared only where both runs read the same archive state."""
    return _archive_state(runs.first, image) == _archive_state(runs.second, image)


def test_every_image_passes(runs: TwoRuns) -> None:
    for record in (runs.first, runs.second):
        assert record.process.returncode == 0, _output(record.process)
        for image in runs.images:
            assert re.search(rf"^{re.escape(image)}: PASS: ", record.process.stdout, re.MULTILINE), _output(
                record.process
            )
            assert record.json(image, "gate.json")["passed"] is True


def test_outputs_stay_out_of_the_repository(runs: TwoRuns) -> None:
    for record in (runs.first, runs.second):
        assert record.run_dir.parent == runs.output_dir / "runs"
        assert not (REPO_ROOT / "scans" / "runs" / record.run_dir.name).exists()
    assert runs.first.run_dir != runs.second.run_dir


def test_sarif_is_valid_uploadable_and_readable_by_sarif_tools(runs: TwoRuns) -> None:
    for record in (runs.first, runs.second):
        for image in runs.images:
            path = record.image_file(image, "results.sarif")
            doc = record.sarif(image)
            errors = _schema_errors(doc)
            assert not errors, f"{path}:\n" + "\n".join(errors)
            problems = check_github_rules(doc)
            assert not problems, f"{path}:\n" + "\n".join(str(p) for p in problems)
            argv = [str(SARIF_TOOL), "summary", str(path)]
            summary = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
            assert summary.returncode == 0, f"sarif summary {path}:\n{summary.stdout}\n{summary.stderr}"
            for level in SARIF_LEVELS:
                expected = sum(1 for result in _results(doc) if result.get("level") == level)
                assert re.search(rf"^{level}: {expected}$", summary.stdout, re.MULTILINE), (
                    f"sarif summary of {path} does not count {expected} {level} result(s):\n{summary.stdout}"
                )


def test_github_alerts_agree_with_the_gate(runs: TwoRuns) -> None:
    """results.sarif (uploaded) leaves out what the gate accepted; results.full.sarif keeps it."""
    for image in runs.images:
        upload = runs.second.sarif(image)
        full = runs.second.json(image, "results.full.sarif")
        assert _schema_errors(full) == [] and check_github_rules(full) == []
        decision = runs.second.json(image, "gate.json")
        kept = {(r["ruleId"], r["partialFingerprints"]["primaryLocationLineHash"]) for r in _results(upload)}
        everything = {
            (r["ruleId"], r["partialFingerprints"]["primaryLocationLineHash"]) for r in _results(full)
        }
        accepted = {
            (r["ruleId"], r["partialFingerprints"]["primaryLocationLineHash"])
            for r in _results(full)
            if r.get("suppressions")
        }
        assert kept == everything - accepted, image
        assert not any(r.get("suppressions") for r in _results(upload))
        left_out = [run.get("properties", {}).get("acceptedResultsLeftOut") for run in upload["runs"]]
        suppressed = sum(counts["suppressed"] for counts in left_out if counts)
        baselined = sum(counts["baselined"] for counts in left_out if counts)
        assert (suppressed, baselined) == (decision["suppressed"], decision["baselined"]), image
    # python-secure's accepted CVE-2025-47273 is no open alert; it stays in the full record.
    upload = runs.second.sarif("python-secure")
    full = runs.second.json("python-secure", "results.full.sarif")
    assert "CVE-2025-47273" not in {r["ruleId"] for r in _results(upload)}
    assert "CVE-2025-47273" in {r["ruleId"] for r in _results(full) if r.get("suppressions")}


def test_findings_json_and_summary(runs: TwoRuns) -> None:
    for record in (runs.first, runs.second):
        summary = (record.run_dir / "summary.md").read_text(encoding="utf-8")
        for image in runs.images:
            name, findings = load_report(record.image_file(image, "findings.json"))
            assert name == image
            assert all(finding.image == image for finding in findings)
            assert f"`{image}`" in summary
            assert f"## `{image}`" in summary


def test_release_tags_point_at_the_candidates(runs: TwoRuns, engine: Engine) -> None:
    for spec in runs.catalog.images:
        image_id = runs.second.json(spec.name, "build.json")["image_id"]
        promotion = runs.second.json(spec.name, "promotion.json")
        assert promotion["image_id"] == image_id
        assert sorted(promotion["refs"]) == sorted(spec.release_refs)
        for ref in (spec.candidate_ref, *spec.release_refs):
            info = engine.image(ref)
            assert info is not None, f"{ref} does not exist"
            assert info.id == image_id, f"{ref} is {info.id}, not the candidate {image_id}"


def test_second_run_rebuilds_the_same_images_and_reuses_the_scan(runs: TwoRuns) -> None:
    assert runs.first.head == runs.second.head, "a commit landed between the two runs; run the test again"
    for image in runs.images:
        first_id = runs.first.json(image, "build.json")["image_id"]
        assert runs.second.json(image, "build.json")["image_id"] == first_id, f"{image} rebuilt differently"
        first, second = runs.first.json(image, "findings.json"), runs.second.json(image, "findings.json")
        assert _canonical(second) == _canonical(first), f"{image}: the second run found something else"
        if _same_archive(runs, image):
            assert _offers(second) == _offers(first), f"{image}: the same archive offered other updates"
    # The result cache holds one report (and SBOM) per image id; the second run only read them.
    assert runs.first.scan_cache, "the first run left nothing in Trivy's result cache"
    assert runs.second.scan_cache == runs.first.scan_cache


def test_fingerprints_are_stable_across_runs(runs: TwoRuns) -> None:
    for image in runs.images:
        moved = not _same_archive(runs, image)
        first = _fingerprints(runs.first.sarif(image), skip_pending=moved)
        second = _fingerprints(runs.second.sarif(image), skip_pending=moved)
        assert second == first, f"{image}: partialFingerprints changed between two runs of the same content"
        for result in _results(runs.second.sarif(image)):
            assert result["partialFingerprints"].get("primaryLocationLineHash"), result["ruleId"]


def test_expected_findings_on_the_shipped_images(runs: TwoRuns) -> None:
    """What the real scan of the real images finds against our advisories, and what the gate did."""
    for spec in runs.catalog.images:
        _, everything = load_report(runs.second.image_file(spec.name, "findings.json"))
        # Updates the archive published after the base was built are the gate's to judge (by how
        # long they have been pending); each names the Dockerfile line that brought the package.
        offers = [f for f in everything if f.origin.value == ARCHIVE]
        for offer in offers:
            assert offer.rule_id == "HARDEN-REBUILD-PENDING", (spec.name, offer.rule_id, offer.message)
            assert offer.location is not None and offer.location.path == spec.dockerfile.as_posix()
        # A CVE the archive has already fixed in a pending update is the same news, seen by the
        # scanner through the derived Debian advisories: explained, not unexpected.
        behind = {f.package for f in offers}
        findings = [f for f in everything if f.origin.value != ARCHIVE and f.package not in behind]
        # No policy finding at all on any image: they pass every check.
        assert not [f for f in findings if f.origin.value == "policy"], spec.name
        if spec.template.parent.name == "postgres-secure":
            assert [f for f in findings if f.suppressed_by is None] == [], spec.name
            continue
        vendored = [f for f in findings if f.rule_id == "CVE-2025-47273"]
        # pip's vendored setuptools record (70.3.0) is reported and suppressed with its reason.
        assert [(f.package, f.installed_version, f.fixed_version) for f in vendored] == [
            ("setuptools", "70.3.0", "78.1.1")
        ], spec.name
        assert vendored[0].suppressed_by is not None and "package_index" in vendored[0].suppressed_by
        assert vendored[0].location is not None
        assert vendored[0].location.path == spec.dockerfile.as_posix()
        # Nothing else: the venv's own pip and setuptools are above every advisory we hold.
        assert {f.rule_id for f in findings if f.suppressed_by is None} == set(), spec.name


def _harden(*argv: str) -> subprocess.CompletedProcess[str]:
    env = _env()
    harden = [sys.executable, "-m", "hardening", "--catalog", str(REPO_ROOT / "hardening.toml")]
    return subprocess.run(
        [*harden, *argv], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )


def test_scan_then_report_as_the_daily_workflow_does(runs: TwoRuns, tmp_path: Path) -> None:
    """`harden scan --image` of a shipped image, then `harden report`: SARIF, summary, history, gate."""
    image_id = runs.second.json("python-secure", "build.json")["image_id"]
    scan_dir = tmp_path / "scan"
    scanned = _harden("scan", "--image", image_id, "--out", str(scan_dir), "--cache-dir", str(runs.cache_dir))
    assert scanned.returncode == 0, _output(scanned)

    def report(directory: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
        out = directory / "out"
        result = _harden(
            "report", "python-secure", "--scan-dir", str(directory), "--sarif", str(out / "p.sarif"),
            "--sarif-full", str(out / "p.full.sarif"),
            "--markdown", str(out / "summary.md"), "--json", str(out / "findings.json"),
            "--history-dir", str(out / "history"),
        )  # fmt: skip
        return result, out

    passed, out = report(scan_dir)
    assert passed.returncode == 0, _output(passed)
    doc = json.loads((out / "p.sarif").read_text())
    assert _schema_errors(doc) == [] and check_github_rules(doc) == []
    # the suppressed finding is no alert: left out, counted, and kept in the full SARIF (an update
    # the archive published since the base was built is the gate's to judge, not this test's)
    assert _scanner_results(doc) == []
    (trivy_run,) = [run for run in doc["runs"] if run["tool"]["driver"]["name"] == "Trivy"]
    assert trivy_run["properties"]["acceptedResultsLeftOut"] == {"suppressed": 1, "baselined": 0}
    full = json.loads((out / "p.full.sarif").read_text())
    assert _schema_errors(full) == [] and check_github_rules(full) == []
    (result,) = _scanner_results(full)
    assert result["ruleId"] == "CVE-2025-47273" and result["suppressions"]

    fingerprint = result["partialFingerprints"]["primaryLocationLineHash"]
    assert "`python-secure`" in (out / "summary.md").read_text()
    (line,) = (out / "history" / "python-secure.jsonl").read_text().splitlines()
    assert json.loads(line)["gate"] == "pass" and json.loads(line)["digest"] == image_id

    # The same advisory on a version the suppression does not name: the gate fails (exit 1),
    # and every output is still written, showing the finding open.
    record = json.loads((scan_dir / "scan.json").read_text())
    record["findings"][0]["installed_version"] = "70.2.0"
    failing_dir = tmp_path / "failing"
    failing_dir.mkdir()
    (failing_dir / "scan.json").write_text(json.dumps(record))
    failed, out = report(failing_dir)
    assert failed.returncode == 1, _output(failed)
    assert "CVE-2025-47273 in setuptools 70.2.0" in failed.stdout
    (result,) = _scanner_results(json.loads((out / "p.sarif").read_text()))
    assert "suppressions" not in result
    (line,) = (out / "history" / "python-secure.jsonl").read_text().splitlines()
    assert json.loads(line)["gate"] == "fail" and json.loads(line)["counts"]["high"] == 1

    # The day after the suppression expires (the gate's today, injected), the real finding is
    # an open alert again, under the fingerprint it had in the full record.
    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    (suppression,) = [
        s for s in load_gate(catalog.gate, catalog.root).suppressions if s.id == "CVE-2025-47273"
    ]
    expired = tmp_path / "expired"
    plan = plan_report(
        catalog,
        "python-secure",
        scan_dir,
        outputs={ReportFormat.SARIF: expired / "p.sarif"},
        history_dir=None,
        today=suppression.expires + timedelta(days=1),
        max_db_age=NO_LIMIT,  # the DB of advisories/ is older than the gate allows, as in _env()
    )
    outcome = report_scan(plan)
    assert not outcome.decision.passed and outcome.decision.suppressed == 0
    (result,) = _scanner_results(json.loads((expired / "p.sarif").read_text()))
    assert result["ruleId"] == "CVE-2025-47273" and "suppressions" not in result
    assert result["partialFingerprints"]["primaryLocationLineHash"] == fingerprint
