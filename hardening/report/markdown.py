"""A Markdown summary of a run, for the job summary page and pull request comments.

Output depends only on the content of its input (never on input order, time or host), so the
same findings always give the same bytes and golden files can pin it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hardening.atomic import write_text_atomic
from hardening.findings import DbIdentity, Finding, Severity, ToolInfo
from hardening.freshness import AgeLimit, age_of, describe_age, updated_at
from hardening.report._common import SEVERITIES_DESCENDING, sorted_findings
from hardening.report.interface import ImageReport, Writer

TOP_FINDINGS = 10


@dataclass(frozen=True)
class ImageSummary:
    """One image's findings and gate decision; ``passed`` is None when no gate ran."""

    image: str
    findings: tuple[Finding, ...]
    passed: bool | None
    reasons: tuple[str, ...] = ()
    tools: tuple[ToolInfo, ...] = ()  # only those with a vulnerability DB are described
    db_limit: AgeLimit | None = None


def _cell(text: str) -> str:
    """Text safe inside a table cell: pipes and newlines would break the row."""
    flat = " ".join(text.split())
    return flat.replace("\\", "\\\\").replace("|", "\\|") if flat else "-"


def _code(text: str) -> str:
    flat = " ".join(text.split())
    if not flat:
        return "-"
    fence = "``" if "`" in flat else "`"
    pad = " " if "`" in flat else ""
    return f"{fence}{pad}{flat}{pad}{fence}".replace("|", "\\|")


def _gate(passed: bool | None) -> str:
    if passed is None:
        return "not evaluated"
    return "✅ pass" if passed else "❌ fail"


def _title(severity: Severity) -> str:
    return severity.label.capitalize()


def _overview(images: Sequence[ImageSummary]) -> list[str]:
    header = ["Image", "Gate", *(_title(s) for s in SEVERITIES_DESCENDING), "Fixable", "Suppressed"]
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in header[2:]) + " |",
    ]
    for summary in images:
        open_findings = [f for f in summary.findings if f.suppressed_by is None]
        cells = [
            _code(summary.image),
            _gate(summary.passed),
            *(str(sum(1 for f in open_findings if f.severity is s)) for s in SEVERITIES_DESCENDING),
            str(sum(1 for f in open_findings if f.fixable)),
            str(len(summary.findings) - len(open_findings)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _image_section(summary: ImageSummary) -> list[str]:
    ordered = sorted_findings(summary.findings)
    open_findings = [f for f in ordered if f.suppressed_by is None]
    suppressed = len(ordered) - len(open_findings)
    lines = [f"## {_code(summary.image)}", "", f"**Gate: {_gate(summary.passed)}**"]
    if summary.reasons:
        lines.append("")
        lines += [f"- {' '.join(reason.split())}" for reason in summary.reasons]
    lines += ["", "| Severity | Open | Fixable |", "| --- | ---: | ---: |"]
    for severity in SEVERITIES_DESCENDING:
        of_severity = [f for f in open_findings if f.severity is severity]
        fixable = sum(1 for f in of_severity if f.fixable)
        lines.append(f"| {_title(severity)} | {len(of_severity)} | {fixable} |")
    total_fixable = sum(1 for f in open_findings if f.fixable)
    lines.append(f"| **Total** | **{len(open_findings)}** | **{total_fixable}** |")
    lines += [
        "",
        f"Suppressed findings: {suppressed} (listed in the JSON report and the full SARIF; "
        "left out of the SARIF for code scanning).",
    ]
    if not open_findings:
        lines += ["", "No open findings."]
        return lines
    shown = open_findings[:TOP_FINDINGS]
    lines += [
        "",
        f"### Top findings ({len(shown)} of {len(open_findings)})",
        "",
        "| Severity | Rule | Package | Installed | Fixed | Path in image | Where | Message |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for finding in shown:
        fixed = f"{_code(finding.fixed_version)} (fixable)" if finding.fixed_version else "no fix"
        where = _code(str(finding.location)) if finding.location else "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    _title(finding.severity),
                    _code(finding.rule_id),
                    _code(finding.package or ""),
                    _code(finding.installed_version or ""),
                    fixed if finding.package or finding.fixed_version else "-",
                    # the path tells apart rows alike in everything else (eleven setuid files)
                    _code(finding.image_path or ""),
                    where,
                    _cell(finding.title or finding.message),
                ]
            )
            + " |"
        )
    if len(open_findings) > len(shown):
        lines += ["", f"{len(open_findings) - len(shown)} more open findings are in the reports."]
    return lines


def _db_origin(db: DbIdentity) -> str:
    if db.source == "pulled":
        return f"pulled from {_code(f'{db.repository}@{db.manifest_digest}')}"
    if db.source == "merged":
        base = f" {_code(f'{db.repository}@{db.manifest_digest}')}" if db.repository else ""
        return f"the upstream DB{base} with the organisation's advisories merged into it"
    if db.source == "built":
        return f"built from {len(db.inputs)} input{'s' if len(db.inputs) != 1 else ''}, no upstream DB"
    return "of unknown origin (neither pulled nor built by harden)"


def _db_block(tool: ToolInfo, db: DbIdentity) -> list[str]:
    age = age_of(db, None)
    if db.updated_at is None:
        dated = "**the age of its data is unknown**"
    elif age is None:
        dated = f"data updated {db.updated_at}"
    else:
        dated = f"data updated {db.updated_at}, **{describe_age(age)} old** when scanned"
    # A DB we build says "next update" ten years ahead only to keep Trivy from replacing it.
    upcoming = f"; next update {db.next_update}" if db.next_update and db.source != "built" else ""
    lines = [f"- {_cell(tool.name)} {_cell(tool.version)}: the DB {_db_origin(db)}; {dated}{upcoming}."]
    lines += [f"  - {_cell(item)}" for item in db.inputs if not item.startswith("base DB ")]
    return lines


def _limit_line(limit: AgeLimit, oldest: DbIdentity | None) -> str:
    if limit.limit is not None:
        return f"Age limit: {_cell(limit.describe)}; older data stops the scan."
    since = f" after {oldest.updated_at}" if oldest is not None and oldest.updated_at else ""
    return (
        f"**No limit on the data's age applied** ({_cell(limit.describe)}): these results know "
        f"nothing of advisories published{since}."
    )


def _data_section(images: Sequence[ImageSummary]) -> list[str]:
    """Which vulnerability data the scanners read, how old it was, and the limit that applied."""
    blocks: list[list[str]] = []
    dated: list[DbIdentity] = []
    for summary in images:
        for tool in summary.tools:
            if tool.db is None:
                continue
            block = _db_block(tool, tool.db)
            if block not in blocks:
                blocks.append(block)
                dated.append(tool.db)
    if not blocks:
        return []
    lines = ["", "## Vulnerability data", ""]
    for block in blocks:
        lines += block
    limits = {summary.db_limit for summary in images if summary.db_limit is not None}
    known = [(moment, db) for db in dated if (moment := updated_at(db)) is not None]
    oldest = min(known, key=lambda pair: pair[0])[1] if known else None
    for limit in sorted(limits, key=lambda item: item.describe):
        lines += ["", _limit_line(limit, oldest)]
    return lines


def render_summary(images: Sequence[ImageSummary]) -> str:
    """The whole summary: an overview table, the data scanned against, then a section per
    image, images sorted by name."""
    ordered = sorted(images, key=lambda s: (s.image, repr(s.passed), s.reasons))
    lines = ["# Hardening report", ""]
    if not ordered:
        return "\n".join([*lines, "No images were checked.", ""])
    lines += _overview(ordered)
    lines += _data_section(ordered)
    for summary in ordered:
        lines += ["", *_image_section(summary)]
    return "\n".join(lines) + "\n"


class MarkdownWriter(Writer):
    """The run's summary: every image's counts, gate decision and top findings."""

    def write(self, path: Path, reports: Sequence[ImageReport]) -> None:
        write_text_atomic(path, render_summary([summary_of(report) for report in reports]))


def summary_of(report: ImageReport) -> ImageSummary:
    return ImageSummary(
        report.image, report.findings, report.passed, report.reasons, report.tools, report.db_limit
    )
