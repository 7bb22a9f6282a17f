"""Building the log: one run per tool, its rules and results, truncated to what GitHub shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError
from hardening.findings import Acceptance, DbIdentity, Finding, Origin, Severity, SourceLocation, acceptance
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
    baseline: Collection[tuple[str, ...]] = frozenset(),
    leave_out_accepted: bool = False,
) -> dict[str, Any]:
    """One SARIF log for one image, a run per tool, in the order of ``tools``.

    ``tools`` is either every tool of the image, each finding going to the run its ``tool``
    names; or, for findings that do not name their tool (another tool's report converted), the
    tool of each origin's findings, runs in ``Origin`` order. A run is written for every tool
    given, even without results: that is how GitHub learns that an alert was fixed.

    Accepted findings — suppressed, or in ``baseline`` — carry a SARIF suppression. GitHub code
    scanning ignores suppressions and shows such results as open alerts, so with
    ``leave_out_accepted`` they are left out instead and only counted in the run's properties:
    the log for upload then alerts on exactly what the gate counts. Fingerprints are numbered
    over every finding first, so leaving some out never changes those of the results kept.
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
    located = [(tool, _locate(group, context, baseline)) for tool, group in groups]
    runs_of = [(tool, _reported(group, leave_out_accepted)) for tool, group in located]
    # msgspec spells a few floats otherwise than json; CVSS scores are the only floats we write
    plain = all(plain_number(score) for score in (usable_cvss(f) for f in findings) if score is not None)
    budget = limits.DISPLAYED_RESULTS_PER_RUN
    while True:
        runs = [_build_run(tool, run, automation_id, budget) for tool, run in runs_of]
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


# A finding with the repository locations of its result, its fingerprint and whether the gate
# accepted it.
_Located = tuple[Finding, SourceLocation, SourceLocation | None, str, Acceptance | None]


@dataclass(frozen=True)
class _Run:
    results: Sequence[_Located]  # those this log reports, in report order
    left_out: Mapping[Acceptance, int] | None  # accepted findings left out; None: none are


def _locate(
    findings: Sequence[Finding], context: Context, baseline: Collection[tuple[str, ...]]
) -> list[_Located]:
    """The findings in report order, located and fingerprinted."""
    located: list[_Located] = []
    occurrences: Counter[str] = Counter()
    # fingerprints are numbered over every finding, before accepted ones are left out and before
    # truncation, so that what either drops never renumbers what is kept
    for finding in sorted_findings(findings):
        primary = (context.normalise(finding.location) if finding.location else None) or context.fallback
        template = context.normalise(finding.template_location) if finding.template_location else None
        base = fingerprint_base(finding, context.lines.line(primary.path, primary.line))
        occurrences[base] += 1
        accepted = acceptance(finding, baseline) if baseline or finding.suppressed_by is not None else None
        located.append((finding, primary, template, f"{base}:{occurrences[base]}", accepted))
    return located


def _reported(located: Sequence[_Located], leave_out_accepted: bool) -> _Run:
    if not leave_out_accepted:
        return _Run(located, None)
    kept = [item for item in located if item[4] is None]
    counts = Counter(accepted for *_, accepted in located if accepted is not None)
    return _Run(kept, {kind: counts[kind] for kind in Acceptance})


def _build_run(
    tool: ToolInfo,
    run_of: _Run,
    automation_id: str,
    max_results: int,
) -> dict[str, Any]:
    located = run_of.results
    kept, dropped = located[:max_results], located[max_results:]
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding, *_ in kept:
        groups[finding.rule_id].append(finding)
    rule_ids = sorted(groups)
    index_of = {rule_id: index for index, rule_id in enumerate(rule_ids)}
    # a tool's findings share their origin, which decides how its rules read
    rules = [build_rule(groups[rule_id][0].origin, rule_id, groups[rule_id], tool) for rule_id in rule_ids]
    results = [
        build_result(
            finding,
            index_of[finding.rule_id],
            fingerprint,
            primary,
            template,
            baselined=accepted is Acceptance.BASELINED,
        )
        for finding, primary, template, fingerprint, accepted in kept
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
    properties: dict[str, Any] = {}
    if tool.db is not None:
        properties["vulnerabilityDatabase"] = _database(tool.db)
    left_out = run_of.left_out
    if dropped or (left_out and any(left_out.values())):
        truncated = bool(dropped)
        properties |= bag(
            truncated=True if truncated else None,
            resultLimit=max_results if truncated else None,
            totalFindings=len(located) if truncated else None,
            omittedResults=len(dropped) if truncated else None,
            omittedBySeverity=omitted if truncated else None,
            **_left_out_properties(left_out),
        )
    if properties:
        run["properties"] = properties
    run["results"] = results
    return run


LEFT_OUT_NOTE = (
    "Suppressed and baselined results are left out of this log: GitHub code scanning ignores "
    "SARIF suppressions and would show them as open alerts, so what it alerts on is what the gate "
    "counts. The complete record, every result with accepted ones marked, is the JSON report "
    "(findings.json) and the full SARIF (results.full.sarif)."
)


def _left_out_properties(left_out: Mapping[Acceptance, int] | None) -> dict[str, Any]:
    if not left_out or not any(left_out.values()):
        return {}
    return {
        "acceptedResultsLeftOut": {kind.value: left_out[kind] for kind in Acceptance},
        "acceptedResultsNote": LEFT_OUT_NOTE,
    }


def _database(db: DbIdentity) -> dict[str, Any]:
    """The data the tool matched against: where it came from and how old it was at scan time."""
    return bag(
        source=db.source,
        repository=db.repository,
        manifestDigest=db.manifest_digest,
        inputs=list(db.inputs) or None,
        updatedAt=db.updated_at,
        nextUpdate=db.next_update,
        ageSecondsAtScan=db.age_seconds,
        contentDigest=db.digest,
    )


def _driver(tool: ToolInfo, rules: list[dict[str, Any]]) -> dict[str, Any]:
    driver: dict[str, Any] = {"name": tool.name}
    if is_web_uri(tool.information_uri):
        driver["informationUri"] = tool.information_uri
    driver["rules"] = rules
    if tool.version:
        driver["version"] = tool.version
    return driver
