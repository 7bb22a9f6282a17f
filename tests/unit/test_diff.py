from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardening.diff import diff_findings, diff_json, diff_markdown, load_findings
from hardening.errors import ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.jsonreport import build_report, write_report
from hardening.report.sarif import ToolInfo, build_sarif


def vuln(rule: str, severity: Severity, version: str = "1.0") -> Finding:
    return Finding(
        Origin.SCANNER,
        rule,
        severity,
        f"{rule}",
        "demo",
        package="libfoo",
        installed_version=version,
        fixed_version="2.0",
        image_path="/var/lib/dpkg/status",
    )


OLD = [vuln("CVE-1", Severity.CRITICAL), vuln("CVE-2", Severity.HIGH), vuln("CVE-3", Severity.LOW)]
NEW = [vuln("CVE-3", Severity.LOW), vuln("CVE-4", Severity.MEDIUM)]


def test_diff_counts_per_severity() -> None:
    result = diff_findings(OLD, NEW)
    counts = result.counts()
    assert counts["fixed"]["total"] == 2 and counts["fixed"]["critical"] == 1 and counts["fixed"]["high"] == 1
    assert counts["new"] == {"critical": 0, "high": 0, "medium": 1, "low": 0, "unknown": 0, "total": 1}
    assert [f.rule_id for f in result.unchanged] == ["CVE-3"]


def test_diff_ignores_line_numbers_and_locations() -> None:
    moved = [
        Finding(**{**f.__dict__, "location": SourceLocation("dockerfiles/demo/Dockerfile", 9)}) for f in OLD
    ]
    assert diff_findings(OLD, moved).counts()["unchanged"]["total"] == 3


def test_markdown_and_json() -> None:
    result = diff_findings(OLD, NEW)
    text = diff_markdown(result, "a", "b")
    assert "This rebuild fixed **2** findings, introduced **1** and kept **1**." in text
    assert "| fixed | 1 | 1 | 0 | 0 | 0 | 2 |" in text
    doc = diff_json(result, "a", "b")
    assert doc["counts"]["fixed"]["total"] == 2
    assert [f["rule_id"] for f in doc["new_findings"]] == ["CVE-4"]


def test_load_from_run_directories_and_sarif(tmp_path: Path) -> None:
    old_run = tmp_path / "old"
    write_report(old_run / "demo" / "findings.json", build_report("demo", OLD))
    sarif = build_sarif(
        "demo",
        NEW,
        tools={Origin.SCANNER: ToolInfo("Trivy", "0.76.0", "https://trivy.dev")},
        fallback_location=SourceLocation("dockerfiles/demo/Dockerfile", 1),
    )
    new_sarif = tmp_path / "new.sarif"
    new_sarif.write_text(json.dumps(sarif))
    result = diff_findings(load_findings(old_run), load_findings(new_sarif))
    assert {f.rule_id for f in result.fixed} == {"CVE-1", "CVE-2"}
    assert {f.rule_id for f in result.new} == {"CVE-4"}


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="no such file"):
        load_findings(tmp_path / "missing.sarif")
    with pytest.raises(ReportInputError, match="run directory"):
        load_findings(tmp_path)
    garbage = tmp_path / "x.json"
    garbage.write_text("{not json")
    with pytest.raises(ReportInputError, match=r"x\.json:1: the file is not valid JSON"):
        load_findings(garbage)
