"""The pending-update stage: one interface; implementations in sibling modules, registered in
``registry``.

A scanner says which known vulnerabilities match an image; an update source says what the
image's own package archive carries *now* that the image lacks — no vulnerability database
involved. Unlike a scanner, a source never turns the archive's faults into an exception: a mirror
that is down or a signature that does not verify is a named gap in the result, so the report can
say "not known" (and the gate fail closed where it depends on it) instead of the run stopping or,
worse, reading as "up to date".
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hardening.base import BaseSpec
from hardening.findings import Finding, ToolInfo
from hardening.scan.interface import ScanTarget


class CheckState(StrEnum):
    """How much a check could establish."""

    COMPLETE = "complete"  # every installed package compared
    PARTIAL = "partial"  # compared, with named gaps (packages not compared, CVE lists unknown)
    UNAVAILABLE = "unavailable"  # nothing is known: the archive or the image could not be read


@dataclass(frozen=True)
class PendingCheck:
    """What one update source found for one image.

    ``findings`` are ``HARDEN-REBUILD-PENDING`` (one per package with a newer version) and
    ``HARDEN-REBUILD-UNKNOWN`` (one per gap that leaves a pending update possible), each marked
    with ``tool``. ``installed`` maps each source package to its installed version: what a later
    release is checked against to tell which pending updates it shipped. ``record`` is the
    source's own detailed record (``harden outdated``'s), kept beside the findings.
    """

    source: str  # the registry name
    tool: ToolInfo
    state: CheckState
    checked_at: datetime
    findings: tuple[Finding, ...]
    suite: str | None = None
    unavailable: str | None = None  # why nothing is known (state UNAVAILABLE)
    installed: Mapping[str, str] = field(default_factory=dict)
    record: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False


class UpdateSource(abc.ABC):
    """Something that knows which newer packages an image could have."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The registry name, also the name of its record and of its SARIF run's tool."""

    @abc.abstractmethod
    def prepare(self) -> ToolInfo:
        """Check what the source needs locally (programs, keyrings) before anything is built.

        Raise the stage's error (exit 3) for a missing program; an unreachable archive is not
        a preparation fault — it is a gap of each check.
        """

    def lookup(self, target: ScanTarget, base: BaseSpec | None) -> PendingCheck | None:
        """The answer without reading the image, or None; ``target.tar_path`` need not exist.

        Lets `harden scan` skip `docker save` when neither the image nor the archive changed.
        """
        return None

    @abc.abstractmethod
    def check(self, target: ScanTarget, base: BaseSpec | None) -> PendingCheck:
        """Compare the saved image ``target`` with the archive now.

        ``base`` is the catalog's base of the image, if any (a mirror the image does not name
        comes from it). Faults of the archive are gaps in the result, never exceptions; only a
        fault of this machine (the image tar unreadable, the disk full) raises.
        """
