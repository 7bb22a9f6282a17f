"""SARIF as a report format: one log per image, one run per tool.

Two logs of the same findings: the one for GitHub code scanning leaves out what the gate accepted
(suppressed and baselined findings), because code scanning ignores SARIF suppressions and would
show them as open alerts; the full one keeps every result, accepted ones marked. Their
fingerprints agree, result for result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hardening.report.interface import ImageReport, Writer
from hardening.report.sarif.build import build_sarif
from hardening.report.sarif.serialise import write_sarif


class SarifWriter(Writer):
    def __init__(self, *, complete: bool) -> None:
        self.complete = complete  # every result (the record), or only what the gate counts (upload)

    def write(self, path: Path, reports: Sequence[ImageReport]) -> None:
        (report,) = reports
        doc = build_sarif(
            report.image,
            report.findings,
            tools=report.tools,
            fallback_location=report.fallback_location,
            repo_root=report.repo_root,
            baseline=report.baseline,
            leave_out_accepted=not self.complete,
        )
        write_sarif(path, doc)
