"""World-writable directories without the sticky bit let any user replace others' files."""

from __future__ import annotations

from hardening.findings import Finding, Severity
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import AllowPaths

WORLD_WRITABLE = "HARDEN-WORLD-WRITABLE"


class WorldWritable(ImageCheck[AllowPaths]):
    id = "world_writable"
    rules = ((WORLD_WRITABLE, "A world-writable directory without the sticky bit."),)
    default_severity = Severity.MEDIUM
    options_type = AllowPaths

    def check_image(self, ctx: ImageContext[AllowPaths]) -> list[Finding]:
        findings: list[Finding] = []
        for directory in ctx.facts.world_writable_without_sticky:
            if ctx.options.allows(directory.path):
                continue
            findings.append(
                ctx.finding(
                    WORLD_WRITABLE,
                    f"{directory.path} is world-writable without the sticky bit (mode {directory.mode:04o})",
                    title="World-writable directory without sticky bit",
                    where=ctx.locate_path(directory.path, directory.layer),
                    image_path=directory.path,
                    layer=ctx.layer_digest(directory.layer),
                )
            )
        return findings
