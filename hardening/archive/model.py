"""What ``harden outdated`` finds, as plain frozen data: pending updates and named gaps.

A ``PendingUpdate`` carries everything a finding needs (package, source, both versions, the
pocket, the CVEs, when the archive was first seen carrying it), so turning one into a
``HARDEN-REBUILD-PENDING`` finding is a mapping, not another archive read. A ``Gap`` is what
could not be established, by name: the report says "not known" instead of "up to date".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, assert_never

from hardening.archive.index import IndexInfo

RECORD_SCHEMA_VERSION = 1


class GapKind(StrEnum):
    NOT_IN_ARCHIVE = "not-in-archive"
    BAD_VERSION = "bad-version"
    DEB_UNAVAILABLE = "deb-unavailable"
    DEB_HASH_MISMATCH = "deb-hash-mismatch"
    DEB_UNREADABLE = "deb-unreadable"
    NO_CHANGELOG = "no-changelog"
    CHANGELOG_TRUNCATED = "changelog-truncated"
    CHANGELOG_MISMATCH = "changelog-mismatch"
    CHANGELOG_TOO_SHORT = "changelog-too-short"

    @property
    def fault(self) -> bool:
        """A fault of the mirror or its files (the command exits 3), not a fact about the image."""
        match self:
            case (
                GapKind.DEB_UNAVAILABLE
                | GapKind.DEB_HASH_MISMATCH
                | GapKind.DEB_UNREADABLE
                | GapKind.CHANGELOG_TRUNCATED
                | GapKind.CHANGELOG_MISMATCH
            ):
                return True
            case (
                GapKind.NOT_IN_ARCHIVE
                | GapKind.BAD_VERSION
                | GapKind.NO_CHANGELOG
                | GapKind.CHANGELOG_TOO_SHORT
            ):
                return False
            case _:
                assert_never(self)

    @property
    def meaning(self) -> str:
        match self:
            case GapKind.NOT_IN_ARCHIVE:
                return "not compared: no pocket of the suite carries this package"
            case GapKind.BAD_VERSION:
                return "not compared: the installed version is not a Debian version"
            case GapKind.DEB_UNAVAILABLE:
                return "CVEs unknown: the .deb could not be downloaded"
            case GapKind.DEB_HASH_MISMATCH:
                return "CVEs unknown: the .deb does not match the signed index"
            case GapKind.DEB_UNREADABLE:
                return "CVEs unknown: the .deb could not be read"
            case GapKind.NO_CHANGELOG:
                return "CVEs unknown: no binary package of the source ships its changelog"
            case GapKind.CHANGELOG_TRUNCATED:
                return "CVEs unknown: the changelog is cut short or malformed"
            case GapKind.CHANGELOG_MISMATCH:
                return "CVEs unknown: the changelog is not the candidate version's"
            case GapKind.CHANGELOG_TOO_SHORT:
                return "CVEs may be missing: the changelog does not reach back to the installed version"
            case _:
                assert_never(self)


@dataclass(frozen=True)
class Gap:
    kind: GapKind
    subject: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "subject": self.subject,
            "detail": self.detail,
            "meaning": self.kind.meaning,
            "fault": self.kind.fault,
        }


@dataclass(frozen=True)
class PendingUpdate:
    """An installed binary package for which the archive has a newer version."""

    package: str
    architecture: str
    source: str
    installed_version: str
    installed_source_version: str
    candidate_version: str
    candidate_source_version: str
    # The pocket carrying the candidate (``bookworm-security``); ``security`` is also true when
    # the security pocket has any version newer than the installed one.
    suite: str
    pocket: str
    security: bool
    cves: tuple[str, ...]
    cves_known: bool
    first_seen: str
    uploaded: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "architecture": self.architecture,
            "source": self.source,
            "installed_version": self.installed_version,
            "installed_source_version": self.installed_source_version,
            "candidate_version": self.candidate_version,
            "candidate_source_version": self.candidate_source_version,
            "suite": self.suite,
            "pocket": self.pocket,
            "security": self.security,
            "cves": list(self.cves),
            "cves_known": self.cves_known,
            "first_seen": self.first_seen,
            "uploaded": self.uploaded,
        }


@dataclass(frozen=True)
class PocketState:
    """What was read of one pocket: its signed Release and indexes."""

    suite: str
    mirror: str
    date: datetime
    version: str
    release_sha256: str
    signers: tuple[str, ...]
    indexes: tuple[IndexInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "mirror": self.mirror,
            "date": self.date.isoformat(),
            "version": self.version,
            "release_sha256": self.release_sha256,
            "signers": list(self.signers),
            "indexes": [
                {
                    "path": i.path,
                    "sha256": i.sha256,
                    "size": i.size,
                    "unpacked_size": i.unpacked_size,
                    "paragraphs": i.paragraphs,
                    "cached": i.cached,
                }
                for i in self.indexes
            ],
        }


@dataclass(frozen=True)
class OutdatedReport:
    """One image compared with the archive."""

    image: str
    image_id: str
    suite: str
    origin: str
    checked_at: datetime
    compared: int
    pockets: tuple[PocketState, ...]
    pending: tuple[PendingUpdate, ...]
    gaps: tuple[Gap, ...]

    @property
    def security_pending(self) -> tuple[PendingUpdate, ...]:
        return tuple(p for p in self.pending if p.security)

    @property
    def faults(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.kind.fault)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": RECORD_SCHEMA_VERSION,
            "image": self.image,
            "image_id": self.image_id,
            "suite": self.suite,
            "origin": self.origin,
            "checked_at": self.checked_at.isoformat(),
            "compared": self.compared,
            "pockets": [p.to_json() for p in self.pockets],
            "pending": [p.to_json() for p in self.pending],
            "gaps": [g.to_json() for g in self.gaps],
            "summary": {
                "pending": len(self.pending),
                "security": len(self.security_pending),
                "sources": len({p.source for p in self.pending}),
                "cves": len({c for p in self.pending for c in p.cves}),
                "gaps": len(self.gaps),
                "faults": len(self.faults),
            },
        }
