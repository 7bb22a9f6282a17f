"""Every report format, registered here and nowhere else.

Adding a format: its module (a ``Writer``) and one entry here — a member of ``ReportFormat``
and its case in ``spec``. `harden run` writes every format into the run directory and
`harden report` gains a ``--<format> FILE`` option, both by looping over this enum. The
implementations are imported only when a report is written (SARIF's object model is slow to
import, and `harden --help` should not pay for it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from hardening.report.interface import Writer
from hardening.run.store import FINDINGS_FILE, SARIF_FILE, SARIF_FULL_FILE, SUMMARY_FILE


class Scope(enum.Enum):
    IMAGE = "image"  # one file per image: <run>/<image>/<run_file>
    RUN = "run"  # one file per run: <run>/<run_file>


@dataclass(frozen=True)
class FormatSpec:
    run_file: str  # its name in a run directory
    scope: Scope
    help: str  # for `harden report --<format> FILE`
    required: bool  # whether `harden report` needs it
    load: Callable[[], Writer]


class ReportFormat(enum.Enum):
    SARIF = "sarif"
    SARIF_FULL = "sarif-full"
    JSON = "json"
    MARKDOWN = "markdown"

    @property
    def spec(self) -> FormatSpec:
        match self:
            case ReportFormat.SARIF:
                return FormatSpec(
                    SARIF_FILE,
                    Scope.IMAGE,
                    "SARIF 2.1.0 for GitHub code scanning: suppressed and baselined results left "
                    "out (code scanning ignores SARIF suppressions), counted in each run's properties.",
                    True,
                    _sarif,
                )
            case ReportFormat.SARIF_FULL:
                return FormatSpec(
                    SARIF_FULL_FILE,
                    Scope.IMAGE,
                    "SARIF with every result, suppressed and baselined ones marked: the complete record.",
                    False,
                    _sarif_full,
                )
            case ReportFormat.JSON:
                return FormatSpec(FINDINGS_FILE, Scope.IMAGE, "Every finding as JSON.", False, _json)
            case ReportFormat.MARKDOWN:
                return FormatSpec(SUMMARY_FILE, Scope.RUN, "A Markdown summary.", False, _markdown)
            case _:
                assert_never(self)

    def writer(self) -> Writer:
        return self.spec.load()


def _sarif() -> Writer:
    from hardening.report.sarif.writer import SarifWriter

    return SarifWriter(complete=False)


def _sarif_full() -> Writer:
    from hardening.report.sarif.writer import SarifWriter

    return SarifWriter(complete=True)


def _json() -> Writer:
    from hardening.report.jsonreport import JsonWriter

    return JsonWriter()


def _markdown() -> Writer:
    from hardening.report.markdown import MarkdownWriter

    return MarkdownWriter()
