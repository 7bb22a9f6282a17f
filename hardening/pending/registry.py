"""Every update source, registered here and nowhere else.

Adding one: its module (an ``UpdateSource``) and one entry here — a member of
``UpdateSourceKind`` and its case in ``create``. Nothing registers itself on import. The
commands run every source of the registry they are given (`harden run`, `harden scan`), unless
told not to (``--no-pending``); tests hand them a registry of their own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import assert_never

from hardening.pending.interface import UpdateSource


@dataclass(frozen=True)
class SourceSettings:
    """What the command line and the repository say about update sources."""

    known_sightings: Mapping[str, str]  # first sightings from the committed update history
    timeout: float = 60.0


class UpdateSourceKind(enum.Enum):
    DEBIAN_ARCHIVE = "debian-archive"

    def create(self, settings: SourceSettings) -> UpdateSource:
        # Implementations are imported here, when chosen: they import the interface, not this.
        match self:
            case UpdateSourceKind.DEBIAN_ARCHIVE:
                from hardening.pending.debian import ArchiveSettings, DebianArchiveSource

                return DebianArchiveSource(
                    ArchiveSettings(known_sightings=settings.known_sightings, timeout=settings.timeout)
                )
            case _:
                assert_never(self)


SourceFactory = Callable[[SourceSettings], UpdateSource]


@dataclass(frozen=True)
class UpdateSourceRegistry:
    """Source names and how to make each; ``default()`` holds every ``UpdateSourceKind``."""

    factories: Mapping[str, SourceFactory]

    @classmethod
    def default(cls) -> UpdateSourceRegistry:
        return cls({kind.value: kind.create for kind in UpdateSourceKind})

    @classmethod
    def empty(cls) -> UpdateSourceRegistry:
        return cls({})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.factories)

    def create_all(self, settings: SourceSettings) -> list[UpdateSource]:
        return [factory(settings) for factory in self.factories.values()]
