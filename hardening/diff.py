"""`harden diff`: which findings a rebuild fixed, which are new, which remain.

Findings are matched by ``Finding.key`` and image, which leave out image ids, tags, times and
line numbers, so a rebuild of the same content compares equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError
from hardening.findings import Finding, Severity
from hardening.report.jsonreport import load_report
from hardening.report.sarif import findings_from_sarif
from hardening.run.store import FINDINGS_FILE
from hardening.userfile import read_user_json

Identity = tuple[str, tuple[str, str, str, str, str]]


@dataclass(frozen=True)
class FindingsDiff:
    fixed: tuple[Finding, ...]
    new: tuple[Finding, ...]
    unchanged: tuple[Finding, ...]

    def counts(self) -> dict[str, dict[str, int]]:
        def per_severity(findings: Sequence[Finding]) -> dict[str, int]:
            out = {s.label: 0 for s in sorted(Severity, reverse=True)}
            for finding in findings:
                out[finding.severity.label] += 1
            out["total"] = len(findings)
            return out

        return {
            "fixed": per_severity(self.fixed),
            "new": per_severity(self.new),
            "unchanged": per_severity(self.unchanged),
        }


def _identity(finding: Finding) -> Identity:
    return (finding.image, finding.key)


def load_findings(source: Path) -> list[Finding]:
    """Findings from a run directory (every image's findings.json) or from one SARIF file."""
    if source.is_dir():
        files = sorted(source.glob(f"*/{FINDINGS_FILE}"))
        if not files:
            raise ReportInputError(
                f"no */{FINDINGS_FILE} in this directory; is it a run directory of `harden run`?",
                location=Location(source),
            )
        findings: list[Finding] = []
        for file in files:
            findings.extend(load_report(file)[1])
        return findings
    doc: Any = read_user_json(
        source, error=ReportInputError, what="the file", missing="no such file or directory"
    )
    if isinstance(doc, dict) and "runs" in doc:
        return findings_from_sarif(doc, source=source)
    return load_report(source)[1]


def diff_findings(old: Iterable[Finding], new: Iterable[Finding]) -> FindingsDiff:
    old_by_id = {_identity(f): f for f in old}
    new_by_id = {_identity(f): f for f in new}

    def ordered(items: Iterable[Finding]) -> tuple[Finding, ...]:
        return tuple(sorted(items, key=lambda f: (-int(f.severity), f.image, f.key)))

    return FindingsDiff(
        fixed=ordered(f for k, f in old_by_id.items() if k not in new_by_id),
        new=ordered(f for k, f in new_by_id.items() if k not in old_by_id),
        unchanged=ordered(f for k, f in new_by_id.items() if k in old_by_id),
    )


def diff_json(result: FindingsDiff, old: str, new: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "old": old,
        "new": new,
        "counts": result.counts(),
        "fixed": [f.to_json() for f in result.fixed],
        "new_findings": [f.to_json() for f in result.new],
        "unchanged": [f.to_json() for f in result.unchanged],
    }


def diff_markdown(result: FindingsDiff, old: str, new: str, *, listed: int = 25) -> str:
    counts = result.counts()
    severities = [s.label for s in sorted(Severity, reverse=True)]
    lines = [
        f"# Findings diff: `{old}` → `{new}`",
        "",
        f"This rebuild fixed **{counts['fixed']['total']}** findings, introduced "
        f"**{counts['new']['total']}** and kept **{counts['unchanged']['total']}**.",
        "",
        "| | " + " | ".join(severities) + " | total |",
        "|---|" + "---:|" * (len(severities) + 1),
    ]
    for name in ("fixed", "new", "unchanged"):
        row = counts[name]
        lines.append(f"| {name} | " + " | ".join(str(row[s]) for s in severities) + f" | {row['total']} |")
    for title, items in (("Fixed", result.fixed), ("New", result.new)):
        if not items:
            continue
        lines += ["", f"## {title}", ""]
        for finding in items[:listed]:
            package = (
                f" {finding.package} {finding.installed_version or ''}".rstrip() if finding.package else ""
            )
            lines.append(f"- {finding.severity.label} `{finding.rule_id}`{package} ({finding.image})")
        if len(items) > listed:
            lines.append(f"- … and {len(items) - listed} more")
    return "\n".join(lines) + "\n"
