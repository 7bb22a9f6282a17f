"""What a run or a report leaves behind: every report format, the history, the job summary."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from hardening.errors import OutputError
from hardening.findings import DbIdentity, Origin, ToolInfo
from hardening.gate import GateDecision
from hardening.history import GateResult, HistoryRecord, ScanDb, ScanTool, SeverityCounts, append_record
from hardening.report.interface import ImageReport
from hardening.report.markdown import render_summary, summary_of
from hardening.report.registry import ReportFormat, Scope
from hardening.run.store import RunDir

# The name history records have kept the Trivy version under since before there were tools.
_TRIVY = "Trivy"


def write_image_reports(run: RunDir, report: ImageReport) -> None:
    """Every per-image format into the image's directory, as soon as its decision is known."""
    for fmt in ReportFormat:
        if fmt.spec.scope is Scope.IMAGE:
            fmt.writer().write(run.image_dir(report.image) / fmt.spec.run_file, [report])


def write_run_reports(run: RunDir, reports: Sequence[ImageReport]) -> None:
    """Every per-run format into the run directory, once every image is decided."""
    for fmt in ReportFormat:
        if fmt.spec.scope is Scope.RUN:
            fmt.writer().write(run.path / fmt.spec.run_file, reports)


def write_report_files(paths: Mapping[ReportFormat, Path], report: ImageReport) -> None:
    """The formats asked for, each to its file (`harden report`)."""
    for fmt in ReportFormat:  # registry order, whatever order the options came in
        if fmt in paths:
            fmt.writer().write(paths[fmt], [report])


def record_history(
    history_dir: Path, image: str, digest: str, decision: GateDecision, tool: ToolInfo
) -> None:
    """One history line per scanner: its open findings by severity and the gate's verdict."""
    open_findings = [
        f
        for f in decision.findings
        if f.origin is Origin.SCANNER and f.tool in (tool.name, None) and f.suppressed_by is None
    ]
    record = HistoryRecord(
        date=datetime.now(UTC),
        image=image,
        digest=digest,
        counts=SeverityCounts.from_severities(f.severity for f in open_findings),
        gate=GateResult.PASSED if decision.passed else GateResult.FAILED,
        db_date=_parse_time(tool.db.updated_at if tool.db else None),
        trivy_version=tool.version if tool.name == _TRIVY else None,
        tool=ScanTool(tool.name, tool.version),
        db=_scan_db(tool.db) if tool.db is not None else None,
    )
    append_record(history_dir, record)


def _scan_db(db: DbIdentity) -> ScanDb | None:
    """The DB's provenance and age for the history; None when nothing beyond its date is known."""
    known = (db.source, db.repository, db.manifest_digest, db.next_update, db.age_seconds)
    if all(value is None for value in known) and not db.inputs:
        return None
    return ScanDb(
        source=db.source or "unknown",
        repository=db.repository,
        manifest_digest=db.manifest_digest,
        inputs=db.inputs,
        next_update=_parse_time(db.next_update),
        age_seconds=db.age_seconds,
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def step_summary(reports: Sequence[ImageReport]) -> str:
    return render_summary([summary_of(report) for report in reports])


def append_step_summary(text: str) -> None:
    """GitHub Actions shows this file on the run's page; append, never overwrite."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise OutputError(f"cannot append to $GITHUB_STEP_SUMMARY ({target}): {exc}") from exc
