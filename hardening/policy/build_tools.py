"""Compilers, linkers and build drivers belong in builder stages, never in the final image."""

from __future__ import annotations

from hardening.findings import Finding, Severity
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import Programs

BUILD_TOOL = "HARDEN-BUILD-TOOL"


class BuildTools(ImageCheck[Programs]):
    id = "build_tools"
    rules = ((BUILD_TOOL, "A compiler, linker or build tool is present in the final image."),)
    default_severity = Severity.HIGH
    options_type = Programs

    def programs(self, options: Programs) -> frozenset[str]:
        return options.names

    def check_image(self, ctx: ImageContext[Programs]) -> list[Finding]:
        findings: list[Finding] = []
        for binary in ctx.facts.binaries:
            if binary.program not in ctx.options.names:
                continue
            link = f" -> {binary.target}" if binary.target else ""
            findings.append(
                ctx.finding(
                    BUILD_TOOL,
                    f"build tool {binary.program} at {binary.path}{link} is in the final image",
                    title=f"Build tool {binary.program} in the final image",
                    where=ctx.locate_path(binary.path, binary.layer),
                    package=binary.program,
                    image_path=binary.path,
                    layer=ctx.layer_digest(binary.layer),
                )
            )
        return findings
