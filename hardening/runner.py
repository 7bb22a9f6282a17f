"""`harden run`: render check → build → inspect + check → scan → report → gate → promote.

Every input is validated and every tool is checked before the first build, so bad input or a
missing scanner DB stops the run before anything is built or tagged. Each image is saved once;
the same tarball feeds the inspector and the scanner. Release tags move only for images whose
gate passed; a failing image leaves its previous release tags untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

from hardening import __version__
from hardening.atomic import write_json, write_text_atomic
from hardening.build.interface import BuildResult
from hardening.build.service import LineSink, build_images
from hardening.catalog import Catalog, ImageSpec
from hardening.engine.client import Engine
from hardening.engine.saved import saved_image
from hardening.errors import OutputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.gate import GateDecision, GatePolicy, decide, load_baseline
from hardening.history import GateResult, HistoryRecord, SeverityCounts, append_record
from hardening.inspect.cache import default_cache_dir, inspect_cached
from hardening.inspect.facts import ImageFacts
from hardening.locate import PYTHON_KINDS, Locator, environment_of
from hardening.policy.config import Policy, load_policies
from hardening.policy.service import CheckReport, binary_names, run_checks
from hardening.release import Promotion, promote
from hardening.render import RenderedDockerfile, render_checked
from hardening.report.jsonreport import build_report, write_report
from hardening.report.markdown import ImageSummary, render_summary
from hardening.report.sarif import ToolInfo, build_sarif, write_sarif
from hardening.run.store import (
    CHECK_FILE,
    FINDINGS_FILE,
    GATE_FILE,
    PROMOTION_FILE,
    SARIF_FILE,
    SBOM_FILE,
    SCAN_FILE,
    SUMMARY_FILE,
    RunDir,
)
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget
from hardening.scan.service import write_scan_record
from hardening.userfile import read_user_json

HARDENING_TOOL = ToolInfo("hardening", __version__, "https://github.com/hardening-dev/hardening")


@dataclass(frozen=True)
class ImageOutcome:
    spec: ImageSpec
    build: BuildResult
    check: CheckReport
    scan: ScanResult
    decision: GateDecision
    promotion: Promotion | None


@dataclass(frozen=True)
class RunOutcome:
    run: RunDir
    images: tuple[ImageOutcome, ...]
    summary: str

    @property
    def passed(self) -> bool:
        return all(outcome.decision.passed for outcome in self.images)


def locate_scanner_finding(locator: Locator, finding: Finding) -> Finding:
    """The rendered Dockerfile line that brought a scanner finding's package into the image."""
    if finding.location is not None:
        return finding
    instruction = locator.layer_instruction(finding.layer) if finding.layer else None
    if instruction is None and finding.package:
        kind = (finding.package_type or "").lower()
        env = environment_of(finding.image_path) if kind in PYTHON_KINDS and finding.image_path else None
        instruction = locator.package_instruction(kind, finding.package, env)
    rendered, template = locator.at(instruction or locator.base_from)
    return replace(finding, location=rendered, template_location=template)


def _inspect_and_scan(
    engine: Engine,
    scanner: Scanner,
    options: ScanOptions,
    build: BuildResult,
    policy: Policy,
    out_dir: Path,
) -> tuple[ImageFacts, ScanResult]:
    """Save the candidate once; the inspector and the scanner read the same tarball."""
    with saved_image(engine, build.image_id, prefix="hardening-run-") as tar_path:
        facts = inspect_cached(
            tar_path,
            reference=build.candidate_ref,
            binary_names=binary_names(policy),
            cache_dir=default_cache_dir(),
        )
        target = ScanTarget(build.image, build.candidate_ref, build.image_id, tar_path)
        scan_options = replace(options, sbom_path=out_dir / SBOM_FILE)
        result = scanner.lookup(target, scan_options) or scanner.scan(target, scan_options)
    return facts, result


def evaluate_image(
    catalog: Catalog,
    spec: ImageSpec,
    build: BuildResult,
    rendered: RenderedDockerfile,
    engine: Engine,
    scanner: Scanner,
    options: ScanOptions,
    gate: GatePolicy,
    run: RunDir,
    *,
    today: date | None = None,
) -> tuple[CheckReport, ScanResult, GateDecision]:
    policy = load_policies(catalog.root, spec.policies)
    out_dir = run.image_dir(spec.name)
    facts, scan = _inspect_and_scan(engine, scanner, options, build, policy, out_dir)
    policy_findings = run_checks(policy, image=spec.name, facts=facts, rendered=rendered)
    check = CheckReport(spec.name, policy_findings, policy.fail_level, build.candidate_ref, policy.sources)
    write_json(out_dir / CHECK_FILE, check.to_json())
    write_scan_record(out_dir / SCAN_FILE, spec.name, build.candidate_ref, build.image_id, scan, options)
    locator = Locator(rendered, facts)
    scanner_findings = [locate_scanner_finding(locator, f) for f in scan.findings]
    decision = _decide(spec, gate, scanner_findings, policy_findings, policy.fail_level, today)
    return check, scan, decision


def _decide(
    spec: ImageSpec,
    gate: GatePolicy,
    scanner_findings: Sequence[Finding],
    policy_findings: Sequence[Finding],
    policy_fail_level: Severity,
    today: date | None,
) -> GateDecision:
    """The gate, with the image's baseline (if the gate keeps baselines)."""
    baseline = load_baseline(gate.baseline_dir / f"{spec.name}.json") if gate.baseline_dir else frozenset()
    return decide(
        spec.name,
        scanner_findings,
        policy_findings,
        gate,
        policy_fail_level=policy_fail_level,
        today=today,
        baseline=baseline,
    )


def write_image_reports(
    catalog: Catalog,
    spec: ImageSpec,
    decision: GateDecision,
    trivy_version: str,
    *,
    sarif_path: Path,
    json_path: Path | None,
) -> None:
    """SARIF (one run per tool) and the complete JSON record of every finding, suppressed included."""
    findings = list(decision.findings)
    if json_path is not None:
        write_report(json_path, build_report(spec.name, findings))
    tools = {
        Origin.SCANNER: ToolInfo("Trivy", trivy_version, "https://trivy.dev"),
        Origin.POLICY: HARDENING_TOOL,
    }
    sarif = build_sarif(
        spec.name, findings, tools=tools, fallback_location=_fallback(spec), repo_root=catalog.root
    )
    write_sarif(sarif_path, sarif)


def _fallback(spec: ImageSpec) -> SourceLocation:
    return SourceLocation(spec.dockerfile.as_posix(), 1)


def record_history(
    history_dir: Path,
    image: str,
    digest: str,
    decision: GateDecision,
    *,
    db_updated_at: str | None,
    trivy_version: str,
) -> None:
    """One history line: the open scanner findings by severity and the gate's verdict."""
    open_findings = [f for f in decision.findings if f.origin is Origin.SCANNER and f.suppressed_by is None]
    record = HistoryRecord(
        date=datetime.now(UTC),
        image=image,
        digest=digest,
        counts=SeverityCounts.from_severities(f.severity for f in open_findings),
        gate=GateResult.PASSED if decision.passed else GateResult.FAILED,
        db_date=_parse_time(db_updated_at),
        trivy_version=trivy_version,
    )
    append_record(history_dir, record)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


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


def run_pipeline(
    catalog: Catalog,
    specs: Sequence[ImageSpec],
    engine: Engine,
    scanner: Scanner,
    options: ScanOptions,
    gate: GatePolicy,
    run: RunDir,
    *,
    sink: Callable[[str], LineSink] | None = None,
    history: bool = False,
    today: date | None = None,
) -> RunOutcome:
    selected = tuple(specs)
    # Validate everything the run will read before building anything.
    rendered = {spec.name: render_checked(spec, catalog.root) for spec in selected}
    for spec in selected:
        load_policies(catalog.root, spec.policies)
        if gate.baseline_dir:
            # A broken baseline is bad input too; found after the build it would leave a
            # freshly built candidate behind.
            load_baseline(gate.baseline_dir / f"{spec.name}.json")
    scanner.prepare(options)
    builds = build_images(
        selected, rendered, engine, run, root=catalog.root, source=catalog.source, sink=sink
    )
    outcomes: list[ImageOutcome] = []
    for spec, build in zip(selected, builds, strict=True):
        check, scan, decision = evaluate_image(
            catalog, spec, build, rendered[spec.name], engine, scanner, options, gate, run, today=today
        )
        out_dir = run.image_dir(spec.name)
        write_image_reports(
            catalog,
            spec,
            decision,
            scan.trivy_version,
            sarif_path=out_dir / SARIF_FILE,
            json_path=out_dir / FINDINGS_FILE,
        )
        write_json(out_dir / GATE_FILE, decision.to_json())
        promotion = promote(engine, spec, build.image_id) if decision.passed else None
        if promotion is not None:
            record = {"image_id": promotion.image_id, "refs": list(promotion.refs)}
            write_json(run.image_dir(spec.name) / PROMOTION_FILE, record)
        outcome = ImageOutcome(spec, build, check, scan, decision, promotion)
        if history:
            record_history(
                catalog.output_dir / "history",
                spec.name,
                build.image_id,
                decision,
                db_updated_at=scan.db_updated_at,
                trivy_version=scan.trivy_version,
            )
        outcomes.append(outcome)
    summary = render_summary(
        [
            ImageSummary(o.spec.name, o.decision.findings, o.decision.passed, o.decision.reasons)
            for o in outcomes
        ]
    )
    write_text_atomic(run.path / SUMMARY_FILE, summary)
    append_step_summary(summary)
    return RunOutcome(run, tuple(outcomes), summary)


def load_findings_record(path: Path) -> tuple[dict[str, object], list[Finding]]:
    """A scan.json or check.json record and its findings, validated."""

    from hardening.errors import Location, ReportInputError
    from hardening.report.jsonreport import parse_findings

    doc = read_user_json(path, error=ReportInputError, what="the record", missing="no such file")
    if not isinstance(doc, dict):
        raise ReportInputError("expected a JSON object", location=Location(path))
    return doc, parse_findings(doc.get("findings"), source=path)


@dataclass(frozen=True)
class ReportOutcome:
    decision: GateDecision
    summary: str


def report_scan(
    catalog: Catalog,
    spec: ImageSpec,
    scan_dir: Path,
    gate: GatePolicy,
    *,
    sarif_path: Path,
    markdown_path: Path | None,
    json_path: Path | None,
    history_dir: Path | None,
    today: date | None = None,
) -> ReportOutcome:
    """Reports and a gate decision for a scan made apart from `harden run` (`harden scan --out`).

    Without the image's facts, findings are located from the Dockerfile text alone.
    """
    rendered = render_checked(spec, catalog.root)
    record, scanned = load_findings_record(scan_dir / SCAN_FILE)
    locator = Locator(rendered, None)
    scanner_findings = [locate_scanner_finding(locator, replace(f, image=spec.name)) for f in scanned]
    policy_findings: list[Finding] = []
    fail_level = Severity.HIGH
    check_file = scan_dir / CHECK_FILE
    if check_file.is_file():
        check_record, policy_findings = load_findings_record(check_file)
        fail_level = Severity.parse(str(check_record.get("fail_level", "high")))
    decision = _decide(spec, gate, scanner_findings, policy_findings, fail_level, today)
    version = str(record.get("trivy_version") or "unknown")
    write_image_reports(catalog, spec, decision, version, sarif_path=sarif_path, json_path=json_path)
    summary = render_summary([ImageSummary(spec.name, decision.findings, decision.passed, decision.reasons)])
    if markdown_path is not None:
        write_text_atomic(markdown_path, summary)
    if history_dir is not None:
        record_history(
            history_dir,
            spec.name,
            str(record.get("image_id") or ""),
            decision,
            db_updated_at=str(record.get("db_updated_at") or "") or None,
            trivy_version=version,
        )
    return ReportOutcome(decision, summary)
