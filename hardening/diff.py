"""`harden diff`: which findings a rebuild fixed, which are new, which remain.

Findings are matched by ``Finding.key`` within one image, which leaves out image ids, tags,
times and line numbers, so a rebuild of the same content compares equal. Only images present on
both sides are compared: an image that one run did not look at is listed as added or removed,
never counted as fixed or new. Two differently named images (a naive image against its hardened
replacement) are compared when paired explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError, UsageError
from hardening.findings import Finding, Origin, Severity
from hardening.report.jsonreport import load_report
from hardening.report.sarif import findings_from_sarif
from hardening.run.store import FINDINGS_FILE
from hardening.userfile import read_user_json

Key = tuple[str, str, str, str, str]
# Our SARIF's category, runAutomationDetails.id: the image of a log without results.
_CATEGORY = re.compile(r"^hardening/([^/]+)/$")


@dataclass(frozen=True)
class Side:
    """One side of a diff: the images it looked at (those without findings too) and its findings."""

    images: frozenset[str]
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Side:
        """Findings alone: the images are those the findings name."""
        items = tuple(findings)
        return cls(frozenset(f.image for f in items), items)


@dataclass(frozen=True)
class Pair:
    old: str
    new: str

    @property
    def label(self) -> str:
        return self.old if self.old == self.new else f"{self.old} → {self.new}"


@dataclass(frozen=True)
class PairDiff:
    pair: Pair
    fixed: tuple[Finding, ...]
    new: tuple[Finding, ...]
    unchanged: tuple[Finding, ...]


@dataclass(frozen=True)
class FindingsDiff:
    fixed: tuple[Finding, ...]
    new: tuple[Finding, ...]
    unchanged: tuple[Finding, ...]
    pairs: tuple[PairDiff, ...] = ()  # per compared image, in name order
    removed: tuple[str, ...] = ()  # images only the old side looked at: not compared
    added: tuple[str, ...] = ()  # images only the new side looked at: not compared
    explicit: tuple[Pair, ...] = ()  # the pairs named on the command line

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            "fixed": per_severity(self.fixed),
            "new": per_severity(self.new),
            "unchanged": per_severity(self.unchanged),
        }


def per_severity(findings: Sequence[Finding]) -> dict[str, int]:
    out = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for finding in findings:
        out[finding.severity.label] += 1
    out["total"] = len(findings)
    return out


def per_origin(findings: Sequence[Finding]) -> dict[str, int]:
    """Scanner findings (vulnerabilities), policy findings and pending updates, counted apart."""
    return {origin.value: sum(1 for f in findings if f.origin is origin) for origin in Origin}


def load_side(source: Path) -> Side:
    """Images and findings from a run directory (every image's findings.json) or one SARIF or
    JSON report."""
    if source.is_dir():
        files = sorted(source.glob(f"*/{FINDINGS_FILE}"))
        if not files:
            raise ReportInputError(
                f"no */{FINDINGS_FILE} in this directory; is it a run directory of `harden run`?",
                location=Location(source),
            )
        images: set[str] = set()
        findings: list[Finding] = []
        for file in files:
            image, found = load_report(file)
            images.add(image)
            findings.extend(found)
        return Side(frozenset(images), tuple(findings))
    doc: Any = read_user_json(
        source, error=ReportInputError, what="the file", missing="no such file or directory"
    )
    if isinstance(doc, dict) and "runs" in doc:
        side = Side.of(findings_from_sarif(doc, source=source))
        return side if side.images else Side(_sarif_images(doc), side.findings)
    image, found = load_report(source)
    return Side(frozenset({image}), tuple(found))


def load_findings(source: Path) -> list[Finding]:
    """The findings of a run directory or report (``load_side`` without the images)."""
    return list(load_side(source).findings)


def _sarif_images(doc: dict[str, Any]) -> frozenset[str]:
    images = set()
    for run in doc.get("runs") or []:
        details = run.get("automationDetails") if isinstance(run, dict) else None
        ident = details.get("id") if isinstance(details, dict) else None
        match = _CATEGORY.match(ident) if isinstance(ident, str) else None
        if match:
            images.add(match.group(1))
    return frozenset(images)


def parse_pair(text: str) -> Pair:
    """``OLD=NEW`` from the command line; ``UsageError`` otherwise."""
    old, sep, new = text.partition("=")
    if not sep or not old or not new or "=" in new:
        raise UsageError(
            f"--pair {text!r} is not OLD_IMAGE=NEW_IMAGE", hint="e.g. --pair postgres-naive=postgres-secure"
        )
    return Pair(old, new)


def pair_images(old: frozenset[str], new: frozenset[str], explicit: Sequence[Pair]) -> tuple[Pair, ...]:
    """The explicit pairs, then every other image both sides looked at, by name."""
    for side, images, names in (
        ("old", old, [p.old for p in explicit]),
        ("new", new, [p.new for p in explicit]),
    ):
        for name in names:
            if name not in images:
                raise UsageError(
                    f"--pair names {name!r}, which the {side} side did not look at",
                    hint=f"images on the {side} side: {', '.join(sorted(images)) or '(none)'}",
                )
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UsageError(f"--pair names the {side} image {repeated[0]!r} twice")
    paired_old = {p.old for p in explicit}
    paired_new = {p.new for p in explicit}
    same = sorted((old - paired_old) & (new - paired_new))
    return (*explicit, *(Pair(name, name) for name in same))


def diff_findings(
    old: Side | Iterable[Finding], new: Side | Iterable[Finding], *, pairs: Sequence[Pair] = ()
) -> FindingsDiff:
    """Fixed, new and unchanged findings of the images both sides looked at (and ``pairs``)."""
    before = old if isinstance(old, Side) else Side.of(old)
    after = new if isinstance(new, Side) else Side.of(new)
    compared = pair_images(before.images, after.images, pairs)
    results = [_diff_pair(pair, before.findings, after.findings) for pair in compared]
    results.sort(key=lambda r: (r.pair.old, r.pair.new))
    return FindingsDiff(
        fixed=_ordered(f for r in results for f in r.fixed),
        new=_ordered(f for r in results for f in r.new),
        unchanged=_ordered(f for r in results for f in r.unchanged),
        pairs=tuple(results),
        removed=tuple(sorted(before.images - {p.old for p in compared})),
        added=tuple(sorted(after.images - {p.new for p in compared})),
        explicit=tuple(pairs),
    )


def _ordered(items: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(items, key=lambda f: (-int(f.severity), f.image, f.key)))


def _diff_pair(pair: Pair, old: Sequence[Finding], new: Sequence[Finding]) -> PairDiff:
    old_by_key: dict[Key, Finding] = {f.key: f for f in old if f.image == pair.old}
    new_by_key: dict[Key, Finding] = {f.key: f for f in new if f.image == pair.new}
    return PairDiff(
        pair,
        fixed=_ordered(f for k, f in old_by_key.items() if k not in new_by_key),
        new=_ordered(f for k, f in new_by_key.items() if k not in old_by_key),
        unchanged=_ordered(f for k, f in new_by_key.items() if k in old_by_key),
    )


def diff_json(result: FindingsDiff, old: str, new: str) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "old": old,
        "new": new,
        "counts": result.counts(),
        "images": {
            "compared": [
                {
                    "old": r.pair.old,
                    "new": r.pair.new,
                    "counts": {
                        "fixed": per_severity(r.fixed),
                        "new": per_severity(r.new),
                        "unchanged": per_severity(r.unchanged),
                    },
                    "by_origin": {
                        "fixed": per_origin(r.fixed),
                        "new": per_origin(r.new),
                        "unchanged": per_origin(r.unchanged),
                    },
                }
                for r in result.pairs
            ],
            "removed": list(result.removed),
            "added": list(result.added),
        },
        "fixed": [f.to_json() for f in result.fixed],
        "new_findings": [f.to_json() for f in result.new],
        "unchanged": [f.to_json() for f in result.unchanged],
    }


def _code(text: str) -> str:
    return f"`{text}`"


def _line(finding: Finding) -> str:
    """One finding in a list: severity, rule, package and version, path in the image, image."""
    parts = [finding.severity.label, _code(finding.rule_id)]
    if finding.package:
        parts.append(f"{finding.package} {finding.installed_version or ''}".rstrip())
    if finding.image_path:
        parts.append(f"at {_code(finding.image_path)}")
    return f"- {' '.join(parts)} ({finding.image})"


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
    lines += [
        "",
        "## Images",
        "",
        "| image | fixed | of them vulnerabilities | new | unchanged |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result.pairs:
        cells = [len(r.fixed), per_origin(r.fixed)[Origin.SCANNER.value], len(r.new), len(r.unchanged)]
        lines.append(f"| {_code(r.pair.label)} | " + " | ".join(map(str, cells)) + " |")
    if not result.pairs:
        lines.append("| (no image on both sides) | 0 | 0 | 0 | 0 |")
    if result.removed or result.added:
        lines.append("")
        if result.removed:
            lines.append(f"Only in `{old}`, not compared (removed): {', '.join(map(_code, result.removed))}.")
        if result.added:
            lines.append(f"Only in `{new}`, not compared (added): {', '.join(map(_code, result.added))}.")
    for title, items in (("Fixed", result.fixed), ("New", result.new)):
        if not items:
            continue
        lines += ["", f"## {title}", ""]
        lines += [_line(finding) for finding in items[:listed]]
        if len(items) > listed:
            lines.append(f"- … and {len(items) - listed} more")
    return "\n".join(lines) + "\n"
