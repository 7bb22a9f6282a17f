"""The report stage: one interface, one module per format, registered in ``registry``.

A writer turns what a run decided about its images into one file. A format is written either
once per image (SARIF, the JSON record) or once per run (the Markdown summary); the registry
says which, and where it goes in a run directory.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hardening.findings import Finding, SourceLocation, ToolInfo
from hardening.freshness import AgeLimit


@dataclass(frozen=True)
class ImageReport:
    """Everything a report says about one image."""

    image: str
    findings: tuple[Finding, ...]  # every finding, suppressed ones marked
    tools: tuple[ToolInfo, ...]  # the tools that looked, in the order their results are shown
    passed: bool | None  # the gate's decision; None when no gate ran
    reasons: tuple[str, ...]
    fallback_location: SourceLocation  # where a finding without a known line points
    repo_root: Path | None  # to read the lines findings point at
    # keys of the findings the image's baseline accepts (``Finding.key``); the gate counts none
    baseline: frozenset[tuple[str, ...]] = frozenset()
    db_limit: AgeLimit | None = None  # the limit on the data's age that was checked; None: not known


class Writer(abc.ABC):
    @abc.abstractmethod
    def write(self, path: Path, reports: Sequence[ImageReport]) -> None:
        """Write ``reports`` to ``path`` atomically (one report for a per-image format)."""
