"""The archive as it is now, for one suite: ``<suite>``, ``<suite>-updates``, ``<suite>-security``.

The security pocket usually lives at another path than the rest (``…/debian-security``), so a
target names two mirrors. Every pocket must be read: without one of them the answer "nothing
newer" could be false, so a missing pocket is an error, never an empty list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import assert_never

from debian.debian_support import Version

from hardening.archive.cache import ArchiveCache
from hardening.archive.fetch import Fetcher
from hardening.archive.index import Candidate, IndexInfo, candidates, load_index
from hardening.archive.release import Release, fetch_release


class Pocket(StrEnum):
    RELEASE = "release"
    UPDATES = "updates"
    SECURITY = "security"

    def suite(self, suite: str) -> str:
        """The suite name of this pocket of ``suite`` (``bookworm-security``)."""
        match self:
            case Pocket.RELEASE:
                return suite
            case Pocket.UPDATES:
                return f"{suite}-updates"
            case Pocket.SECURITY:
                return f"{suite}-security"
            case _:
                assert_never(self)


@dataclass(frozen=True)
class ArchiveTarget:
    """Which suite of which mirror(s) an image is compared with, and how that was decided."""

    suite: str
    mirror: str
    security_mirror: str
    origin: str
    components: tuple[str, ...] = ("main",)
    architectures: tuple[str, ...] = ("amd64",)

    def mirror_for(self, pocket: Pocket) -> str:
        return self.security_mirror if pocket is Pocket.SECURITY else self.mirror


@dataclass(frozen=True)
class PocketView:
    """One pocket's verified Release, the indexes read and the candidates selected from them."""

    pocket: Pocket
    release: Release
    indexes: tuple[IndexInfo, ...]
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Snapshot:
    target: ArchiveTarget
    pockets: tuple[PocketView, ...]

    @property
    def release(self) -> Release:
        """The Release of the suite itself (its ``Version`` names the Debian release)."""
        return next(view.release for view in self.pockets if view.pocket is Pocket.RELEASE)

    def versions(self, package: str, architecture: str) -> list[tuple[Candidate, Pocket]]:
        """Every version of an installed binary package across the pockets, newest first.

        A package may switch between ``Architecture: all`` and the machine's architecture from
        one version to the next; both are the same package to dpkg.
        """
        accepted = {architecture, "all"} if architecture != "all" else {"all", *self.target.architectures}
        found = [
            (candidate, view.pocket)
            for view in self.pockets
            for candidate in view.candidates
            if candidate.package == package and candidate.architecture in accepted
        ]
        found.sort(key=lambda item: Version(item[0].version), reverse=True)
        return found

    def binaries(self, source: str, source_version: str) -> list[Candidate]:
        """The binary packages built from ``source`` at ``source_version``, smallest first."""
        seen: dict[tuple[str, str], Candidate] = {}
        for view in self.pockets:
            for candidate in view.candidates:
                if candidate.source == source and candidate.source_version == source_version:
                    seen.setdefault((candidate.filename, candidate.sha256), candidate)
        return sorted(seen.values(), key=lambda c: (c.size, c.package))

    def newest_source_versions(self) -> dict[str, str]:
        """Each selected source package's highest version across the pockets."""
        newest: dict[str, str] = {}
        for view in self.pockets:
            for candidate in view.candidates:
                current = newest.get(candidate.source)
                if current is None or Version(candidate.source_version) > Version(current):
                    newest[candidate.source] = candidate.source_version
        return newest

    @property
    def indexes(self) -> tuple[IndexInfo, ...]:
        return tuple(info for view in self.pockets for info in view.indexes)


def open_snapshot(
    target: ArchiveTarget,
    fetcher: Fetcher,
    cache: ArchiveCache,
    keyrings: Sequence[Path],
    *,
    packages: Iterable[str],
    sources: Iterable[str] = (),
    now: datetime | None = None,
) -> Snapshot:
    """Read the three pockets of ``target``, selecting ``packages`` and the binaries of ``sources``."""
    moment = now or datetime.now(UTC)
    wanted = frozenset(packages)
    wanted_sources = frozenset(sources)
    views: list[PocketView] = []
    for pocket in Pocket:
        release = fetch_release(
            fetcher, target.mirror_for(pocket), pocket.suite(target.suite), keyrings, now=moment
        )
        infos: list[IndexInfo] = []
        found: list[Candidate] = []
        # A pocket need not carry every component (the image may list contrib, a pocket may
        # not); the suite's own Release decides which exist.
        components = [c for c in target.components if c in release.components] or ["main"]
        for component in components:
            for architecture in target.architectures:
                data, info = load_index(fetcher, cache, release, component, architecture)
                infos.append(info)
                found.extend(candidates(data, release, packages=wanted, sources=wanted_sources))
        views.append(PocketView(pocket, release, tuple(infos), tuple(found)))
    return Snapshot(target, tuple(views))
