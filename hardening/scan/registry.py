"""Every scanner, registered here and nowhere else.

Adding a scanner: its module (a ``Scanner`` subclass) and one entry here — a member of
``ScannerKind`` and its case in ``create``. Nothing registers itself on import.
A ``ScannerRegistry`` is what the commands consult; tests hand `harden` one with an extra entry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import assert_never

from hardening.errors import UsageError
from hardening.scan.interface import Scanner


@dataclass(frozen=True)
class ScannerSettings:
    """What the command line says about scanners: binaries to use, by scanner name."""

    binaries: Mapping[str, Path] = field(default_factory=dict)

    def binary(self, name: str) -> Path | None:
        return self.binaries.get(name)


class ScannerKind(enum.Enum):
    TRIVY = "trivy"

    def create(self, settings: ScannerSettings) -> Scanner:
        # Implementations are imported here, when chosen: they import the interface, not this.
        match self:
            case ScannerKind.TRIVY:
                from hardening.scan.trivy import TrivyScanner

                return TrivyScanner(settings.binary(self.value))
            case _:
                assert_never(self)


ScannerFactory = Callable[[ScannerSettings], Scanner]
DEFAULT_SCANNER = ScannerKind.TRIVY.value


@dataclass(frozen=True)
class ScannerRegistry:
    """Scanner names and how to make each; ``default()`` holds every ``ScannerKind``."""

    factories: Mapping[str, ScannerFactory]

    @classmethod
    def default(cls) -> ScannerRegistry:
        return cls({kind.value: kind.create for kind in ScannerKind})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.factories)

    def with_scanner(self, name: str, factory: ScannerFactory) -> ScannerRegistry:
        """A registry with one more scanner (a test's own, say); this one is unchanged."""
        return ScannerRegistry({**self.factories, name: factory})

    def create(self, name: str, settings: ScannerSettings) -> Scanner:
        factory = self.factories.get(name)
        if factory is None:
            raise UsageError(f"no scanner named {name!r}", hint=f"known scanners: {', '.join(self.names)}")
        return factory(settings)
