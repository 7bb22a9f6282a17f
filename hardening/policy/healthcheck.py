"""An image without HEALTHCHECK gives orchestrators nothing to tell "up" from "working"."""

from __future__ import annotations

from hardening.findings import Finding
from hardening.policy.interface import Check, CheckContext

MISSING = "HARDEN-HEALTHCHECK-MISSING"


class Healthcheck(Check):
    id = "healthcheck"
    rules = ((MISSING, "The image has no HEALTHCHECK, or disables it with HEALTHCHECK NONE."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        locator = ctx.locator
        last = None
        if locator is not None:
            last = next((i for i in reversed(locator.final_instructions) if i.keyword == "HEALTHCHECK"), None)
        if ctx.facts is not None:
            check = ctx.facts.config.healthcheck
            missing = check is None or check.disabled or not check.test
        elif locator is not None:
            missing = last is None or last.arguments.strip().upper() == "NONE"
        else:
            return []
        if not missing:
            return []
        where = None
        if locator is not None:
            final = locator.dockerfile.final_stage
            anchor = last or (final.from_instruction if final is not None else None)
            where = locator.at(anchor)
        return [
            ctx.finding(
                MISSING,
                "the image defines no HEALTHCHECK (or disables it); add one to the final stage",
                title="No HEALTHCHECK",
                where=where,
            )
        ]
