"""`harden run` over a validated plan: build → inspect + check → scan → report → gate → promote.

Everything was validated when the plan was made, so a fault here is the engine's, a tool's or
the disk's. Each candidate is saved once; the same tarball feeds the inspector and every
scanner. Release tags move only for images whose gate passed; a failing image leaves its
previous release tags untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.atomic import write_json
from hardening.build.interface import BuildResult
from hardening.build.service import LineSink, build_images
from hardening.engine.saved import saved_image
from hardening.findings import HARDENING_TOOL
from hardening.gate import GateDecision
from hardening.inspect.cache import default_cache_dir, inspect_cached
from hardening.inspect.facts import ImageFacts
from hardening.locate import Locator
from hardening.pending.interface import PendingCheck
from hardening.pending.record import write_pending_record
from hardening.pending.updates import record_seen
from hardening.policy.config import binary_names
from hardening.policy.service import CheckReport, run_checks
from hardening.release import Promotion, promote
from hardening.report.interface import ImageReport
from hardening.run.decide import decide_image, locate_scanner_finding
from hardening.run.outputs import (
    append_step_summary,
    record_history,
    step_summary,
    write_image_reports,
    write_run_reports,
)
from hardening.run.plan import PlannedImage, PlannedScanner, RunPlan
from hardening.run.store import (
    CHECK_FILE,
    GATE_FILE,
    PENDING_FILE,
    PROMOTION_FILE,
    RunDir,
    sbom_file,
    scan_file,
)
from hardening.scan.interface import ScanResult, ScanTarget
from hardening.scan.service import write_scan_record

if TYPE_CHECKING:  # the docker SDK is slow to import; the caller hands us a connected engine
    from hardening.engine.client import Engine


@dataclass(frozen=True)
class RunContext:
    """What a run needs besides its plan: the engine, where to write, where progress goes."""

    plan: RunPlan
    engine: Engine
    run: RunDir
    sink: Callable[[str], LineSink] | None = None


@dataclass(frozen=True)
class ImageOutcome:
    image: PlannedImage
    build: BuildResult
    check: CheckReport
    scans: tuple[ScanResult, ...]  # one per scanner of the plan, in its order
    decision: GateDecision
    promotion: Promotion | None
    checks: tuple[PendingCheck, ...] = ()  # one per update source of the plan, in its order

    @property
    def vulnerabilities(self) -> int:
        return sum(len(scan.findings) for scan in self.scans)

    @property
    def scans_cached(self) -> bool:
        return all(scan.cached for scan in self.scans)


@dataclass(frozen=True)
class RunOutcome:
    run: RunDir
    images: tuple[ImageOutcome, ...]
    summary: str

    @property
    def passed(self) -> bool:
        return all(outcome.decision.passed for outcome in self.images)


def execute(ctx: RunContext) -> RunOutcome:
    plan = ctx.plan
    specs = [image.spec for image in plan.images]
    rendered = {image.name: image.rendered for image in plan.images}
    builds = build_images(
        specs, rendered, ctx.engine, ctx.run, root=plan.root, source=plan.source, sink=ctx.sink
    )
    outcomes: list[ImageOutcome] = []
    reports: list[ImageReport] = []
    for image, build in zip(plan.images, builds, strict=True):
        outcome = _evaluate(ctx, image, build)
        reports.append(_report_of(plan, outcome))
        outcomes.append(outcome)
    write_run_reports(ctx.run, reports)
    summary = step_summary(reports)
    append_step_summary(summary)
    return RunOutcome(ctx.run, tuple(outcomes), summary)


def _evaluate(ctx: RunContext, image: PlannedImage, build: BuildResult) -> ImageOutcome:
    plan = ctx.plan
    out_dir = ctx.run.image_dir(image.name)
    facts, scans, checks = _inspect_and_scan(ctx, image, build)
    policy_findings = run_checks(image.policy, image=image.name, facts=facts, rendered=image.rendered)
    check = CheckReport(
        image.name, policy_findings, image.policy.fail_level, build.candidate_ref, image.policy.sources
    )
    write_json(out_dir / CHECK_FILE, check.to_json())
    for planned, scan in zip(plan.scanners, scans, strict=True):
        write_scan_record(
            out_dir / scan_file(planned.scanner.name, primary=planned.primary),
            image.name,
            build.candidate_ref,
            build.image_id,
            scan,
            plan.scan_options,
            scanner=planned.scanner.name,
        )
    if plan.sources:
        write_pending_record(
            out_dir / PENDING_FILE,
            image=image.name,
            ref=build.candidate_ref,
            image_id=build.image_id,
            checks=checks,
        )
    locator = Locator(image.rendered, facts)
    scanner_findings = [locate_scanner_finding(locator, f) for scan in scans for f in scan.findings]
    pending_findings = [locate_scanner_finding(locator, f) for check in checks for f in check.findings]
    decision = decide_image(
        image.name,
        plan.gate,
        image.baseline,
        scanner_findings,
        policy_findings,
        image.policy.fail_level,
        plan.today,
        pending_findings=pending_findings,
        pending_checked=bool(plan.sources),
    )
    outcome = ImageOutcome(image, build, check, scans, decision, None, checks)
    write_image_reports(ctx.run, _report_of(plan, outcome))
    write_json(out_dir / GATE_FILE, decision.to_json())
    promotion = promote(ctx.engine, image.spec, build.image_id) if decision.passed else None
    if promotion is not None:
        write_json(out_dir / PROMOTION_FILE, {"image_id": promotion.image_id, "refs": list(promotion.refs)})
    if plan.record_history:
        for scan in scans:
            record_history(plan.history_dir, image.name, build.image_id, decision, scan.tool)
        record_seen(plan.history_dir, image.name, pending_findings, now=datetime.now(UTC))
    return replace(outcome, promotion=promotion)


def _inspect_and_scan(
    ctx: RunContext, image: PlannedImage, build: BuildResult
) -> tuple[ImageFacts, tuple[ScanResult, ...], tuple[PendingCheck, ...]]:
    """Save the candidate once; the inspector, every scanner and every update source read the
    same tarball."""
    out_dir = ctx.run.image_dir(image.name)
    with saved_image(ctx.engine, build.image_id, prefix="hardening-run-") as tar_path:
        facts = inspect_cached(
            tar_path,
            reference=build.candidate_ref,
            binary_names=binary_names(image.policy),
            cache_dir=default_cache_dir(),
        )
        target = ScanTarget(build.image, build.candidate_ref, build.image_id, tar_path)
        scans = tuple(_scan(ctx.plan, planned, target, out_dir) for planned in ctx.plan.scanners)
        checks = tuple(planned.source.check(target, image.spec.base) for planned in ctx.plan.sources)
    return facts, scans, checks


def _scan(plan: RunPlan, planned: PlannedScanner, target: ScanTarget, out_dir: Path) -> ScanResult:
    options = replace(
        plan.scan_options, sbom_path=out_dir / sbom_file(planned.scanner.name, primary=planned.primary)
    )
    scanner = planned.scanner
    return scanner.lookup(target, options) or scanner.scan(target, options)


def _report_of(plan: RunPlan, outcome: ImageOutcome) -> ImageReport:
    decision = outcome.decision
    return ImageReport(
        image=outcome.image.name,
        findings=decision.findings,
        tools=(HARDENING_TOOL, *(scan.tool for scan in outcome.scans), *(c.tool for c in outcome.checks)),
        passed=decision.passed,
        reasons=decision.reasons,
        fallback_location=outcome.image.fallback_location,
        repo_root=plan.root,
        baseline=outcome.image.baseline,
        db_limit=plan.db_limit,
    )
