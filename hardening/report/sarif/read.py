"""SARIF back into findings, for ``harden diff``: ours, or another scanner's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report._common import JsonReader
from hardening.report.sarif.text import unescape_message
from hardening.report.sarif.vocabulary import SARIF_VERSION, TEMPLATE_SUFFIX

_SEVERITY_OF_LEVEL: Mapping[str, Severity] = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.UNKNOWN,
}


def _severity_from_score(score: float) -> Severity:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.UNKNOWN


def _read_location(reader: JsonReader, value: Any, field: str) -> SourceLocation:
    location = reader.obj(value, field)
    physical = reader.obj(location.get("physicalLocation"), f"{field}.physicalLocation")
    artifact = reader.obj(physical.get("artifactLocation"), f"{field}.physicalLocation.artifactLocation")
    uri = reader.text(artifact.get("uri"), f"{field}.physicalLocation.artifactLocation.uri")
    region = physical.get("region", {})
    reader.obj(region, f"{field}.physicalLocation.region")
    line = region.get("startLine", 1)
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        raise reader.fail(f"{field}.physicalLocation.region.startLine", "expected a line >= 1")
    end = region.get("endLine")
    if end is not None and (not isinstance(end, int) or isinstance(end, bool) or end < line):
        raise reader.fail(f"{field}.physicalLocation.region.endLine", "expected a line >= start")
    return SourceLocation(unquote(uri), line, end)


def findings_from_sarif(doc: Mapping[str, Any], *, source: str | Path = "<sarif>") -> list[Finding]:
    """Findings back from a SARIF log (ours, or another scanner's), for ``harden diff``.

    ``source`` names the file in errors. Fields our writer adds (origin, severity, image,
    package data in result properties) are used when present; for other producers severity
    comes from the rule's ``security-severity`` or else the result level.
    """
    reader = JsonReader(source, hint="pass a SARIF 2.1.0 file as written by `harden` or by Trivy")
    log = reader.obj(doc, "$")
    if log.get("version") != SARIF_VERSION:
        raise reader.fail("version", f"expected SARIF {SARIF_VERSION!r}, found {log.get('version')!r}")
    findings: list[Finding] = []
    for run_index, run_value in enumerate(reader.arr(log.get("runs"), "runs")):
        where = f"runs[{run_index}]"
        run = reader.obj(run_value, where)
        tool = reader.obj(run.get("tool"), f"{where}.tool")
        driver = reader.obj(tool.get("driver"), f"{where}.tool.driver")
        driver_name = reader.text(driver.get("name"), f"{where}.tool.driver.name")
        run_origin = Origin.POLICY if driver_name == "hardening" else Origin.SCANNER
        rules: dict[str, Mapping[str, Any]] = {}
        rule_list = reader.arr(driver.get("rules", []), f"{where}.tool.driver.rules")
        for rule_index, rule_value in enumerate(rule_list):
            rule = reader.obj(rule_value, f"{where}.tool.driver.rules[{rule_index}]")
            rule_id = reader.text(rule.get("id"), f"{where}.tool.driver.rules[{rule_index}].id")
            rules[rule_id] = rule
        results = reader.arr(run.get("results", []), f"{where}.results")
        for result_index, result_value in enumerate(results):
            field = f"{where}.results[{result_index}]"
            findings.append(_read_result(reader, result_value, field, rules, rule_list, run_origin))
    return findings


def _read_result(
    reader: JsonReader,
    value: Any,
    field: str,
    rules: Mapping[str, Mapping[str, Any]],
    rule_list: Sequence[Any],
    run_origin: Origin,
) -> Finding:
    result = reader.obj(value, field)
    rule_id = reader.opt_text(result, "ruleId", field)
    if rule_id is None:
        index = result.get("ruleIndex")
        if isinstance(index, int) and 0 <= index < len(rule_list):
            rule_id = reader.text(rule_list[index].get("id"), f"{field}.ruleIndex")
    if not rule_id:
        raise reader.fail(f"{field}.ruleId", "a result needs a rule id")
    rule = rules.get(rule_id, {})
    message_obj = reader.obj(result.get("message"), f"{field}.message")
    message = reader.text(message_obj.get("text"), f"{field}.message.text")
    props = reader.obj(result.get("properties", {}), f"{field}.properties")
    rule_props = rule.get("properties", {})
    rule_props = rule_props if isinstance(rule_props, Mapping) else {}

    origin = run_origin
    if "origin" in props:
        try:
            origin = Origin(props["origin"])
        except ValueError:
            raise reader.fail(
                f"{field}.properties.origin", "expected 'policy', 'scanner' or 'archive'"
            ) from None
    severity = _read_severity(reader, result, props, rule_props, field)

    locations = reader.arr(result.get("locations", []), f"{field}.locations")
    location = _read_location(reader, locations[0], f"{field}.locations[0]") if locations else None
    related = reader.arr(result.get("relatedLocations", []), f"{field}.relatedLocations")
    template = _read_location(reader, related[0], f"{field}.relatedLocations[0]") if related else None
    if template is not None and TEMPLATE_SUFFIX.search(message):
        message = unescape_message(TEMPLATE_SUFFIX.sub("", message))

    suppressed_by = None
    for index, item in enumerate(reader.arr(result.get("suppressions", []), f"{field}.suppressions")):
        suppression = reader.obj(item, f"{field}.suppressions[{index}]")
        if suppression.get("status") in (None, "accepted"):
            suppressed_by = (
                reader.opt_text(suppression, "justification", f"{field}.suppressions[{index}]")
                or "suppressed"
            )
            break

    cvss = props.get("cvssScore")
    if cvss is not None and (not isinstance(cvss, (int, float)) or isinstance(cvss, bool)):
        raise reader.fail(f"{field}.properties.cvssScore", "expected a number")
    references = rule_props.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) for r in references):
        references = []
    full = rule.get("fullDescription")
    help_uri = rule.get("helpUri")
    return Finding(
        origin=origin,
        rule_id=rule_id,
        severity=severity,
        message=message,
        image=reader.opt_text(props, "image", f"{field}.properties") or "",
        title=reader.opt_text(props, "title", f"{field}.properties") or "",
        package=reader.opt_text(props, "package", f"{field}.properties"),
        installed_version=reader.opt_text(props, "installedVersion", f"{field}.properties"),
        fixed_version=reader.opt_text(props, "fixedVersion", f"{field}.properties"),
        package_type=reader.opt_text(props, "packageType", f"{field}.properties"),
        image_path=reader.opt_text(props, "imagePath", f"{field}.properties"),
        cvss_score=float(cvss) if cvss is not None else None,
        status=reader.opt_text(props, "status", f"{field}.properties"),
        primary_url=help_uri if isinstance(help_uri, str) else None,
        references=tuple(references),
        description=full.get("text", "") if isinstance(full, Mapping) else "",
        location=location,
        template_location=template,
        suppressed_by=suppressed_by,
    )


def _read_severity(
    reader: JsonReader,
    result: Mapping[str, Any],
    props: Mapping[str, Any],
    rule_props: Mapping[str, Any],
    field: str,
) -> Severity:
    label = props.get("severity")
    if label is not None:
        if not isinstance(label, str):
            raise reader.fail(f"{field}.properties.severity", "expected a string")
        try:
            return Severity.parse(label)
        except ValueError as exc:
            raise reader.fail(f"{field}.properties.severity", str(exc)) from None
    score = rule_props.get("security-severity")
    if isinstance(score, str):
        try:
            return _severity_from_score(float(score))
        except ValueError:
            pass
    level = result.get("level", "warning")
    if level not in _SEVERITY_OF_LEVEL:
        raise reader.fail(f"{field}.level", f"expected one of {sorted(_SEVERITY_OF_LEVEL)}")
    return _SEVERITY_OF_LEVEL[level]
