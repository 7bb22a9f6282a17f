"""Building the log: one run per tool, its rules and results, truncated to what GitHub shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sarif_om as om

from hardening.errors import Location, ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report import github_rules as limits
from hardening.report._common import sorted_findings
from hardening.report.sarif.fingerprint import fingerprint_base
from hardening.report.sarif.locations import Context, LineReader, normalise
from hardening.report.sarif.results import bag, build_result
from hardening.report.sarif.rules import build_rule
from hardening.report.sarif.serialise import sarif_log_json
from hardening.report.sarif.text import is_web_uri
from hardening.report.sarif.vocabulary import SRCROOT, ToolInfo, default_category


def build_sarif(
    image: str,
    findings: Sequence[Finding],
    *,
    tools: Mapping[Origin, ToolInfo],
    fallback_location: SourceLocation,
    category: str | None = None,
    repo_root: Path | None = None,
) -> dict[str, Any]:
    """One SARIF log for one image: a run per tool in ``tools``, in ``Origin`` order."""
    missing = sorted({f.origin.value for f in findings} - {o.value for o in tools})
    if missing:
        raise ReportInputError(
            f"findings of origin {', '.join(missing)} but no tool described for it",
            location=Location(f"image {image}"),
            hint="pass a ToolInfo for every origin present in the findings",
        )
    fallback = normalise(fallback_location, repo_root)
    if fallback is None:
        raise ReportInputError(
            f"fallback location {fallback_location.path!r} is not a path inside the repository",
            location=Location(f"image {image}"),
            hint="use the rendered Dockerfile's path relative to the repository root",
        )
    automation_id = category if category is not None else default_category(image)
    if not automation_id.endswith("/"):
        # without the slash GitHub would read the last segment as a run id, and images sharing
        # the rest of the name would close each other's alerts
        automation_id += "/"
    lines = LineReader(repo_root)
    context = Context(fallback=fallback, repo_root=repo_root, lines=lines)
    origins = [origin for origin in Origin if origin in tools]
    by_origin = {o: [f for f in findings if f.origin is o] for o in origins}
    budget = limits.DISPLAYED_RESULTS_PER_RUN
    while True:
        runs = [_build_run(o, tools[o], by_origin[o], automation_id, context, budget) for o in origins]
        doc = sarif_log_json(runs)
        if budget <= 1 or limits.gzip_size(doc, limit=limits.MAX_GZIP_BYTES) <= limits.MAX_GZIP_BYTES:
            return doc
        # rare: only huge help texts on thousands of rules get here; halving converges quickly
        budget //= 2


def _build_run(
    origin: Origin,
    tool: ToolInfo,
    findings: Sequence[Finding],
    automation_id: str,
    context: Context,
    max_results: int,
) -> Any:
    ordered = sorted_findings(findings)
    located: list[tuple[Finding, SourceLocation, SourceLocation | None, str]] = []
    occurrences: Counter[str] = Counter()
    # fingerprints are numbered over every finding, before truncation, so that what truncation
    # drops never renumbers what it keeps
    for finding in ordered:
        primary = (context.normalise(finding.location) if finding.location else None) or context.fallback
        template = context.normalise(finding.template_location) if finding.template_location else None
        base = fingerprint_base(finding, context.lines.line(primary.path, primary.line))
        occurrences[base] += 1
        located.append((finding, primary, template, f"{base}:{occurrences[base]}"))

    kept, dropped = located[:max_results], located[max_results:]
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding, *_ in kept:
        groups[finding.rule_id].append(finding)
    rule_ids = sorted(groups)
    index_of = {rule_id: index for index, rule_id in enumerate(rule_ids)}
    rules = [build_rule(origin, rule_id, groups[rule_id], tool) for rule_id in rule_ids]
    results = [
        build_result(finding, index_of[finding.rule_id], fingerprint, primary, template)
        for finding, primary, template, fingerprint in kept
    ]

    invocations = None
    properties = None
    if dropped:
        by_severity = Counter(f.severity.label for f, *_ in dropped)
        omitted = {s.label: by_severity[s.label] for s in Severity if by_severity[s.label]}
        summary = ", ".join(f"{count} {label}" for label, count in omitted.items())
        note = (
            f"{len(dropped)} of {len(located)} findings were left out of this run "
            f"({summary}); only the {len(kept)} most severe are reported, "
            "see the JSON report for all of them."
        )
        properties = bag(
            truncated=True,
            resultLimit=max_results,
            totalFindings=len(located),
            omittedResults=len(dropped),
            omittedBySeverity=omitted,
        )
        invocations = [
            om.Invocation(
                execution_successful=True,
                tool_execution_notifications=[
                    om.Notification(
                        message=om.Message(text=note),
                        level="warning",
                        descriptor=om.ReportingDescriptorReference(id="results-truncated"),
                    )
                ],
            )
        ]

    driver = om.ToolComponent(
        name=tool.name,
        version=tool.version or None,
        information_uri=tool.information_uri if is_web_uri(tool.information_uri) else None,
        rules=rules,
    )
    return om.Run(
        tool=om.Tool(driver=driver),
        automation_details=om.RunAutomationDetails(id=automation_id),
        original_uri_base_ids={
            SRCROOT: om.ArtifactLocation(description=om.Message(text="The root of the repository checkout."))
        },
        invocations=invocations,
        results=results,
        properties=properties,
    )
