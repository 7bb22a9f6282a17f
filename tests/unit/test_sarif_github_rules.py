"""The checker of GitHub's SARIF upload rules catches what the JSON schema lets through."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.github_rules import category_of, check_github_rules
from hardening.report.sarif import ToolInfo, build_sarif


def _doc() -> dict[str, Any]:
    findings = [
        Finding(
            Origin.SCANNER,
            "CVE-2024-1",
            Severity.HIGH,
            "bad",
            "img",
            package="p",
            location=SourceLocation("Dockerfile", 2),
        )
    ]
    return build_sarif(
        "img",
        findings,
        tools={Origin.SCANNER: ToolInfo("Trivy", "0.76.0", "https://github.com/aquasecurity/trivy")},
        fallback_location=SourceLocation("Dockerfile"),
    )


def _result(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["runs"][0]["results"][0]
    return result


def _rule(doc: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = doc["runs"][0]["tool"]["driver"]["rules"][0]
    return rule


def test_our_output_is_clean() -> None:
    assert check_github_rules(_doc()) == []


BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no fingerprint": (lambda d: _result(d).pop("partialFingerprints"), "primaryLocationLineHash"),
    "no location": (lambda d: _result(d).update(locations=[]), "at least one location"),
    "absolute uri": (
        lambda d: _result(d)["locations"][0]["physicalLocation"]["artifactLocation"].update(
            uri="file:///src/Dockerfile"
        ),
        "not relative",
    ),
    "no start line": (
        lambda d: _result(d)["locations"][0]["physicalLocation"].pop("region"),
        "startLine",
    ),
    "undeclared rule": (lambda d: _result(d).update(ruleId="CVE-9", ruleIndex=0), "not declared"),
    "wrong rule index": (lambda d: _result(d).update(ruleIndex=3), "not an index"),
    "empty message": (lambda d: _result(d).update(message={"text": ""}), "message.text"),
    "severity not a string": (
        lambda d: _rule(d)["properties"].update({"security-severity": 7.5}),
        "must be a string",
    ),
    "severity out of range": (
        lambda d: _rule(d)["properties"].update({"security-severity": "11"}),
        "outside",
    ),
    "severity without security tag": (
        lambda d: _rule(d)["properties"].update(tags=["vulnerability"]),
        "tagged 'security'",
    ),
    "long name": (lambda d: _rule(d).update(name="N" * 256), "255"),
    "no help": (lambda d: _rule(d).pop("help"), "help.text"),
    "duplicate run": (lambda d: d["runs"].append(copy.deepcopy(d["runs"][0])), "same tool"),
    "too many runs": (
        lambda d: d["runs"].extend(copy.deepcopy(d["runs"][0]) for _ in range(20)),
        "at most 20",
    ),
    "no driver name": (lambda d: d["runs"][0]["tool"]["driver"].update(name=""), "driver.name"),
    "too many tags": (lambda d: _rule(d)["properties"].update(tags=["security"] * 21), "more than 20"),
    "bad level": (lambda d: _result(d).update(level="fatal"), "level"),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_each_breakage_is_reported(name: str) -> None:
    doc = _doc()
    breakage, expected = BREAKAGES[name]
    breakage(doc)
    problems = check_github_rules(doc)
    assert any(expected in str(p) for p in problems), [str(p) for p in problems]


def test_same_tool_in_different_categories_is_fine() -> None:
    doc = _doc()
    other = copy.deepcopy(doc["runs"][0])
    other["automationDetails"]["id"] = "hardening/other/"
    doc["runs"].append(other)
    assert check_github_rules(doc) == []


@pytest.mark.parametrize(
    ("automation_id", "category"),
    [("a/tool1/2022-01-02", "a/tool1"), ("a/tool1/", "a/tool1"), ("my analysis", "")],
)
def test_category_of_follows_githubs_reading(automation_id: str, category: str) -> None:
    assert category_of(automation_id) == category


def test_not_an_object() -> None:
    assert [str(p) for p in check_github_rules([])] == ["$: a SARIF log must be a JSON object"]
