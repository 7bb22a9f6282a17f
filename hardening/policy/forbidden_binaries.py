"""Programs that must not ship, found by file name and by Go build info (a renamed gosu is gosu)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import ClassVar

from hardening.findings import Finding, Severity
from hardening.inspect.facts import Binary
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import Options, ProgramsSection, Section
from hardening.strict import ListOf, Text, typed

FORBIDDEN = "HARDEN-BINARY-FORBIDDEN"

GO_MODULE_PATH = Text(r"^[A-Za-z0-9][A-Za-z0-9._~/-]{0,255}$")


@dataclass(frozen=True)
class ForbiddenSection(ProgramsSection):
    go_modules: tuple[str, ...] = field(default=(), metadata=typed(ListOf(GO_MODULE_PATH)))


@dataclass(frozen=True)
class Forbidden(Options[ForbiddenSection]):
    """Program names and Go module paths; later files add to both lists."""

    section: ClassVar[type[Section]] = ForbiddenSection
    names: frozenset[str] = frozenset()
    go_modules: frozenset[str] = frozenset()

    def merged(self, section: ForbiddenSection) -> Forbidden:
        return Forbidden(
            self.names | frozenset(section.names), self.go_modules | frozenset(section.go_modules)
        )


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


class ForbiddenBinaries(ImageCheck[Forbidden]):
    id = "forbidden_binaries"
    rules = ((FORBIDDEN, "A forbidden program (by file name, program name or Go module) is in the image."),)
    default_severity = Severity.CRITICAL
    options_type = Forbidden

    def programs(self, options: Forbidden) -> frozenset[str]:
        return options.names

    def check_image(self, ctx: ImageContext[Forbidden]) -> list[Finding]:
        findings: list[Finding] = []
        names = ctx.options.names
        for binary in ctx.facts.binaries:
            file_name = posixpath.basename(binary.path)
            module = go_module_match(binary, ctx.options.go_modules)
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
            findings.append(
                ctx.finding(
                    FORBIDDEN,
                    f"{binary.path}{link} is {how}, which this policy forbids",
                    title=f"Forbidden program {program} in the image",
                    where=ctx.locate_path(binary.path, binary.layer),
                    package=program,
                    image_path=binary.path,
                    layer=ctx.layer_digest(binary.layer),
                    properties=(("matched_by", ",".join(m.value for m in binary.matched_by)),),
                )
            )
        return findings
