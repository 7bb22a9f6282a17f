"""World-writable directories without the sticky bit let any user replace others' files."""

from __future__ import annotations

from hardening.findings import Finding
from hardening.policy.interface import Check, CheckContext
from hardening.policy.setuid import allowed

WORLD_WRITABLE = "HARDEN-WORLD-WRITABLE"


class WorldWritable(Check):
    id = "world_writable"
    rules = ((WORLD_WRITABLE, "A world-writable directory without the sticky bit."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.facts is None:
            return []
        findings: list[Finding] = []
        for directory in ctx.facts.world_writable_without_sticky:
            if allowed(directory.path, ctx.config.allow):
                continue
            where = ctx.locator.locate_path(directory.path, directory.layer) if ctx.locator else None
            findings.append(
                ctx.finding(
                    WORLD_WRITABLE,
                    f"{directory.path} is world-writable without the sticky bit (mode {directory.mode:04o})",
                    title="World-writable directory without sticky bit",
                    where=where,
                    image_path=directory.path,
                    layer=ctx.layer_digest(directory.layer),
                )
            )
        return findings
