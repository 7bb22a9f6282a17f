"""Check options: each check's section of policies/*.yaml and the merged options it runs with.

A section is a frozen dataclass validated strictly at the edge (``hardening.strict``: unknown keys
and wrong types are errors with file:line); ``Options`` are the frozen result of merging the
sections of several files.
Option shapes that several checks share live here; a check with options of its own defines
them in its module.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import ClassVar, Generic, Self, TypeVar

from hardening.strict import BOOLEAN, ListOf, Nullable, OneOf, Text, typed

SEVERITY_NAME = OneOf("low", "medium", "high", "critical")
PROGRAM_NAME = Text(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
PATH_PATTERN = Text(r"^/[^\x00\n]{0,4095}$")


@dataclass(frozen=True)
class Section:
    """``checks.<id>`` in a policy file: what every check accepts; subclasses add options."""

    severity: str | None = field(default=None, metadata=typed(Nullable(SEVERITY_NAME)))
    enabled: bool | None = field(default=None, metadata=typed(Nullable(BOOLEAN)))


SectionT = TypeVar("SectionT", bound=Section, contravariant=True)


class Options(abc.ABC, Generic[SectionT]):
    """A check's merged options (a frozen dataclass whose defaults mean "not configured")."""

    # The policy-file section these options are read from.
    section: ClassVar[type[Section]]

    @abc.abstractmethod
    def merged(self, section: SectionT) -> Self:
        """These options refined by one more file's section (the rules are in policies/README.md)."""


@dataclass(frozen=True)
class NoOptions(Options[Section]):
    """A check with nothing to configure but its severity."""

    section: ClassVar[type[Section]] = Section

    def merged(self, section: Section) -> NoOptions:
        return self


@dataclass(frozen=True)
class AllowSection(Section):
    allow: tuple[str, ...] = field(default=(), metadata=typed(ListOf(PATH_PATTERN)))


@dataclass(frozen=True)
class AllowPaths(Options[AllowSection]):
    """Shell-style globs of image paths a check accepts; later files add to the list."""

    section: ClassVar[type[Section]] = AllowSection
    allow: frozenset[str] = frozenset()

    def merged(self, section: AllowSection) -> AllowPaths:
        return AllowPaths(self.allow | frozenset(section.allow))

    def allows(self, path: str) -> bool:
        return any(fnmatchcase(path, pattern) for pattern in self.allow)


@dataclass(frozen=True)
class ProgramsSection(Section):
    names: tuple[str, ...] = field(default=(), metadata=typed(ListOf(PROGRAM_NAME)))


@dataclass(frozen=True)
class Programs(Options[ProgramsSection]):
    """Program names a check looks for in the image; later files add to the list."""

    section: ClassVar[type[Section]] = ProgramsSection
    names: frozenset[str] = frozenset()

    def merged(self, section: ProgramsSection) -> Programs:
        return Programs(self.names | frozenset(section.names))
