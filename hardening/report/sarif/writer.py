"""SARIF as a report format: one log per image, one run per tool."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hardening.report.interface import ImageReport, Writer
from hardening.report.sarif.build import build_sarif
from hardening.report.sarif.serialise import write_sarif


class SarifWriter(Writer):
    def write(self, path: Path, reports: Sequence[ImageReport]) -> None:
        (report,) = reports
        doc = build_sarif(
            report.image,
            report.findings,
            tools=report.tools,
            fallback_location=report.fallback_location,
            repo_root=report.repo_root,
        )
        write_sarif(path, doc)
