"""One error tree for the whole tool.

Every error carries what failed, where (file:line:field, image, rule) and what to do next. The CLI
catches ``HardeningError`` once, prints ``diagnostics()`` and exits with ``exit_code``; nothing
below the CLI prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ExitCode:
    """The stable exit codes of ``harden``."""

    OK = 0
    GATE_FAILED = 1
    BAD_INPUT = 2
    INFRASTRUCTURE = 3
    INTERRUPTED = 130


@dataclass(frozen=True)
class Location:
    """Where in a user's file an error was found."""

    path: Path | str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = str(self.path)
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f": {self.field}"
        return text


class HardeningError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = ExitCode.INFRASTRUCTURE
    title = "hardening failed"

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        hint: str | None = None,
        details: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint
        self.details = details

    def diagnostics(self) -> str:
        """A text for the person reading the terminal: what, where, what to do."""
        lines = [f"error: {self.title}"]
        where = f"{self.location}: " if self.location else ""
        lines.append(f"  {where}{self.message}")
        if self.details:
            lines.append("")
            lines.extend(f"  | {line}" for line in self.details.rstrip().splitlines())
        if self.hint:
            lines.append("")
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}"


class BadInput(HardeningError):
    """Something the user wrote is wrong; nothing was built, tagged or pushed."""

    exit_code = ExitCode.BAD_INPUT
    title = "bad input"


class ConfigError(BadInput):
    title = "invalid configuration"


class AdvisoryError(ConfigError):
    title = "invalid advisory"


class RenderError(BadInput):
    title = "cannot render Dockerfile"


class DockerfileError(BadInput):
    title = "the engine rejected the Dockerfile"


class PolicyError(BadInput):
    title = "invalid policy"


class ReportInputError(BadInput):
    title = "invalid report input"


class UsageError(BadInput):
    title = "usage"


class SigningKeyError(BadInput):
    title = "unusable signing key"


class NotVerified(HardeningError):
    """The evidence of an image is missing, broken or does not verify: a definite "no"."""

    exit_code = ExitCode.GATE_FAILED
    title = "not verified"


class InfrastructureError(HardeningError):
    """A tool or service we depend on failed; the result is unknown, never clean."""

    exit_code = ExitCode.INFRASTRUCTURE
    title = "tool or infrastructure failure"


class EngineError(InfrastructureError):
    title = "Docker engine unavailable"


class BaseImageError(InfrastructureError):
    title = "cannot build the base image"


class BuildError(InfrastructureError):
    title = "image build failed"


class InspectError(InfrastructureError):
    title = "cannot inspect image"


class ScannerError(InfrastructureError):
    title = "vulnerability scan failed"


class DatabaseError(InfrastructureError):
    title = "cannot write the vulnerability database"


class DatabaseInvalid(InfrastructureError):
    """A vulnerability DB (in the cache, or served by a registry) is not one Trivy can use."""

    title = "the vulnerability database is not usable"


class DatabaseStale(InfrastructureError):
    """The vulnerability DB a scan would use (or used) is older than the gate allows."""

    title = "the vulnerability database is too old"


class DatabasePullError(InfrastructureError):
    title = "cannot pull the vulnerability database"


class RegistryError(InfrastructureError):
    title = "registry operation failed"


class OutputError(InfrastructureError):
    title = "cannot write output"


class ArchiveError(InfrastructureError):
    """The Debian archive could not be read: mirror down or slow, a file missing or cut short."""

    title = "cannot read the Debian archive"


class ArchiveTrustError(ArchiveError):
    """Archive data failed verification: a signature, a hash or a size does not match."""

    title = "Debian archive data failed verification"


class InputUnavailable(InfrastructureError):
    """A rebuild needs an input that can no longer be had (a package version, a revision, a base)."""

    title = "an input of the build can no longer be had"
