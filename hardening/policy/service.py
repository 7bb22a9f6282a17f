"""Run the policy checks: on catalog candidates, on an image by reference, on a Dockerfile alone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardening.atomic import write_json
from hardening.catalog import ImageSpec
from hardening.engine.saved import require_image, saved_image
from hardening.errors import PolicyError, UsageError
from hardening.findings import HARDENING_TOOL, Finding, Severity, with_tool
from hardening.inspect.cache import default_cache_dir, inspect_cached
from hardening.inspect.facts import ImageFacts
from hardening.locate import Locator
from hardening.policy.config import Policy, binary_names, load_policies
from hardening.policy.interface import (
    Check,
    CheckConfig,
    DockerfileCheck,
    DockerfileContext,
    ImageCheck,
    ImageContext,
    PolicyView,
)
from hardening.render import RenderedDockerfile, render_checked
from hardening.run.store import CHECK_FILE, require_build
from hardening.userfile import read_user_text

if TYPE_CHECKING:  # the docker SDK is slow to import and only needed to talk to the engine
    from hardening.engine.client import Engine


@dataclass(frozen=True)
class CheckReport:
    image: str
    findings: tuple[Finding, ...]
    fail_level: Severity
    reference: str = ""
    policies: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(f.severity >= self.fail_level for f in self.findings)

    @property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= self.fail_level)

    def counts(self) -> dict[str, int]:
        return {s.label: sum(1 for f in self.findings if f.severity is s) for s in reversed(Severity)}

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": 1,
            "image": self.image,
            "reference": self.reference,
            "policies": list(self.policies),
            "fail_level": self.fail_level.label,
            "failed": self.failed,
            "counts": self.counts(),
            "findings": [f.to_json() for f in self.findings],
        }


def run_checks(
    policy: Policy,
    *,
    image: str,
    facts: ImageFacts | None,
    rendered: RenderedDockerfile | None,
) -> tuple[Finding, ...]:
    """Every enabled check of ``policy`` over what is known; findings sorted for stable output."""
    locator = Locator(rendered, facts) if rendered is not None else None
    findings: list[Finding] = []
    for check_id, config in policy.enabled():
        findings.extend(
            run_check(check_id.check_class()(), config, policy, image=image, facts=facts, locator=locator)
        )
    findings.sort(key=lambda f: (-f.severity, f.rule_id, f.image_path or "", f.message))
    return with_tool(findings, HARDENING_TOOL.name)


def run_check(
    check: Check[Any],
    config: CheckConfig[Any],
    policy: PolicyView,
    *,
    image: str,
    facts: ImageFacts | None,
    locator: Locator | None,
) -> list[Finding]:
    """One check over what is known: its image part when there are facts, its Dockerfile part
    when there is a Dockerfile. The image is what ships, so a Dockerfile finding at a line an
    image finding of the same check already points to adds nothing."""
    findings: list[Finding] = []
    if isinstance(check, ImageCheck) and facts is not None:
        findings.extend(check.check_image(ImageContext(image, config, facts, locator)))
    if isinstance(check, DockerfileCheck) and locator is not None:
        static = check.check_dockerfile(DockerfileContext(image, config, locator, policy, facts))
        covered = {f.location for f in findings}
        findings.extend(f for f in static if f.location not in covered)
    return findings


def inspect_ref(
    engine: Engine, ref: str, *, names: Iterable[str], reference: str | None = None
) -> ImageFacts:
    """Save ``ref`` to a private temporary file and inspect it; the file is always removed."""
    with saved_image(engine, ref, prefix="harden-check-") as archive:
        return inspect_cached(
            archive, reference=reference or ref, binary_names=names, cache_dir=default_cache_dir()
        )


def check_images(
    specs: Sequence[ImageSpec],
    engine: Engine,
    *,
    root: Path,
    output_dir: Path,
) -> list[CheckReport]:
    """Check each image's latest candidate; write ``check.json`` next to the build record."""
    # Every input is validated, and every image has a build, before the first image is saved.
    planned = [
        (
            spec,
            require_build(output_dir, spec.name),
            load_policies(root, spec.policies),
            render_checked(spec, root),
        )
        for spec in specs
    ]
    reports: list[CheckReport] = []
    for spec, build, policy, rendered in planned:
        facts = inspect_ref(engine, build.image_id, names=binary_names(policy), reference=build.candidate_ref)
        findings = run_checks(policy, image=spec.name, facts=facts, rendered=rendered)
        report = CheckReport(spec.name, findings, policy.fail_level, build.candidate_ref, policy.sources)
        write_json(build.run.image_dir(spec.name) / CHECK_FILE, report.to_json())
        reports.append(report)
    return reports


def check_ref(ref: str, engine: Engine, policies: Sequence[Path], out_dir: Path | None = None) -> CheckReport:
    """Check any local image by reference: image checks only, no Dockerfile to point into."""
    policy = _policy(policies)
    require_image(engine, ref)
    facts = inspect_ref(engine, ref, names=binary_names(policy))
    findings = run_checks(policy, image=ref, facts=facts, rendered=None)
    report = CheckReport(ref, findings, policy.fail_level, ref, policy.sources)
    if out_dir is not None:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in ref)
        target = out_dir / safe / CHECK_FILE
        write_json(target, report.to_json())
    return report


def dockerfile_as_rendered(path: Path, *, root: Path | None = None) -> RenderedDockerfile:
    """A Dockerfile that is not a catalog rendering: findings point at it, with no template line."""
    text = read_user_text(path, error=UsageError, what="the Dockerfile")
    shown = path
    if root is not None:
        try:
            shown = path.resolve().relative_to(root.resolve())
        except ValueError:
            shown = path
    count = len(text.splitlines())
    return RenderedDockerfile(
        image=shown.parent.name or "dockerfile",
        template=shown,
        path=shown,
        text=text,
        variables_hash="",
        line_map=(None,) * count,
    )


def check_dockerfile(
    path: Path, policies: Sequence[Path], *, rendered: RenderedDockerfile | None = None
) -> CheckReport:
    """Static checks only (Dockerfile lint, USER, HEALTHCHECK) on a Dockerfile."""
    policy = _policy(policies)
    rendered = rendered or dockerfile_as_rendered(path)
    findings = run_checks(policy, image=rendered.image, facts=None, rendered=rendered)
    return CheckReport(rendered.image, findings, policy.fail_level, rendered.path.as_posix(), policy.sources)


def _policy(policies: Sequence[Path]) -> Policy:
    if not policies:
        raise PolicyError("no policy file given", hint="pass --policy policies/default.yaml")
    return load_policies(Path.cwd(), policies)
