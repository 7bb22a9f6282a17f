"""One SARIF result per finding (sarif-om's ``Result``), and the property bags results and rules
carry.

Written as the dicts sarif-om's serialisation would give: keys in the object model's field order,
values equal to the model's defaults left out (``level`` excepted: without it a result would take
its rule's level). ``tests/unit/test_sarif_vocabulary.py`` holds every log we write to that.
"""

from __future__ import annotations

from typing import Any

from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report._common import usable_cvss
from hardening.report.sarif.locations import physical_location
from hardening.report.sarif.text import clip, escape_message
from hardening.report.sarif.vocabulary import LEVEL_OF, MAX_MESSAGE_CHARS, TEMPLATE_LOCATION_ID

# What a result the image's baseline accepts says about it (`harden baseline` wrote the entry).
BASELINE_JUSTIFICATION = "accepted in the image's baseline (harden baseline)"

# Enum properties are slow to read and read for every result.
_LABEL = {severity: severity.label for severity in Severity}
_ORIGIN = {origin: origin.value for origin in Origin}


def bag(tags: list[str] | None = None, **values: Any) -> dict[str, Any]:
    """sarif-om's ``PropertyBag``: ``tags`` when there are any, then the other properties in the
    order given, leaving out those that are None (also inside a mapping value)."""
    properties: dict[str, Any] = {"tags": tags} if tags else {}
    for key, value in values.items():
        if value is not None:
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if v is not None}
            properties[key] = value
    return properties


def _result_properties(finding: Finding) -> dict[str, Any]:
    # bag()'s output, spelt out: this runs for every result
    properties: dict[str, Any] = {"origin": _ORIGIN[finding.origin], "severity": _LABEL[finding.severity]}
    if finding.image is not None:
        properties["image"] = finding.image
    if finding.title:
        properties["title"] = finding.title
    if finding.package is not None:
        properties["package"] = finding.package
    if finding.package_type is not None:
        properties["packageType"] = finding.package_type
    if finding.installed_version is not None:
        properties["installedVersion"] = finding.installed_version
    if finding.fixed_version is not None:
        properties["fixedVersion"] = finding.fixed_version
    if finding.image_path is not None:
        properties["imagePath"] = finding.image_path
    if finding.status is not None:
        properties["status"] = finding.status
    score = usable_cvss(finding)
    if score is not None:
        properties["cvssScore"] = score
    properties["fixable"] = finding.fixable
    return properties


def build_result(
    finding: Finding,
    rule_index: int,
    fingerprint: str,
    primary: SourceLocation,
    template: SourceLocation | None,
    *,
    baselined: bool = False,
) -> dict[str, Any]:
    message = clip(finding.message or finding.title or finding.rule_id, MAX_MESSAGE_CHARS)
    result: dict[str, Any] = {"message": {}, "level": LEVEL_OF[finding.severity]}
    result["locations"] = [{"physicalLocation": physical_location(primary)}]
    result["partialFingerprints"] = {"primaryLocationLineHash": fingerprint}
    result["properties"] = _result_properties(finding)
    if template is not None:
        message = f"{escape_message(message)}\n\nTemplate line: [{template}]({TEMPLATE_LOCATION_ID})"
        result["relatedLocations"] = [
            {
                "id": TEMPLATE_LOCATION_ID,
                "message": {"text": "template line that renders the responsible line"},
                "physicalLocation": physical_location(template),
            }
        ]
    result["message"]["text"] = message
    result["ruleId"] = finding.rule_id
    result["ruleIndex"] = rule_index
    if finding.suppressed_by is not None:
        suppression = {"kind": "external", "justification": finding.suppressed_by or "suppressed"}
        result["suppressions"] = [suppression]
    elif baselined:
        result["suppressions"] = [{"kind": "external", "justification": BASELINE_JUSTIFICATION}]
    return result
