"""The scan stage: one interface, implementations in sibling modules, registered explicitly."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from hardening.findings import Finding


@dataclass(frozen=True)
class ScanTarget:
    """One image to scan, already saved as a `docker save` tarball."""

    image: str  # the catalog name (or the ref, for images outside the catalog)
    ref: str  # the tag the tarball was saved from
    image_id: str  # "sha256:…"; the report must be about this very image
    tar_path: Path


@dataclass(frozen=True, kw_only=True)
class ScanOptions:
    cache_dir: Path | None
    scanners: tuple[str, ...] = ("vuln",)
    timeout: float
    offline: bool = True
    skip_db_update: bool = True
    db_repository: str | None = None
    sbom_path: Path | None = None  # where to write a CycloneDX SBOM, if wanted


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    trivy_version: str
    db_updated_at: str | None
    report_path: Path | None  # the scanner's raw report, if kept
    sbom_path: Path | None
    cached: bool
    packages: int


class Scanner(abc.ABC):
    def prepare(self, options: ScanOptions) -> None:  # noqa: B027 - optional hook
        """Check the tool and its data before any image is saved; raise ``ScannerError``."""

    def lookup(self, target: ScanTarget, options: ScanOptions) -> ScanResult | None:
        """A stored result for this very image, or None; ``target.tar_path`` need not exist yet.

        Lets the caller skip `docker save` (seconds for a large image) when nothing changed.
        """
        return None

    @abc.abstractmethod
    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        """Scan ``target``; raise ``ScannerError`` on any fault, never return a partial result."""


class ScannerKind(enum.Enum):
    """Every scanner implementation, registered here and nowhere else."""

    TRIVY = "trivy"

    def create(self, *, binary: Path | None = None) -> Scanner:
        # Imported here: implementations import this module, not the other way round.
        match self:
            case ScannerKind.TRIVY:
                from hardening.scan.trivy import TrivyScanner

                return TrivyScanner(binary)
            case _:
                assert_never(self)
