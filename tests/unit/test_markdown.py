"""The Markdown run summary: golden output, determinism, escaping."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.jsonreport import load_report
from hardening.report.markdown import TOP_FINDINGS, ImageSummary, render_summary

GOLDEN = Path(__file__).parents[2] / "tests" / "golden"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


def golden_summaries() -> list[ImageSummary]:
    _, findings = load_report(GOLDEN / "findings.json")
    return [
        ImageSummary(
            image="python-secure",
            findings=tuple(findings),
            passed=False,
            reasons=(
                "CVE-2024-5535 (high, fixable) in libssl3 3.0.11-1~deb12u2",
                "non-root: the image's config has no User",
            ),
        ),
        ImageSummary(image="postgres-secure", findings=(), passed=True, reasons=()),
    ]


def test_golden_markdown() -> None:
    text = render_summary(golden_summaries())
    golden = GOLDEN / "summary.md"
    if UPDATE_GOLDEN:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), "run with UPDATE_GOLDEN=1 to accept"


def test_output_does_not_depend_on_input_order() -> None:
    summaries = golden_summaries()
    reference = render_summary(summaries)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = [
            dataclasses.replace(s, findings=tuple(rng.sample(s.findings, len(s.findings)))) for s in summaries
        ]
        rng.shuffle(shuffled)
        assert render_summary(shuffled) == reference


def test_counts_gate_and_suppressed() -> None:
    text = render_summary(golden_summaries())
    assert "**Gate: ❌ fail**" in text
    assert "**Gate: ✅ pass**" in text
    assert "- non-root: the image's config has no User" in text
    assert "| High | 3 | 2 |" in text
    assert "| Critical | 0 | 0 |" in text
    assert "Suppressed findings: 1" in text
    # the suppressed critical is not a top finding
    assert "CVE-2023-45853" not in text


def test_top_findings_most_severe_first_fixable_marked_and_capped() -> None:
    findings = [
        Finding(Origin.SCANNER, f"CVE-2024-{i:04d}", severity, "m", "img", package="p", installed_version="1")
        for i, severity in enumerate([Severity.LOW, Severity.CRITICAL, Severity.MEDIUM] * 5)
    ]
    findings[0] = dataclasses.replace(findings[0], severity=Severity.HIGH, fixed_version="2")
    text = render_summary([ImageSummary("img", tuple(findings), None, ())])
    assert "**Gate: not evaluated**" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`CVE-" in line]
    assert len(rows) == TOP_FINDINGS
    severities = [row.split(" | ")[0].lstrip("| ") for row in rows]
    assert severities == ["Critical"] * 5 + ["High"] + ["Medium"] * 4
    assert "`2` (fixable)" in rows[5]
    assert f"{len(findings) - TOP_FINDINGS} more open findings" in text


def test_table_cells_are_escaped() -> None:
    finding = Finding(
        Origin.POLICY,
        "forbidden|binary",
        Severity.MEDIUM,
        "found `gcc` | and\nmore",
        "img",
        title="compiler | present\nin image",
        image_path="/usr/bin/a|b",
        location=SourceLocation("dockerfiles/a|b/Dockerfile", 3),
    )
    text = render_summary([ImageSummary("img", (finding,), False, ("multi\nline reason",))])
    row = next(line for line in text.splitlines() if "forbidden" in line)
    assert row.count(" | ") == 7  # eight cells, no pipe leaked from the content
    assert "`/usr/bin/a\\|b`" in row
    assert "compiler \\| present in image" in row
    assert "- multi line reason" in text


def test_rows_alike_but_for_the_file_are_told_apart_by_its_path() -> None:
    """Eleven setuid files from the base read the same in every other column."""
    paths = ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount")
    findings = tuple(
        Finding(
            Origin.POLICY,
            "HARDEN-SETUID",
            Severity.MEDIUM,
            f"{path} is setuid (mode 4755, owner 0:0) and not on the allowlist",
            "redis-secure",
            title="setuid/setgid file not on the allowlist",
            image_path=path,
            location=SourceLocation("dockerfiles/redis-secure/Dockerfile", 12),
        )
        for path in paths
    )
    text = render_summary([ImageSummary("redis-secure", findings, True)])
    rows = [line for line in text.splitlines() if "HARDEN-SETUID" in line]
    assert len(set(rows)) == 3
    assert sorted(row.split(" | ")[5] for row in rows) == sorted(f"`{path}`" for path in paths)


def test_no_images() -> None:
    assert render_summary([]) == "# Hardening report\n\nNo images were checked.\n"
