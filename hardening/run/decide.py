"""From findings to a decision: scanner findings located in the repository, then the gate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from hardening.findings import Finding, Severity
from hardening.gate import GateDecision, GatePolicy, decide
from hardening.locate import PYTHON_KINDS, Locator, environment_of


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


def decide_image(
    image: str,
    gate: GatePolicy,
    baseline: frozenset[tuple[str, ...]],
    scanner_findings: Sequence[Finding],
    policy_findings: Sequence[Finding],
    policy_fail_level: Severity,
    today: date | None,
    *,
    pending_findings: Sequence[Finding] = (),
    pending_checked: bool = False,
) -> GateDecision:
    return decide(
        image,
        scanner_findings,
        policy_findings,
        gate,
        policy_fail_level=policy_fail_level,
        today=today,
        baseline=baseline,
        pending_findings=pending_findings,
        pending_checked=pending_checked,
    )
