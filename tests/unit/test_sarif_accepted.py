"""GitHub alerts that agree with the gate: the SARIF for upload leaves accepted results out.

GitHub code scanning ignores SARIF ``suppressions``: a suppressed result uploaded is an open
alert. So the SARIF a run writes for upload (``results.sarif``) leaves suppressed and baselined
results out and counts them in each run's properties; ``results.full.sarif`` and
``findings.json`` keep every result. A suppression that expires brings its finding back as an
open result, with the fingerprint it had in the full record.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.catalog import load_catalog
from hardening.findings import Finding, Severity
from hardening.gate import write_baseline
from hardening.report.registry import ReportFormat
from hardening.report.sarif import dumps, findings_from_sarif
from hardening.report.sarif.build import LEFT_OUT_NOTE
from hardening.report.sarif.results import BASELINE_JUSTIFICATION
from hardening.run.report import plan_report, report_scan
from hardening.scan.interface import ScanOptions, ScanTarget
from hardening.scan.service import write_scan_record
from tests.unit.fakerun import GOLDEN, IMAGE_ID, IMAGE_TAR, TODAY, FakeScanner, golden_repo_copy
from tests.unit.test_sarif import ALL_TOOLS, _findings, build, golden_findings, results, run_of, vuln


def _by_fingerprint(doc: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each result by its run's tool and its fingerprint (unique within a run)."""
    found = {
        (run["tool"]["driver"]["name"], r["partialFingerprints"]["primaryLocationLineHash"]): r
        for run in doc["runs"]
        for r in run["results"]
    }
    assert len(found) == len(list(results(doc)))
    return found


def _without_suppressions(result: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key not in ("suppressions", "ruleIndex")}


def _accepted_findings() -> tuple[list[Finding], frozenset[tuple[str, ...]]]:
    """The golden findings (one suppressed) plus two open CVEs, one of them baselined."""
    baselined = vuln("CVE-2024-0002", Severity.HIGH, package="libc6", installed_version="2.36-9")
    findings = [*golden_findings(), baselined, vuln("CVE-2024-0003", Severity.MEDIUM)]
    return findings, frozenset({baselined.key})


def test_upload_log_leaves_accepted_results_out_and_counts_them() -> None:
    findings, baseline = _accepted_findings()
    assert sum(f.suppressed_by is not None for f in findings) == 1
    upload = build(findings, baseline=baseline, leave_out_accepted=True)
    full = build(findings, baseline=baseline)
    assert len(list(results(full))) == len(findings)
    assert len(list(results(upload))) == len(findings) - 2
    assert not any("suppressions" in r for r in results(upload))
    assert "CVE-2024-0002" not in {r["ruleId"] for r in results(upload)}
    # the policy run had nothing accepted: nothing said, as before
    assert "properties" not in run_of(upload, "hardening")
    assert run_of(upload, "Trivy")["properties"] == {
        "acceptedResultsLeftOut": {"suppressed": 1, "baselined": 1},
        "acceptedResultsNote": LEFT_OUT_NOTE,
    }
    assert "GitHub code scanning ignores SARIF suppressions" in LEFT_OUT_NOTE
    # rules only for what is reported: a rule without results would show nothing in GitHub
    upload_rules = {rule["id"] for run in upload["runs"] for rule in run["tool"]["driver"]["rules"]}
    assert upload_rules == {r["ruleId"] for r in results(upload)}


def test_full_log_marks_both_kinds_of_acceptance() -> None:
    findings, baseline = _accepted_findings()
    full = build(findings, baseline=baseline)
    marked = {r["ruleId"]: r["suppressions"] for r in results(full) if "suppressions" in r}
    suppressed = next(f for f in findings if f.suppressed_by is not None)
    assert marked == {
        suppressed.rule_id: [{"kind": "external", "justification": suppressed.suppressed_by}],
        "CVE-2024-0002": [{"kind": "external", "justification": BASELINE_JUSTIFICATION}],
    }
    assert all("properties" not in run for run in full["runs"])
    # read back, the baselined result is an accepted one too
    read = {f.rule_id: f.suppressed_by for f in findings_from_sarif(json.loads(dumps(full)))}
    assert read["CVE-2024-0002"] == BASELINE_JUSTIFICATION


def test_results_kept_are_the_full_logs_results_with_the_same_fingerprints() -> None:
    findings, baseline = _accepted_findings()
    upload = _by_fingerprint(build(findings, baseline=baseline, leave_out_accepted=True))
    full = _by_fingerprint(build(findings, baseline=baseline))
    assert set(upload) < set(full)
    for fingerprint, result in upload.items():
        assert _without_suppressions(result) == _without_suppressions(full[fingerprint])
    left_out = {fp for fp, r in full.items() if "suppressions" in r}
    assert set(full) - set(upload) == left_out


def test_without_accepted_findings_both_logs_are_the_same_bytes() -> None:
    findings = [f for f in golden_findings() if f.suppressed_by is None]
    assert dumps(build(findings, leave_out_accepted=True)) == dumps(build(findings))
    # a baseline that accepts nothing present changes nothing either
    other = frozenset({("scanner", "CVE-1999-0001", "x", "1", "")})
    assert dumps(build(findings, baseline=other, leave_out_accepted=True)) == dumps(build(findings))


def test_leaving_out_never_renumbers_equal_findings() -> None:
    """Findings equal in every fingerprinted field are numbered :1, :2 … over all of them."""
    twin = vuln("CVE-2024-0009", message="first")
    findings = [twin, replace(twin, message="second"), replace(twin, message="third", suppressed_by="ok")]
    full = build(findings)
    upload = build(findings, leave_out_accepted=True)
    numbered = {
        r["message"]["text"]: r["partialFingerprints"]["primaryLocationLineHash"] for r in results(full)
    }
    assert sorted(n.rsplit(":", 1)[1] for n in numbered.values()) == ["1", "2", "3"]
    for result in results(upload):
        assert result["partialFingerprints"]["primaryLocationLineHash"] == numbered[result["message"]["text"]]


def test_truncation_counts_only_what_the_upload_log_could_hold() -> None:
    many = [vuln(f"CVE-2024-{i:04d}", Severity.LOW) for i in range(12)]
    accepted = [
        vuln(f"CVE-2023-{i:04d}", Severity.CRITICAL, suppressed_by="accepted for now") for i in range(3)
    ]
    doc = build([*many, *accepted], leave_out_accepted=True)
    assert not any(r["ruleId"].startswith("CVE-2023-") for r in results(doc))
    assert len(list(results(doc))) == 12
    assert run_of(doc, "Trivy")["properties"]["acceptedResultsLeftOut"] == {"suppressed": 3, "baselined": 0}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_findings, st.lists(st.booleans(), min_size=40, max_size=40))
def test_any_findings_keep_their_fingerprints_when_accepted_ones_are_left_out(
    findings: list[Finding], in_baseline: list[bool]
) -> None:
    baseline = frozenset(f.key for f, accepted in zip(findings, in_baseline, strict=False) if accepted)
    full = build(findings, baseline=baseline, tools=ALL_TOOLS)
    upload = build(findings, baseline=baseline, leave_out_accepted=True, tools=ALL_TOOLS)
    full_results = _by_fingerprint(full)
    for fingerprint, result in _by_fingerprint(upload).items():
        assert _without_suppressions(result) == _without_suppressions(full_results[fingerprint])
    for run in upload["runs"]:
        counted = run.get("properties", {}).get("acceptedResultsLeftOut", {"suppressed": 0, "baselined": 0})
        full_run = run_of(full, run["tool"]["driver"]["name"])
        marked = [r for r in full_run["results"] if "suppressions" in r]
        assert len(run["results"]) + sum(counted.values()) == len(full_run["results"])
        assert sum(counted.values()) == len(marked)


# --------------------------------------------------------------------------- through `harden report`


@pytest.fixture
def golden_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return golden_repo_copy(tmp_path, monkeypatch)


def _scan_dir(tmp_path: Path) -> Path:
    scan_dir = tmp_path / "scan"
    scan_dir.mkdir()
    target = ScanTarget("app", "golden/app:candidate", IMAGE_ID, tmp_path / "image.tar")
    target.tar_path.write_bytes(IMAGE_TAR)
    options = ScanOptions(cache_dir=None, timeout=60)
    result = FakeScanner().scan(target, options)
    write_scan_record(scan_dir / "scan.json", "app", target.ref, IMAGE_ID, result, options, scanner="trivy")
    shutil.copy(GOLDEN / "run" / "check.json", scan_dir / "check.json")
    return scan_dir


def _report(root: Path, scan_dir: Path, out: Path, today: date) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    catalog = load_catalog(root / "hardening.toml")
    outputs = {
        ReportFormat.SARIF: out / "app.sarif",
        ReportFormat.SARIF_FULL: out / "app.full.sarif",
        ReportFormat.JSON: out / "app.json",
    }
    plan = plan_report(catalog, "app", scan_dir, outputs=outputs, history_dir=None, today=today)
    outcome = report_scan(plan)
    upload = json.loads((out / "app.sarif").read_text(encoding="utf-8"))
    full = json.loads((out / "app.full.sarif").read_text(encoding="utf-8"))
    return outcome.decision, upload, full


def _open_alerts(doc: Mapping[str, Any]) -> dict[str, str]:
    """What GitHub would show as open: every result, suppressions or not (it ignores them)."""
    return {r["partialFingerprints"]["primaryLocationLineHash"]: r["ruleId"] for r in results(doc)}


def test_an_expired_suppression_brings_its_finding_back_as_an_open_alert(
    golden_repo: Path, tmp_path: Path
) -> None:
    scan_dir = _scan_dir(tmp_path)
    expires = date(2099, 12, 31)  # policies/suppressions.yaml of the golden repository
    decision, upload, full = _report(golden_repo, scan_dir, tmp_path / "before", TODAY)
    assert decision.suppressed == 1
    (suppressed,) = [r for r in results(full) if "suppressions" in r]
    assert suppressed["ruleId"] == "CVE-2025-47273"
    fingerprint = suppressed["partialFingerprints"]["primaryLocationLineHash"]
    assert fingerprint not in _open_alerts(upload)
    assert len(_open_alerts(upload)) == len(_open_alerts(full)) - 1
    # the complete JSON record keeps it, marked
    record = json.loads((tmp_path / "before" / "app.json").read_text(encoding="utf-8"))
    assert record["counts"]["suppressed"] == 1

    # the suppression still holds on the day it names
    decision, upload, _full = _report(golden_repo, scan_dir, tmp_path / "last-day", expires)
    assert fingerprint not in _open_alerts(upload)

    after = expires + timedelta(days=1)
    decision, upload, full = _report(golden_repo, scan_dir, tmp_path / "after", after)
    assert decision.suppressed == 0
    assert any("expired on 2099-12-31" in reason for reason in decision.reasons)
    assert _open_alerts(upload)[fingerprint] == "CVE-2025-47273"
    assert _open_alerts(upload) == _open_alerts(full)
    back = next(
        r for r in results(upload) if r["partialFingerprints"]["primaryLocationLineHash"] == fingerprint
    )
    assert "suppressions" not in back
    # Nothing left out: no run says so (a scanner's run still names its vulnerability DB).
    assert all("acceptedResultsLeftOut" not in run.get("properties", {}) for run in upload["runs"])


def test_baselined_findings_are_not_alerts_either(golden_repo: Path, tmp_path: Path) -> None:
    scan_dir = _scan_dir(tmp_path)
    _decision, upload, full = _report(golden_repo, scan_dir, tmp_path / "first", TODAY)
    accepted = [f for f in findings_from_sarif(full) if f.rule_id == "CVE-2024-0005"]
    assert accepted
    write_baseline(golden_repo / "scans" / "baselines" / "app.json", "app", accepted)
    decision, upload, full = _report(golden_repo, scan_dir, tmp_path / "second", TODAY)
    assert decision.baselined == len(accepted)
    assert "CVE-2024-0005" not in set(_open_alerts(upload).values())
    assert "CVE-2024-0005" in set(_open_alerts(full).values())
    left_out = run_of(upload, "Trivy")["properties"]["acceptedResultsLeftOut"]
    assert left_out == {"suppressed": decision.suppressed, "baselined": decision.baselined}
    # GitHub's open alerts are what the gate counts, policy findings included
    scanner_alerts = sum(
        1 for run in upload["runs"] if run["tool"]["driver"]["name"] == "Trivy" for _ in run["results"]
    )
    assert scanner_alerts == sum(
        1
        for f in decision.findings
        if f.tool == "Trivy" and f.suppressed_by is None and f.key not in plan_baseline(golden_repo)
    )


def plan_baseline(root: Path) -> frozenset[tuple[str, ...]]:
    doc = json.loads((root / "scans" / "baselines" / "app.json").read_text(encoding="utf-8"))
    return frozenset(tuple(key) for key in doc["accepted"])
