"""Every installed package of an image compared with the archive's current candidates.

Versions are ordered by Debian's rules (python-debian, checked against ``dpkg --compare-versions``
in the tests). A package is pending when any pocket carries a newer version; the candidate is
the newest across the pockets and its pocket is named; it is a security update when the
security pocket has a version newer than the installed one. The CVE ids are those the source's
changelog names between the installed and the candidate source versions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from debian.debian_support import Version

from hardening.archive.cache import ArchiveCache
from hardening.archive.changelog import ChangelogGap, SourceChangelog, read_changelog
from hardening.archive.fetch import Fetcher
from hardening.archive.image import ImageState
from hardening.archive.index import Candidate
from hardening.archive.model import Gap, GapKind, OutdatedReport, PendingUpdate, PocketState
from hardening.archive.snapshot import ArchiveTarget, Pocket, Snapshot, open_snapshot
from hardening.inspect.dpkg import DpkgPackage


class ChangelogMode(StrEnum):
    """Which pending updates have their changelog read for CVE ids."""

    ALL = "all"
    SECURITY = "security"
    NONE = "none"

    def wants(self, security: bool) -> bool:
        match self:
            case ChangelogMode.ALL:
                return True
            case ChangelogMode.SECURITY:
                return security
            case ChangelogMode.NONE:
                return False
            case _:
                assert_never(self)


@dataclass(frozen=True)
class ArchiveAccess:
    """How the archive is reached: downloads, the cache and the keyrings trusted to sign it."""

    fetcher: Fetcher
    cache: ArchiveCache
    keyrings: tuple[Path, ...]
    now: datetime | None = None
    # First sightings known from elsewhere (the committed update history), by sighting key: a
    # fresh machine's empty cache must not make an old update look new.
    known_sightings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Found:
    package: DpkgPackage
    candidate: Candidate
    pocket: Pocket
    security: bool


def check_image(
    state: ImageState,
    target: ArchiveTarget,
    access: ArchiveAccess,
    *,
    changelogs: ChangelogMode = ChangelogMode.ALL,
) -> OutdatedReport:
    """Compare ``state``'s packages with the three pockets of ``target``."""
    now = access.now or datetime.now(UTC)
    snapshot = open_snapshot(
        target,
        access.fetcher,
        access.cache,
        access.keyrings,
        packages={p.name for p in state.packages},
        sources={p.source_name for p in state.packages},
        now=now,
    )
    gaps: list[Gap] = []
    found: list[_Found] = []
    for package in state.packages:
        outcome = _compare(package, snapshot)
        if isinstance(outcome, Gap):
            gaps.append(outcome)
        elif outcome is not None:
            found.append(outcome)
    logs = _changelogs(found, snapshot, access, changelogs, gaps)
    seen = access.cache.first_seen(
        {_sighting(f): _earliest(access.known_sightings, f, _release_date(snapshot, f.pocket)) for f in found}
    )
    pending = tuple(_pending(f, logs, seen[_sighting(f)], changelogs, gaps) for f in found)
    return OutdatedReport(
        image=state.reference,
        image_id=state.image_id,
        suite=target.suite,
        origin=target.origin,
        checked_at=now,
        compared=len(state.packages),
        pockets=pocket_states(snapshot),
        pending=pending,
        gaps=tuple(gaps),
    )


def pocket_states(snapshot: Snapshot) -> tuple[PocketState, ...]:
    return tuple(
        PocketState(
            suite=view.release.suite,
            mirror=view.release.mirror,
            date=view.release.date,
            version=view.release.version,
            release_sha256=view.release.sha256,
            signers=view.release.signers,
            indexes=view.indexes,
        )
        for view in snapshot.pockets
    )


def _compare(package: DpkgPackage, snapshot: Snapshot) -> _Found | Gap | None:
    subject = f"{package.name}:{package.architecture} {package.version}"
    try:
        installed = Version(package.version)
    except ValueError as exc:
        return Gap(GapKind.BAD_VERSION, subject, str(exc))
    versions = snapshot.versions(package.name, package.architecture)
    if not versions:
        return Gap(GapKind.NOT_IN_ARCHIVE, subject, f"in none of {_suites(snapshot)}")
    newest = Version(versions[0][0].version)
    if newest <= installed:
        return None
    carrying = [pocket for candidate, pocket in versions if Version(candidate.version) == newest]
    # Name the pocket that brought the version: the security pocket when it carries it, the
    # updates pocket next; the release itself when a point release has folded it in.
    pocket = min(carrying, key=[Pocket.SECURITY, Pocket.UPDATES, Pocket.RELEASE].index)
    candidate = next(c for c, p in versions if p is pocket and Version(c.version) == newest)
    security = any(p is Pocket.SECURITY and Version(c.version) > installed for c, p in versions)
    return _Found(package, candidate, pocket, security)


def _changelogs(
    found: Sequence[_Found],
    snapshot: Snapshot,
    access: ArchiveAccess,
    mode: ChangelogMode,
    gaps: list[Gap],
) -> dict[tuple[str, str], SourceChangelog | None]:
    """One changelog per (source, candidate source version) that needs one; None for a gap."""
    logs: dict[tuple[str, str], SourceChangelog | None] = {}
    for item in found:
        key = (item.candidate.source, item.candidate.source_version)
        if key in logs or not mode.wants(item.security):
            continue
        try:
            logs[key] = read_changelog(access.fetcher, access.cache, *key, snapshot.binaries(*key))
        except ChangelogGap as gap:
            gaps.append(gap.gap)
            logs[key] = None
    return logs


def _pending(
    item: _Found,
    logs: dict[tuple[str, str], SourceChangelog | None],
    first_seen: str,
    mode: ChangelogMode,
    gaps: list[Gap],
) -> PendingUpdate:
    candidate, package = item.candidate, item.package
    log = logs.get((candidate.source, candidate.source_version))
    cves: tuple[str, ...] = ()
    known = False
    if log is not None:
        cves = log.cves_between(package.source_version, candidate.source_version)
        known = log.reaches(package.source_version)
        subject = f"{candidate.source} {candidate.source_version}"
        if not known and not any(
            g.subject == subject and g.kind is GapKind.CHANGELOG_TOO_SHORT for g in gaps
        ):
            gaps.append(
                Gap(
                    GapKind.CHANGELOG_TOO_SHORT,
                    subject,
                    f"its changelog starts at {log.oldest}, after the installed {package.source_version}",
                )
            )
    return PendingUpdate(
        package=package.name,
        architecture=package.architecture,
        source=candidate.source,
        installed_version=package.version,
        installed_source_version=package.source_version,
        candidate_version=candidate.version,
        candidate_source_version=candidate.source_version,
        suite=candidate.suite,
        pocket=item.pocket.value,
        security=item.security,
        cves=cves,
        cves_known=known,
        first_seen=first_seen,
        uploaded=log.uploaded if log is not None else None,
    )


def _sighting(item: _Found) -> str:
    return sighting_key(item.candidate.suite, item.candidate.source, item.candidate.source_version)


def sighting_key(suite: str, source: str, source_version: str) -> str:
    """How a first sighting is filed: the pocket's suite, the source package and its version."""
    return f"{suite}/{source}/{source_version}"


def _earliest(known: Mapping[str, str], item: _Found, today: str) -> str:
    # Both are ISO dates in UTC with the same spelling, so they order as strings.
    recorded = known.get(_sighting(item))
    return min(recorded, today) if recorded else today


def _release_date(snapshot: Snapshot, pocket: Pocket) -> str:
    view = next(v for v in snapshot.pockets if v.pocket is pocket)
    return view.release.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suites(snapshot: Snapshot) -> str:
    return ", ".join(view.release.suite for view in snapshot.pockets)
