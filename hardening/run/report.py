"""`harden report`: reports and a gate decision for a scan made apart from `harden run`.

The daily workflow scans a released image (`harden scan --image REF --out DIR`) and reports on
it here. Without the image's facts, scanner findings are located from the Dockerfile text alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from hardening.catalog import Catalog, ImageSpec
from hardening.errors import Location, ReportInputError
from hardening.findings import HARDENING_TOOL, DbIdentity, Finding, Severity, ToolInfo, with_tool
from hardening.freshness import NO_LIMIT, AgeLimit, require_fresh, with_age
from hardening.gate import GateDecision, GatePolicy, load_gate
from hardening.locate import Locator
from hardening.pending.interface import PendingCheck
from hardening.pending.record import read_pending_record
from hardening.pending.updates import record_seen
from hardening.render import RenderedDockerfile, render_checked
from hardening.report.interface import ImageReport
from hardening.report.jsonreport import parse_findings
from hardening.report.registry import ReportFormat
from hardening.run.decide import decide_image, locate_scanner_finding
from hardening.run.outputs import record_history, step_summary, write_report_files
from hardening.run.plan import fallback_location, load_image_baseline
from hardening.run.store import CHECK_FILE, PENDING_FILE, scan_records
from hardening.userfile import read_user_json


@dataclass(frozen=True)
class ScanRecord:
    """One scanner's record from a scan directory."""

    path: Path
    tool: ToolInfo
    image_id: str
    findings: tuple[Finding, ...]  # each marked with ``tool``


@dataclass(frozen=True)
class ReportPlan:
    spec: ImageSpec
    rendered: RenderedDockerfile  # checked for drift
    baseline: frozenset[tuple[str, ...]]
    gate: GatePolicy
    today: date | None
    scans: tuple[ScanRecord, ...]
    check: tuple[Severity, tuple[Finding, ...]]  # fail level and policy findings (none without check.json)
    outputs: Mapping[ReportFormat, Path]
    history_dir: Path | None
    root: Path
    db_limit: AgeLimit = NO_LIMIT
    checks: tuple[PendingCheck, ...] | None = None  # pending.json's; None when the scan made none
    committed_history: Path | None = None  # the catalog's history: seen events already recorded


@dataclass(frozen=True)
class ReportOutcome:
    decision: GateDecision
    summary: str


def plan_report(
    catalog: Catalog,
    image: str,
    scan_dir: Path,
    *,
    outputs: Mapping[ReportFormat, Path],
    history_dir: Path | None,
    today: date | None = None,
    max_db_age: AgeLimit | None = None,
) -> ReportPlan:
    """Every input of the report, read and validated before anything is written.

    A scan whose DB was older than the gate allows when it scanned is refused (exit 3), as
    `harden scan` would have refused to make it; ``max_db_age`` replaces the gate's limit.
    """
    (spec,) = catalog.select([image])
    gate = load_gate(catalog.gate, catalog.root)
    # The policy findings come recorded in check.json: the image's policy files are not read.
    rendered = render_checked(spec, catalog.root)
    baseline = load_image_baseline(spec, gate)
    scans = tuple(_scan_record(path) for path in scan_records(scan_dir))
    db_limit = gate.age_limit(max_db_age)
    for scan in scans:
        require_fresh([scan.tool], db_limit, now=None, what=f" of {scan.path}")
    check: tuple[Severity, tuple[Finding, ...]] = (Severity.HIGH, ())
    check_file = scan_dir / CHECK_FILE
    if check_file.is_file():
        doc = _record(check_file)
        findings = parse_findings(doc.get("findings"), source=check_file)
        check = (Severity.parse(str(doc.get("fail_level", "high"))), with_tool(findings, HARDENING_TOOL.name))
    checks = None
    pending_file = scan_dir / PENDING_FILE
    if pending_file.is_file():
        image_id, checks = read_pending_record(pending_file)
        scanned = {scan.image_id for scan in scans if scan.image_id}
        if scanned and image_id not in scanned:
            raise ReportInputError(
                f"the pending-update record is about {image_id}, the scan about {', '.join(sorted(scanned))}",
                location=Location(pending_file, None, "image_id"),
                hint="scan the image again into an empty directory (`harden scan --image REF --out DIR`)",
            )
    return ReportPlan(
        spec,
        rendered,
        baseline,
        gate,
        today,
        scans,
        check,
        dict(outputs),
        history_dir,
        catalog.root,
        db_limit,
        checks,
        catalog.output_dir / "history",
    )


def report_scan(plan: ReportPlan) -> ReportOutcome:
    image = plan.spec
    locator = Locator(plan.rendered, None)
    scanner_findings = [
        locate_scanner_finding(locator, replace(f, image=image.name))
        for scan in plan.scans
        for f in scan.findings
    ]
    checks = plan.checks or ()
    pending_findings = [
        locate_scanner_finding(locator, replace(f, image=image.name))
        for check in checks
        for f in check.findings
    ]
    fail_level, policy_findings = plan.check
    decision = decide_image(
        image.name,
        plan.gate,
        plan.baseline,
        scanner_findings,
        policy_findings,
        fail_level,
        plan.today,
        pending_findings=pending_findings,
        pending_checked=plan.checks is not None,
    )
    report = ImageReport(
        image=image.name,
        findings=decision.findings,
        tools=(HARDENING_TOOL, *(scan.tool for scan in plan.scans), *(c.tool for c in checks)),
        passed=decision.passed,
        reasons=decision.reasons,
        fallback_location=fallback_location(image),
        repo_root=plan.root,
        baseline=plan.baseline,
        db_limit=plan.db_limit,
    )
    write_report_files(plan.outputs, report)
    if plan.history_dir is not None:
        for scan in plan.scans:
            record_history(plan.history_dir, image.name, scan.image_id, decision, scan.tool)
        also = [plan.committed_history] if plan.committed_history is not None else []
        record_seen(plan.history_dir, image.name, pending_findings, now=datetime.now(UTC), also_in=also)
    return ReportOutcome(decision, step_summary([report]))


def _record(path: Path) -> dict[str, Any]:
    doc = read_user_json(path, error=ReportInputError, what="the record", missing="no such file")
    if not isinstance(doc, dict):
        raise ReportInputError("expected a JSON object", location=Location(path))
    return doc


def _text(doc: Any, key: str, path: Path, field: str) -> str:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, str):
        raise ReportInputError(
            "expected a string",
            location=Location(path, None, f"{field}.{key}"),
            hint="scan again with this version of `harden scan`",
        )
    return value


def _scanned_at(doc: dict[str, Any]) -> datetime | None:
    text = doc.get("scanned_at")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _scan_record(path: Path) -> ScanRecord:
    """A scan record and its findings, validated; findings are marked with the record's tool."""
    doc = _record(path)
    tool_doc = doc.get("tool")
    if not isinstance(tool_doc, dict):
        raise ReportInputError(
            "the record does not say which tool scanned",
            location=Location(path, None, "tool"),
            hint="scan again with this version of `harden scan`",
        )
    db_doc = tool_doc.get("db")
    db = None
    if db_doc is not None:
        try:
            db = DbIdentity.from_json(db_doc)
        except ValueError as error:
            field, _, problem = str(error).partition(": ")
            raise ReportInputError(
                problem, location=Location(path, None, f"tool.db.{field}" if field else "tool.db")
            ) from None
        scanned_at = _scanned_at(doc)
        if db.age_seconds is None and scanned_at is not None:
            # A record from before records said the age: the age at its scan time is known.
            db = with_age(db, scanned_at)
    tool = ToolInfo(
        _text(tool_doc, "name", path, "tool"),
        _text(tool_doc, "version", path, "tool"),
        _text(tool_doc, "information_uri", path, "tool"),
        db,
    )
    findings = with_tool(parse_findings(doc.get("findings"), source=path), tool.name)
    return ScanRecord(path, tool, str(doc.get("image_id") or ""), findings)
