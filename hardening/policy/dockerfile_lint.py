"""Static checks of the rendered Dockerfile: mistakes the image alone cannot show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hardening.findings import Finding, Severity
from hardening.policy.interface import CheckConfig, DockerfileCheck, DockerfileContext
from hardening.policy.options import NoOptions
from hardening.policy.package_floors import Floors, PackageFloors

if TYPE_CHECKING:  # the Dockerfile side is loaded by whoever hands a check a Dockerfile
    from hardening.dockerfile import Dockerfile, Instruction

PIP_REDIRECT = "HARDEN-DF-PIP-REDIRECT"
CURL_PIPE_SHELL = "HARDEN-DF-CURL-PIPE-SHELL"
ADD_URL = "HARDEN-DF-ADD-URL"
APT_UPGRADE = "HARDEN-DF-APT-UPGRADE"
UNPINNED_BASE = "HARDEN-DF-UNPINNED-BASE"

_SEGMENTS = re.compile(r"&&|\|\||;|\n")
_PIP_INSTALL = re.compile(r"\bpip[0-9.]*\s+(?:-\S+\s+)*install\b")
# `setuptools>=75` unquoted: the shell reads `>=75` as a redirect to the file "=75".
_SPECIFIER = re.compile(r"(?<![\w$])([A-Za-z][A-Za-z0-9._\-\[\],]*)\s*([<>]=?)\s*(=?\d[\w.*]*)")
_FETCH_PIPE = re.compile(r"\b(?:curl|wget)\b[^|]*\|\s*(?:sudo\s+)?(?:\S*/)?(?:ba|da|z|k|a)?sh\b")
_SHELL_OF_FETCH = re.compile(r"\b(?:ba|da|z|k)?sh\s+-c\s+\S*\$\(\s*(?:curl|wget)\b")
_APT_UPGRADE = re.compile(r"\bapt(?:-get)?\s+(?:(?:-o\s+\S+|-\S+)\s+)*(dist-upgrade|full-upgrade|upgrade)\b")
_URL = re.compile(r"^(?:https?|ftp)://|^git@", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One rule broken by one instruction; ``severity`` raises the check's own when set."""

    rule: str
    message: str
    severity: Severity | None = None


def mask_quotes(text: str) -> str:
    """``text`` with the inside of quoted strings replaced by ``_`` (positions preserved)."""
    out: list[str] = []
    quote: str | None = None
    for char in text:
        if quote is None:
            if char in "\"'":
                quote = char
            out.append(char)
        elif char == quote:
            quote = None
            out.append(char)
        else:
            out.append("_" if not char.isspace() else char)
    return "".join(out)


class DockerfileLint(DockerfileCheck[NoOptions]):
    id = "dockerfile"
    rules = (
        (PIP_REDIRECT, "An unquoted version specifier in `pip install` is read by the shell as a redirect."),
        (CURL_PIPE_SHELL, "A script downloaded with curl/wget is piped into a shell."),
        (ADD_URL, "ADD fetches a URL: no checksum, no cache control; download and verify in a RUN."),
        (APT_UPGRADE, "apt-get upgrade/dist-upgrade in a Dockerfile makes builds unreproducible."),
        (UNPINNED_BASE, "A stage is built FROM an image without a tag, or with :latest."),
    )
    default_severity = Severity.MEDIUM
    options_type = NoOptions

    def check_dockerfile(self, ctx: DockerfileContext[NoOptions]) -> list[Finding]:
        dockerfile, locator = ctx.dockerfile, ctx.locator
        floors = ctx.policy.config_of(PackageFloors)
        findings: list[Finding] = []
        for instruction in dockerfile.instructions:
            where = locator.at(instruction)
            for problem in self._problems(dockerfile, instruction, floors):
                title = next(text for rule_id, text in self.rules if rule_id == problem.rule)
                findings.append(
                    ctx.finding(
                        problem.rule,
                        f"line {instruction.line}: {problem.message}",
                        title=title.split(":")[0].rstrip("."),
                        where=where,
                        severity=max(ctx.config.severity, problem.severity) if problem.severity else None,
                        properties=(("instruction", instruction.keyword),),
                    )
                )
        return findings

    def _problems(
        self, dockerfile: Dockerfile, instruction: Instruction, floors: CheckConfig[Floors] | None
    ) -> list[Problem]:
        if instruction.keyword == "RUN" and instruction.exec_form is None:
            return run_problems(instruction.script, floors)
        if instruction.keyword == "ADD":
            sources = instruction.words[:-1]
            return [
                Problem(ADD_URL, f"ADD downloads {source} without verifying it")
                for source in sources
                if _URL.match(source)
            ]
        if instruction.keyword == "FROM":
            problem = unpinned_base(dockerfile, instruction)
            return [Problem(UNPINNED_BASE, problem)] if problem else []
        return []


def run_problems(command: str, floors: CheckConfig[Floors] | None = None) -> list[Problem]:
    """The problems of one shell script. ``floors``: the policy's package floors, when it has
    them; an unquoted specifier of a floored package means the floor is not applied, and is as
    severe as a package below its floor."""
    problems: list[Problem] = []
    masked = mask_quotes(command)
    for segment in _SEGMENTS.split(masked):
        install = _PIP_INSTALL.search(segment)
        if install is None:
            continue
        for match in _SPECIFIER.finditer(segment[install.end() :]):
            problems.append(_redirect(match, floors))
    if _FETCH_PIPE.search(masked) or _SHELL_OF_FETCH.search(command):
        problems.append(
            Problem(CURL_PIPE_SHELL, "a downloaded script is run by a shell without verification")
        )
    upgrade = _APT_UPGRADE.search(masked)
    if upgrade:
        problems.append(
            Problem(
                APT_UPGRADE,
                f"apt-get {upgrade.group(1)} pulls whatever the archive has today; update the base",
            )
        )
    return problems


def _redirect(match: re.Match[str], floors: CheckConfig[Floors] | None) -> Problem:
    name = match.group(1)
    spec = f"{name}{match.group(2)}{match.group(3)}"
    floor = floors.options.floor_of(name.split("[", 1)[0]) if floors is not None else None
    if floor is None or floors is None:
        return Problem(
            PIP_REDIRECT,
            f"`pip install {spec}` is unquoted: the shell installs {name} at any "
            f"version and writes pip's output to a file; quote it: '{spec}'",
        )
    return Problem(
        PIP_REDIRECT,
        f"`pip install {spec}` is unquoted: the shell installs {name} at any version and writes "
        f"pip's output to a file, so the policy's floor {floor.package} >= {floor.minimum} is not "
        f"applied; quote it: '{spec}'",
        floors.severity,
    )


def unpinned_base(dockerfile: Dockerfile, instruction: Instruction) -> str | None:
    words = instruction.arguments.split()
    if not words:
        return None
    raw = words[0]
    image = dockerfile.expand(raw, dockerfile.global_defaults())
    if not image or image.lower() == "scratch" or "$" in image:
        return None
    previous = [s for s in dockerfile.stages if s.from_instruction.line < instruction.line]
    if any(s.name is not None and s.name.lower() == image.lower() for s in previous):
        return None
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"FROM {image} has no tag, so it means :latest"
    if last.rsplit(":", 1)[1] == "latest":
        return f"FROM {image} uses :latest, which moves"
    return None
