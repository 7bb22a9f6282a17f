"""Programs that must not ship, found by file name and by Go build info (a renamed gosu is gosu)."""

from __future__ import annotations

import posixpath

from hardening.findings import Finding
from hardening.inspect.facts import Binary
from hardening.policy.interface import Check, CheckContext

FORBIDDEN = "HARDEN-BINARY-FORBIDDEN"


def go_module_match(binary: Binary, modules: frozenset[str]) -> str | None:
    """The configured module a Go binary was built from (its main module or main package)."""
    if binary.go is None:
        return None
    candidates = [binary.go.main_package]
    if binary.go.main_module is not None:
        candidates.append(binary.go.main_module.path)
    for module in sorted(modules):
        for candidate in candidates:
            if candidate == module or candidate.startswith(module.rstrip("/") + "/"):
                return module
    return None


class ForbiddenBinaries(Check):
    id = "forbidden_binaries"
    rules = ((FORBIDDEN, "A forbidden program (by file name, program name or Go module) is in the image."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.facts is None:
            return []
        findings: list[Finding] = []
        names = ctx.config.names
        for binary in ctx.facts.binaries:
            file_name = posixpath.basename(binary.path)
            module = go_module_match(binary, ctx.config.go_modules)
            if module is not None:
                assert binary.go is not None  # noqa: S101 # nosec B101 - narrowing: matched on build info
                how = f"a Go binary built from {binary.go.main_package} ({binary.go.go_version})"
                program = binary.program
            elif binary.program in names:
                program = binary.program
                how = f"{program}" if file_name == program else f"{program} (file name {file_name})"
            elif file_name in names:
                program, how = file_name, file_name
            else:
                continue
            link = f" -> {binary.target}" if binary.target else ""
            where = ctx.locator.locate_path(binary.path, binary.layer) if ctx.locator else None
            findings.append(
                ctx.finding(
                    FORBIDDEN,
                    f"{binary.path}{link} is {how}, which this policy forbids",
                    title=f"Forbidden program {program} in the image",
                    where=where,
                    package=program,
                    image_path=binary.path,
                    layer=ctx.layer_digest(binary.layer),
                    properties=(("matched_by", ",".join(m.value for m in binary.matched_by)),),
                )
            )
        return findings
