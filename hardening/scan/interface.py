"""The scan stage: one interface; implementations in sibling modules, registered in ``registry``.

A scanner reads a saved image and returns findings marked with the tool that found them. Its
``ToolInfo`` (name, version, information URI, identity of the data it matched against) travels
with every result, so reports, history and the result cache say which tool said what.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from hardening.findings import Finding, ToolInfo


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
    findings: tuple[Finding, ...]  # each with ``tool`` == ``self.tool.name``
    tool: ToolInfo  # the tool, its version and the data it read for this result
    report_path: Path | None  # the scanner's raw report, if kept
    sbom_path: Path | None
    cached: bool
    packages: int


class Scanner(abc.ABC):
    """A vulnerability scanner of saved images."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The registry name (``harden run --scanner NAME``), also used in record file names."""

    @abc.abstractmethod
    def prepare(self, options: ScanOptions) -> ToolInfo:
        """Check the tool and its data before any image is saved; raise ``ScannerError``.

        Returns the tool as the scans will report it (version, data identity).
        """

    def lookup(self, target: ScanTarget, options: ScanOptions) -> ScanResult | None:
        """A stored result for this very image, or None; ``target.tar_path`` need not exist yet.

        Lets the caller skip `docker save` (seconds for a large image) when nothing changed.
        """
        return None

    @abc.abstractmethod
    def scan(self, target: ScanTarget, options: ScanOptions) -> ScanResult:
        """Scan ``target``; raise ``ScannerError`` on any fault, never return a partial result."""
