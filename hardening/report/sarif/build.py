"""Building the log: one run per tool, its rules and results, truncated to what GitHub shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report import github_rules as limits
from hardening.report._common import sorted_findings, usable_cvss
from hardening.report.sarif.fingerprint import fingerprint_base
from hardening.report.sarif.locations import Context, LineReader, normalise
from hardening.report.sarif.results import bag, build_result
from hardening.report.sarif.rules import build_rule
from hardening.report.sarif.serialise import gzip_size, plain_number, sarif_log_json
from hardening.report.sarif.text import is_web_uri
from hardening.report.sarif.vocabulary import SRCROOT, ToolInfo, default_category


def build_sarif(
    image: str,
    findings: Sequence[Finding],
    *,
    tools: Sequence[ToolInfo] | Mapping[Origin, ToolInfo],
    fallback_location: SourceLocation,
    category: str | None = None,
    repo_root: Path | None = None,
) -> dict[str, Any]:
    """One SARIF log for one image, a run per tool, in the order of ``tools``.

    ``tools`` is either every tool of the image, each finding going to the run its ``tool``
    names; or, for findings that do not name their tool (another tool's report converted), the
    tool of each origin's findings, runs in ``Origin`` order. A run is written for every tool
    given, even without results: that is how GitHub learns that an alert was fixed.
    """
    groups = _runs_of(image, findings, tools)
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
    located = [(tool, _locate(group, context)) for tool, group in groups]
    # msgspec spells a few floats otherwise than json; CVSS scores are the only floats we write
    plain = all(plain_number(score) for score in (usable_cvss(f) for f in findings) if score is not None)
    budget = limits.DISPLAYED_RESULTS_PER_RUN
    while True:
        runs = [_build_run(tool, group, automation_id, budget) for tool, group in located]
        doc = sarif_log_json(runs)
        size = gzip_size(doc, limit=limits.MAX_GZIP_BYTES, numbers_checked=plain)
        if budget <= 1 or size <= limits.MAX_GZIP_BYTES:
            return doc
        # rare: only huge help texts on thousands of rules get here; halving converges quickly
        budget //= 2


def _runs_of(
    image: str, findings: Sequence[Finding], tools: Sequence[ToolInfo] | Mapping[Origin, ToolInfo]
) -> list[tuple[ToolInfo, list[Finding]]]:
    """Each run's tool and findings; a finding no given tool accounts for is an error."""
    if isinstance(tools, Mapping):
        missing = sorted({f.origin.value for f in findings} - {o.value for o in tools})
        if missing:
            raise ReportInputError(
                f"findings of origin {', '.join(missing)} but no tool described for it",
                location=Location(f"image {image}"),
                hint="pass a ToolInfo for every origin present in the findings",
            )
        return [(tools[o], [f for f in findings if f.origin is o]) for o in Origin if o in tools]
    by_tool: dict[str, list[Finding]] = {tool.name: [] for tool in tools}
    unknown: set[str] = set()
    for finding in findings:
        group = by_tool.get(finding.tool) if finding.tool is not None else None
        if group is None:
            unknown.add(finding.tool or "(none)")
        else:
            group.append(finding)
    if unknown:
        raise ReportInputError(
            f"findings of tool {', '.join(sorted(unknown))} but no such tool described",
            location=Location(f"image {image}"),
            hint="pass a ToolInfo for every tool named by the findings",
        )
    return [(tool, by_tool[tool.name]) for tool in tools]


# A finding with the repository locations of its result and its fingerprint.
_Located = tuple[Finding, SourceLocation, SourceLocation | None, str]


def _locate(findings: Sequence[Finding], context: Context) -> list[_Located]:
    """The findings in report order, located and fingerprinted."""
    located: list[_Located] = []
    occurrences: Counter[str] = Counter()
    # fingerprints are numbered over every finding, before truncation, so that what truncation
    # drops never renumbers what it keeps
    for finding in sorted_findings(findings):
        primary = (context.normalise(finding.location) if finding.location else None) or context.fallback
        template = context.normalise(finding.template_location) if finding.template_location else None
        base = fingerprint_base(finding, context.lines.line(primary.path, primary.line))
        occurrences[base] += 1
        located.append((finding, primary, template, f"{base}:{occurrences[base]}"))
    return located


def _build_run(
    tool: ToolInfo,
    located: Sequence[_Located],
    automation_id: str,
    max_results: int,
) -> dict[str, Any]:
    kept, dropped = located[:max_results], located[max_results:]
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding, *_ in kept:
        groups[finding.rule_id].append(finding)
    rule_ids = sorted(groups)
    index_of = {rule_id: index for index, rule_id in enumerate(rule_ids)}
    # a tool's findings share their origin, which decides how its rules read
    rules = [build_rule(groups[rule_id][0].origin, rule_id, groups[rule_id], tool) for rule_id in rule_ids]
    results = [
        build_result(finding, index_of[finding.rule_id], fingerprint, primary, template)
        for finding, primary, template, fingerprint in kept
    ]

    run: dict[str, Any] = {"tool": {"driver": _driver(tool, rules)}}
    run["automationDetails"] = {"id": automation_id}
    if dropped:
        by_severity = Counter(f.severity.label for f, *_ in dropped)
        omitted = {s.label: by_severity[s.label] for s in Severity if by_severity[s.label]}
        summary = ", ".join(f"{count} {label}" for label, count in omitted.items())
        note = (
            f"{len(dropped)} of {len(located)} findings were left out of this run "
            f"({summary}); only the {len(kept)} most severe are reported, "
            "see the JSON report for all of them."
        )
        # the notification's level, "warning", is the model's default and so left out
        notification = {"message": {"text": note}, "descriptor": {"id": "results-truncated"}}
        run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": [notification]}]
    run["originalUriBaseIds"] = {SRCROOT: {"description": {"text": "The root of the repository checkout."}}}
    if dropped:
        run["properties"] = bag(
            truncated=True,
            resultLimit=max_results,
            totalFindings=len(located),
            omittedResults=len(dropped),
            omittedBySeverity=omitted,
        )
    run["results"] = results
    return run


def _driver(tool: ToolInfo, rules: list[dict[str, Any]]) -> dict[str, Any]:
    driver: dict[str, Any] = {"name": tool.name}
    if is_web_uri(tool.information_uri):
        driver["informationUri"] = tool.information_uri
    driver["rules"] = rules
    if tool.version:
        driver["version"] = tool.version
    return driver
