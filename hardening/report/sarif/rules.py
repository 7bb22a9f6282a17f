"""One SARIF rule (sarif-om's ``ReportingDescriptor``) per rule id: descriptions, help, severity.

Written as the dict sarif-om's serialisation would give (see ``results``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from hardening.findings import Finding, Origin
from hardening.report import github_rules as limits
from hardening.report._common import usable_cvss
from hardening.report.sarif.results import bag
from hardening.report.sarif.text import cell, clip, first_line, is_web_uri, md, pascal
from hardening.report.sarif.vocabulary import (
    FALLBACK_SECURITY_SEVERITY,
    LEVEL_OF,
    MAX_HELP_CHARS,
    MAX_HELP_PACKAGES,
    PRECISION_OF,
    ToolInfo,
)


def _security_severity(group: Sequence[Finding]) -> float:
    scores = [score for score in map(usable_cvss, group) if score is not None]
    if scores:
        return max(scores)
    return FALLBACK_SECURITY_SEVERITY[max(f.severity for f in group)]


def _help(origin: Origin, rule_id: str, group: Sequence[Finding]) -> tuple[str, str]:
    first = group[0]
    title = first.title or first_line(first.message) or rule_id
    text: list[str] = [f"{rule_id}: {title}"]
    markdown: list[str] = [f"**{rule_id}**: {md(title)}"]
    if first.description and first.description != title:
        text += ["", first.description]
        markdown += ["", md(first.description)]
    rows = sorted(
        {
            (f.package or "", f.installed_version or "", f.fixed_version or "", f.image_path or "")
            for f in group
            if f.package or f.image_path
        }
    )
    if rows:
        shown = rows[:MAX_HELP_PACKAGES]
        heading = "Affected items" if origin is Origin.POLICY else "Affected packages"
        text += ["", f"{heading}:"]
        markdown += ["", "| Package | Installed version | Fixed version | Path in image |"]
        markdown += ["| --- | --- | --- | --- |"]
        for package, installed, fixed, where in shown:
            fix = fixed or "no fix available"
            text.append(
                f"- package {package or '-'}, installed {installed or '-'}, fixed {fix}"
                + (f", at {where}" if where else "")
            )
            markdown.append(
                f"| {cell(package)} | {cell(installed)} | {cell(fixed or 'no fix available')} "
                f"| {cell(where)} |"
            )
        if len(rows) > len(shown):
            more = f"… and {len(rows) - len(shown)} more"
            text.append(more)
            markdown += ["", more]
    references = list(dict.fromkeys(r for f in group for r in f.references if r))
    primary = first.primary_url
    if primary and primary not in references:
        references.insert(0, primary)
    if references:
        text += ["", "References:"] + [f"- {r}" for r in references]
        markdown += ["", "References:", ""] + [
            f"- <{r}>" if is_web_uri(r) else f"- {md(r)}" for r in references
        ]
    return clip("\n".join(text), MAX_HELP_CHARS), clip("\n".join(markdown), MAX_HELP_CHARS)


def build_rule(origin: Origin, rule_id: str, group: Sequence[Finding], tool: ToolInfo) -> dict[str, Any]:
    first = group[0]
    title = first.title or first_line(first.message) or rule_id
    short = f"{rule_id}: {title}" if origin is Origin.SCANNER and title != rule_id else title
    full = first.description or title
    text, markdown = _help(origin, rule_id, group)
    if is_web_uri(first.primary_url):
        help_uri: str | None = first.primary_url
    elif rule_id.upper().startswith("CVE-"):
        help_uri = f"https://nvd.nist.gov/vuln/detail/{quote(rule_id.upper())}"
    else:
        help_uri = next((r for r in first.references if is_web_uri(r)), None)
        if help_uri is None and is_web_uri(tool.information_uri):
            help_uri = tool.information_uri
    if origin is Origin.SCANNER:
        types = sorted({f.package_type for f in group if f.package_type})
        name = f"{pascal(types[0]) if types else ''}PackageVulnerability"
        tags = ["security", "vulnerability", *types]
    elif origin is Origin.ARCHIVE:
        name = pascal(rule_id) or "PendingUpdate"
        tags = ["security", "pending-update", *sorted({f.package_type for f in group if f.package_type})]
    else:
        name = pascal(rule_id) or "Policy"
        tags = ["security", "policy"]
    references = list(dict.fromkeys(r for f in group for r in f.references if r))
    level = LEVEL_OF[max(f.severity for f in group)]
    rule: dict[str, Any] = {
        "id": rule_id,
        # "warning" is the model's default level, left out like every default
        "defaultConfiguration": {"level": level} if level != "warning" else {},
        "fullDescription": {"text": clip(full, limits.MAX_DESCRIPTION_CHARS)},
        "help": {"text": text, "markdown": markdown},
    }
    if help_uri is not None:
        rule["helpUri"] = help_uri
    rule["name"] = clip(name, limits.MAX_RULE_NAME_CHARS)
    rule["properties"] = bag(
        tags=list(dict.fromkeys(tags))[: limits.DISPLAYED_TAGS_PER_RULE],
        precision=PRECISION_OF[origin],
        **{"security-severity": f"{_security_severity(group):.1f}"},
        references=references or None,
    )
    rule["shortDescription"] = {"text": clip(short, limits.MAX_DESCRIPTION_CHARS)}
    return rule
