"""The JSON report: round trip, atomic write and a strict loader that names file and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hardening.errors import ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.jsonreport import (
    SCHEMA_VERSION,
    build_report,
    load_report,
    parse_report,
    write_report,
)

GOLDEN = Path(__file__).parents[2] / "tests" / "golden"


def golden_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GOLDEN / "findings.json").read_text(encoding="utf-8"))
    return doc


def test_golden_findings_round_trip_to_the_same_content() -> None:
    image, findings = load_report(GOLDEN / "findings.json")
    rebuilt = build_report(image, findings)
    assert rebuilt["schema_version"] == SCHEMA_VERSION
    assert rebuilt["counts"] == golden_doc()["counts"]
    assert sorted(rebuilt["findings"], key=json.dumps) == sorted(golden_doc()["findings"], key=json.dumps)


def test_baselined_findings_are_marked_and_not_counted_open(tmp_path: Path) -> None:
    accepted = Finding(Origin.SCANNER, "CVE-2", Severity.HIGH, "m", "img", package="p", installed_version="1")
    other = Finding(Origin.SCANNER, "CVE-3", Severity.HIGH, "m", "img", package="p", installed_version="1")
    doc = build_report("img", [accepted, other], frozenset({accepted.key}))
    marks = {item["rule_id"]: item.get("baselined") for item in doc["findings"]}
    assert marks == {"CVE-2": True, "CVE-3": None}
    assert (doc["counts"]["high"], doc["counts"]["baselined"], doc["counts"]["suppressed"]) == (1, 1, 0)
    target = tmp_path / "findings.json"
    write_report(target, doc)
    _, loaded = load_report(target)
    assert sorted(loaded, key=repr) == sorted([accepted, other], key=repr)
    # without a baseline nothing is marked and the key is absent, as before
    assert "baselined" not in build_report("img", [accepted])["counts"]


@pytest.mark.parametrize(("mark", "problem"), [(False, "expected true"), ("yes", "expected true")])
def test_a_baselined_mark_must_be_true(mark: object, problem: str) -> None:
    finding = Finding(Origin.SCANNER, "CVE-2", Severity.HIGH, "m", "img", package="p")
    doc = build_report("img", [finding], frozenset({finding.key}))
    doc["findings"][0]["baselined"] = mark
    with pytest.raises(ReportInputError) as raised:
        parse_report(doc, source="f.json")
    assert "findings[0].baselined" in str(raised.value.diagnostics()) and problem in str(
        raised.value.diagnostics()
    )


def test_counts_that_disagree_with_the_baselined_marks_are_refused() -> None:
    finding = Finding(Origin.SCANNER, "CVE-2", Severity.HIGH, "m", "img", package="p")
    doc = build_report("img", [finding], frozenset({finding.key}))
    del doc["findings"][0]["baselined"]  # the counts still say one baselined, none open
    with pytest.raises(ReportInputError, match="counts"):
        parse_report(doc, source="f.json")


def test_write_then_load(tmp_path: Path) -> None:
    findings = [
        Finding(
            Origin.SCANNER,
            "CVE-1",
            Severity.LOW,
            "m",
            "img:tag",
            package="p",
            cvss_score=3.1,
            references=("https://a",),
            properties=(("k", "v"),),
            location=SourceLocation("Dockerfile", 2),
        ),
        Finding(Origin.POLICY, "non-root", Severity.HIGH, "root", "img:tag", suppressed_by="accepted"),
    ]
    target = tmp_path / "reports" / "img.json"
    write_report(target, build_report("img:tag", findings))
    image, loaded = load_report(target)
    assert image == "img:tag"
    assert sorted(loaded, key=repr) == sorted(findings, key=repr)
    assert [p.name for p in target.parent.iterdir()] == ["img.json"]
    counts = json.loads(target.read_text(encoding="utf-8"))["counts"]
    assert counts == {
        "total": 2,
        "critical": 0,
        "high": 0,
        "medium": 0,
        "low": 1,
        "unknown": 0,
        "fixable": 0,
        "suppressed": 1,
    }


def test_report_is_independent_of_input_order() -> None:
    _, findings = load_report(GOLDEN / "findings.json")
    assert build_report("x", findings) == build_report("x", list(reversed(findings)))


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("findings", 0, "severity"), "severe", "findings[0].severity"),
        (("findings", 1, "origin"), "human", "findings[1].origin"),
        (("findings", 2, "message"), 3, "findings[2].message"),
        (("findings", 0, "cvss_score"), 42, "findings[0].cvss_score"),
        (("findings", 0, "location", "line"), 0, "findings[0].location.line"),
        (("findings", 0, "surprise"), "x", "findings[0].surprise"),
        (("findings", 0, "references"), "https://a", "findings[0].references"),
        (("counts", "high"), 99, "counts.high"),
        (("schema_version",), 2, "schema_version"),
        (("findings",), {}, "findings"),
    ],
)
def test_loader_names_file_and_field(tmp_path: Path, path: tuple[Any, ...], value: Any, field: str) -> None:
    doc = golden_doc()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    report = tmp_path / "bad.json"
    report.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportInputError) as info:
        load_report(report)
    assert info.value.location is not None
    assert info.value.location.path == report
    assert info.value.location.field == field


def test_missing_required_field() -> None:
    doc = golden_doc()
    del doc["findings"][3]["rule_id"]
    with pytest.raises(ReportInputError, match="required") as info:
        parse_report(doc, source="r.json")
    assert str(info.value.location) == "r.json: findings[3].rule_id"


def test_unreadable_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError) as info:
        load_report(tmp_path / "absent.json")
    assert info.value.location is not None
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "schema_version": 1,\n  oops\n}', encoding="utf-8")
    with pytest.raises(ReportInputError) as info:
        load_report(bad)
    assert info.value.location is not None
    assert info.value.location.line == 3
