"""One SARIF result per finding, and the property bags results and rules carry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sarif_om as om

from hardening.findings import Finding, SourceLocation
from hardening.report._common import usable_cvss
from hardening.report.sarif.locations import artifact
from hardening.report.sarif.text import clip, escape_message
from hardening.report.sarif.vocabulary import LEVEL_OF, MAX_MESSAGE_CHARS, TEMPLATE_LOCATION_ID


def bag(tags: Sequence[str] | None = None, **values: Any) -> Any:
    """A sarif_om PropertyBag; keys that are not Python names (``security-severity``) become
    extra attributes, which the serialiser writes after the declared ``tags``."""
    properties = om.PropertyBag(tags=list(tags) if tags else None)
    for key, value in values.items():
        if value is not None:
            setattr(properties, key, value)
    return properties


def _result_properties(finding: Finding) -> Any:
    return bag(
        origin=finding.origin.value,
        severity=finding.severity.label,
        image=finding.image,
        title=finding.title or None,
        package=finding.package,
        packageType=finding.package_type,
        installedVersion=finding.installed_version,
        fixedVersion=finding.fixed_version,
        imagePath=finding.image_path,
        status=finding.status,
        cvssScore=usable_cvss(finding),
        fixable=finding.fixable,
    )


def build_result(
    finding: Finding,
    rule_index: int,
    fingerprint: str,
    primary: SourceLocation,
    template: SourceLocation | None,
) -> Any:
    message = clip(finding.message or finding.title or finding.rule_id, MAX_MESSAGE_CHARS)
    related = None
    if template is not None:
        message = f"{escape_message(message)}\n\nTemplate line: [{template}]({TEMPLATE_LOCATION_ID})"
        related = [
            om.Location(
                id=TEMPLATE_LOCATION_ID,
                physical_location=artifact(template),
                message=om.Message(text="template line that renders the responsible line"),
            )
        ]
    suppressions = None
    if finding.suppressed_by is not None:
        suppressions = [om.Suppression(kind="external", justification=finding.suppressed_by or "suppressed")]
    return om.Result(
        rule_id=finding.rule_id,
        rule_index=rule_index,
        level=LEVEL_OF[finding.severity],
        message=om.Message(text=message),
        locations=[om.Location(physical_location=artifact(primary))],
        related_locations=related,
        partial_fingerprints={"primaryLocationLineHash": fingerprint},
        suppressions=suppressions,
        properties=_result_properties(finding),
    )
