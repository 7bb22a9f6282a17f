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
