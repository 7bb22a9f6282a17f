"""Compilers, linkers and build drivers belong in builder stages, never in the final image."""

from __future__ import annotations

from hardening.findings import Finding
from hardening.policy.interface import Check, CheckContext

BUILD_TOOL = "HARDEN-BUILD-TOOL"


class BuildTools(Check):
    id = "build_tools"
    rules = ((BUILD_TOOL, "A compiler, linker or build tool is present in the final image."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.facts is None:
            return []
        findings: list[Finding] = []
        for binary in ctx.facts.binaries:
            if binary.program not in ctx.config.names:
                continue
            link = f" -> {binary.target}" if binary.target else ""
            where = ctx.locator.locate_path(binary.path, binary.layer) if ctx.locator else None
            findings.append(
                ctx.finding(
                    BUILD_TOOL,
                    f"build tool {binary.program} at {binary.path}{link} is in the final image",
                    title=f"Build tool {binary.program} in the final image",
                    where=where,
                    package=binary.program,
                    image_path=binary.path,
                    layer=ctx.layer_digest(binary.layer),
                )
            )
        return findings
