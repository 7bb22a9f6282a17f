"""An image without HEALTHCHECK gives orchestrators nothing to tell "up" from "working"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hardening.findings import Finding, Severity
from hardening.policy.interface import (
    CheckContext,
    DockerfileCheck,
    DockerfileContext,
    ImageCheck,
    ImageContext,
)
from hardening.policy.options import NoOptions

if TYPE_CHECKING:  # the Dockerfile side is loaded by whoever hands a check a Dockerfile
    from hardening.dockerfile import Instruction
    from hardening.locate import Locator, Where

MISSING = "HARDEN-HEALTHCHECK-MISSING"


class Healthcheck(ImageCheck[NoOptions], DockerfileCheck[NoOptions]):
    """Judged on the image when there is one (a base image's HEALTHCHECK counts), else on the
    final stage of the Dockerfile."""

    id = "healthcheck"
    rules = ((MISSING, "The image has no HEALTHCHECK, or disables it with HEALTHCHECK NONE."),)
    default_severity = Severity.LOW
    options_type = NoOptions

    def check_image(self, ctx: ImageContext[NoOptions]) -> list[Finding]:
        check = ctx.facts.config.healthcheck
        if check is not None and not check.disabled and check.test:
            return []
        return [_missing(ctx, _where(ctx.locator) if ctx.locator is not None else None)]

    def check_dockerfile(self, ctx: DockerfileContext[NoOptions]) -> list[Finding]:
        if ctx.facts is not None:
            return []  # the image was judged: it is what ships
        last = _last_healthcheck(ctx.locator)
        if last is not None and last.arguments.strip().upper() != "NONE":
            return []
        return [_missing(ctx, _where(ctx.locator))]


def _last_healthcheck(locator: Locator) -> Instruction | None:
    return next((i for i in reversed(locator.final_instructions) if i.keyword == "HEALTHCHECK"), None)


def _where(locator: Locator) -> Where:
    """The final stage's last HEALTHCHECK, else its FROM."""
    final = locator.dockerfile.final_stage
    anchor = _last_healthcheck(locator) or (final.from_instruction if final is not None else None)
    return locator.at(anchor)


def _missing(ctx: CheckContext[NoOptions], where: Where | None) -> Finding:
    return ctx.finding(
        MISSING,
        "the image defines no HEALTHCHECK (or disables it); add one to the final stage",
        title="No HEALTHCHECK",
        where=where,
    )
