"""Findings as a plain JSON document, and a strict loader for it.

The JSON report is the complete record (SARIF may be truncated for GitHub's limits); the loader
is what ``harden diff`` and baselines read, so it rejects anything it does not understand and
names the file and field at fault.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from hardening.atomic import write_json
from hardening.errors import ReportInputError
from hardening.findings import Acceptance, Finding, Origin, Severity, SourceLocation, acceptance
from hardening.report._common import JsonReader, kind_of, sorted_findings
from hardening.report.interface import ImageReport, Writer
from hardening.userfile import read_user_json

SCHEMA_VERSION = 1

_REQUIRED_TEXT = ("rule_id", "title", "message", "image")
_OPTIONAL_TEXT = (
    "package",
    "installed_version",
    "fixed_version",
    "package_type",
    "image_path",
    "layer",
    "status",
    "primary_url",
    "description",
    "suppressed_by",
    "tool",
)
BASELINED_KEY = "baselined"  # true on a finding the image's baseline accepts; absent otherwise
_FINDING_KEYS = frozenset(
    {
        BASELINED_KEY,
        "origin",
        "severity",
        "cvss_score",
        "references",
        "location",
        "template_location",
        "properties",
        *_REQUIRED_TEXT,
        *_OPTIONAL_TEXT,
    }
)
_TOP_KEYS = frozenset({"schema_version", "image", "counts", "findings"})


def counts(
    findings: Sequence[Finding], baseline: Collection[tuple[str, ...]] = frozenset()
) -> dict[str, int]:
    """Open findings by severity, plus totals; accepted ones (suppressed, or in the image's
    baseline) are counted only as such, as the gate counts them."""
    accepted = [acceptance(f, baseline) for f in findings]
    open_findings = [f for f, why in zip(findings, accepted, strict=True) if why is None]
    result = {"total": len(findings)}
    for severity in sorted(Severity, reverse=True):
        result[severity.label] = sum(1 for f in open_findings if f.severity is severity)
    result["fixable"] = sum(1 for f in open_findings if f.fixable)
    result["suppressed"] = accepted.count(Acceptance.SUPPRESSED)
    if Acceptance.BASELINED in accepted:
        result["baselined"] = accepted.count(Acceptance.BASELINED)
    return result


def build_report(
    image: str, findings: Sequence[Finding], baseline: Collection[tuple[str, ...]] = frozenset()
) -> dict[str, Any]:
    """The report of ``findings``; those the image's ``baseline`` accepts say so (`"baselined":
    true`) and are not counted as open."""
    ordered = sorted_findings(findings)
    items = []
    for finding in ordered:
        item = finding.to_json()
        if acceptance(finding, baseline) is Acceptance.BASELINED:
            item[BASELINED_KEY] = True
        items.append(item)
    return {
        "schema_version": SCHEMA_VERSION,
        "image": image,
        "counts": counts(ordered, baseline),
        "findings": items,
    }


def dumps(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    """Write atomically; fields stay in the order ``build_report`` gives them."""
    write_json(path, report, sort_keys=False, ensure_ascii=False)


def load_report(path: Path) -> tuple[str, list[Finding]]:
    """The image and findings of a JSON report written by ``write_report``."""
    doc = read_user_json(
        path,
        error=ReportInputError,
        what="the JSON report",
        missing="no such file",
        hint="pass a report written by `harden` (scans/runs/<run>/<image>/findings.json)",
    )
    return parse_report(doc, source=path)


class _Parser(JsonReader):
    def __init__(self, source: str | Path) -> None:
        super().__init__(source, hint="regenerate the report with this version of `harden`")

    def location(self, value: Any, field: str) -> SourceLocation:
        mapping = self.obj(value, field)
        self.keys(mapping, frozenset({"path", "line"}), field)
        if "path" not in mapping:
            raise self.fail(f"{field}.path", "required")
        path = self.text(mapping["path"], f"{field}.path")
        if not path:
            raise self.fail(f"{field}.path", "must not be empty")
        return SourceLocation(path, self.integer(mapping.get("line", 1), f"{field}.line", 1))

    def finding(self, value: Any, field: str) -> Finding:
        data = self.obj(value, field)
        self.keys(data, _FINDING_KEYS, field)
        if BASELINED_KEY in data and data[BASELINED_KEY] is not True:
            raise self.fail(f"{field}.{BASELINED_KEY}", f"expected true, found {data[BASELINED_KEY]!r}")
        for key in ("origin", "severity", *_REQUIRED_TEXT):
            if key not in data:
                raise self.fail(f"{field}.{key}", "required")
        try:
            origin = Origin(self.text(data["origin"], f"{field}.origin"))
        except ValueError:
            raise self.fail(f"{field}.origin", "expected 'policy', 'scanner' or 'archive'") from None
        try:
            severity = Severity.parse(self.text(data["severity"], f"{field}.severity"))
        except ValueError as exc:
            raise self.fail(f"{field}.severity", str(exc)) from None
        text = {key: self.text(data[key], f"{field}.{key}") for key in _REQUIRED_TEXT}
        optional = {key: self.text(data[key], f"{field}.{key}") for key in _OPTIONAL_TEXT if key in data}
        cvss = data.get("cvss_score")
        if cvss is not None and (
            not isinstance(cvss, (int, float))
            or isinstance(cvss, bool)
            or not math.isfinite(cvss)
            or not 0.0 <= cvss <= 10.0
        ):
            raise self.fail(f"{field}.cvss_score", f"expected a number 0-10, found {cvss!r}")
        references = data.get("references", [])
        if not isinstance(references, list):
            raise self.fail(f"{field}.references", f"expected an array, found {kind_of(references)}")
        refs = tuple(self.text(r, f"{field}.references[{i}]") for i, r in enumerate(references))
        properties = self.obj(data.get("properties", {}), f"{field}.properties")
        props = tuple((key, self.text(val, f"{field}.properties.{key}")) for key, val in properties.items())
        return Finding(
            origin=origin,
            severity=severity,
            rule_id=text["rule_id"],
            title=text["title"],
            message=text["message"],
            image=text["image"],
            package=optional.get("package"),
            installed_version=optional.get("installed_version"),
            fixed_version=optional.get("fixed_version"),
            package_type=optional.get("package_type"),
            image_path=optional.get("image_path"),
            layer=optional.get("layer"),
            status=optional.get("status"),
            primary_url=optional.get("primary_url"),
            description=optional.get("description", ""),
            suppressed_by=optional.get("suppressed_by"),
            cvss_score=float(cvss) if cvss is not None else None,
            references=refs,
            location=self.location(data["location"], f"{field}.location") if "location" in data else None,
            template_location=self.location(data["template_location"], f"{field}.template_location")
            if "template_location" in data
            else None,
            properties=props,
            tool=optional.get("tool"),
        )


def parse_findings(items: Any, *, source: str | Path, field: str = "findings") -> list[Finding]:
    """Validate a decoded list of findings (as ``Finding.to_json`` writes them)."""
    parser = _Parser(source)
    if not isinstance(items, list):
        raise parser.fail(field, f"expected an array, found {kind_of(items)}")
    return [parser.finding(item, f"{field}[{i}]") for i, item in enumerate(items)]


def parse_report(doc: Any, *, source: str | Path = "<json report>") -> tuple[str, list[Finding]]:
    """Validate a decoded JSON report; ``source`` names the file in errors."""
    parser = _Parser(source)
    top = parser.obj(doc, "$")
    parser.keys(top, _TOP_KEYS, "")
    for key in sorted(_TOP_KEYS):
        if key not in top:
            raise parser.fail(key, "required")
    version = top["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise parser.fail("schema_version", f"expected {SCHEMA_VERSION}, found {version!r}")
    image = parser.text(top["image"], "image")
    items = top["findings"]
    if not isinstance(items, list):
        raise parser.fail("findings", f"expected an array, found {kind_of(items)}")
    findings = [parser.finding(item, f"findings[{i}]") for i, item in enumerate(items)]
    declared = parser.obj(top["counts"], "counts")
    baselined = frozenset(f.key for f, item in zip(findings, items, strict=True) if BASELINED_KEY in item)
    actual = counts(findings, baselined)
    parser.keys(declared, frozenset(actual), "counts")
    for key, value in actual.items():
        if declared.get(key) != value:
            raise parser.fail(f"counts.{key}", f"says {declared.get(key)!r} but the findings give {value}")
    return image, findings


class JsonWriter(Writer):
    """The complete record of one image's findings (SARIF may be truncated; this never is)."""

    def write(self, path: Path, reports: Sequence[ImageReport]) -> None:
        (report,) = reports
        write_report(path, build_report(report.image, report.findings, report.baseline))
