"""Which files only record the build, and how a few others are made independent of the build's clock.

Found by diffing the layers of two ``--no-cache`` builds of every catalog image (and by what
changes from one day to the next): apart from times, what differs is what the build wrote about
itself. Each rule names the files, says why they may go, and is the only place that decides it.

The package database stays truthful: a path that an installed package lists (dpkg's
``info/*.list``) is never removed, whatever a rule says, so ``dpkg -V`` and a scanner see every
file dpkg claims. Only files no package owns — logs, caches, backups, temporary leftovers — are
removed. Python bytecode stays (Debian compiles the standard library at install time; without it
``import asyncio, http.client`` takes 3x as long in every process): its header is made to record
the epoch, the mtime its source gets (``pyc_at_epoch``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum


class Condition(StrEnum):
    """What must hold besides the path for a rule to remove a file."""

    ALWAYS = "always"
    DANGLING = "dangling"  # a symlink whose target is not in the image


class Kind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"


@dataclass(frozen=True)
class Rule:
    """Files that only record the build: removed from every layer the build made."""

    name: str
    patterns: tuple[str, ...]  # fnmatch on the path without a leading "/" ("*" crosses "/")
    kinds: frozenset[Kind]
    why: str
    condition: Condition = Condition.ALWAYS

    def matches(self, path: str, kind: Kind) -> bool:
        return kind in self.kinds and any(fnmatch.fnmatchcase(path, p) for p in self.patterns)


_FILES = frozenset({Kind.FILE, Kind.SYMLINK, Kind.OTHER})

RULES: tuple[Rule, ...] = (
    Rule(
        "logs",
        ("var/log/*",),
        frozenset({Kind.FILE}),
        "dpkg, apt and maintainer scripts log when and how the image was built (directories "
        "and symlinks such as a log redirected to /dev/null stay)",
    ),
    Rule(
        "ldconfig-aux-cache",
        ("var/cache/ldconfig/aux-cache",),
        _FILES,
        "ldconfig's record of the library files' inode numbers and times at build time; "
        "/etc/ld.so.cache, which the loader reads, stays",
    ),
    Rule(
        "temporary-files",
        ("tmp/*", "var/tmp/*"),
        frozenset(Kind),
        "leftovers of the build in temporary directories (the directories themselves stay)",
    ),
    Rule(
        "package-database-backups",
        (
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/diversions-old",
            "var/lib/dpkg/statoverride-old",
            "var/cache/debconf/*-old",
        ),
        _FILES,
        "dpkg's and debconf's copies of their state before the last change made in the build",
    ),
    Rule(
        "dangling-certificate-links",
        ("etc/ssl/certs/*",),
        frozenset({Kind.SYMLINK}),
        "OpenSSL hash links left pointing at nothing after a build removed the certificate "
        "(ssl-cert's snakeoil certificate: its hash, and so the link's name, differs every build)",
        Condition.DANGLING,
    ),
)

WHITEOUT_PREFIX = ".wh."

# Files whose "last changed" day is written from the build's clock: clamped like mtimes.
SHADOW_FILES = frozenset({"etc/shadow", "etc/shadow-"})


@dataclass(frozen=True)
class Decision:
    rule: Rule | None
    kept_owned: bool = False  # a rule matched, but an installed package lists the path


def decide(path: str, kind: Kind, *, owned: Container[str], dangling: Container[str]) -> Decision:
    """Whether ``path`` (no leading "/") is removed, and by which rule.

    ``owned`` and ``dangling`` hold image paths with a leading "/": what installed packages list,
    and the symlinks whose target is not in the image.
    """
    if path.rsplit("/", 1)[-1].startswith(WHITEOUT_PREFIX):
        return Decision(None)  # a deletion (or opaque marker) of the layer, never a file to drop
    for rule in RULES:
        if not rule.matches(path, kind):
            continue
        if rule.condition is Condition.DANGLING and "/" + path not in dangling:
            continue
        if "/" + path in owned:
            return Decision(None, kept_owned=True)
        return Decision(rule)
    return Decision(None)


_SHADOW_LINE = re.compile(rb"^([^:\n]*:[^:\n]*:)(\d+)(:)", re.MULTILINE)


def shadow_at_epoch(data: bytes, epoch: int) -> bytes:
    """``/etc/shadow`` with every "last password change" day set to ``epoch``'s day.

    useradd and passwd write the day they ran (shadow's own tools write ``SOURCE_DATE_EPOCH``'s
    day when it is set, which the engine's classic builder cannot pass to them). 0 ("change at
    next login") and empty fields mean something else and stay.
    """
    day = str(epoch // 86400).encode("ascii")

    def fix(match: re.Match[bytes]) -> bytes:
        return match.group(1) + (day if int(match.group(2)) > 0 else match.group(2)) + match.group(3)

    return _SHADOW_LINE.sub(fix, data)


PYC_HEADER = 16


def pyc_source(path: str) -> str | None:
    """The source a ``__pycache__`` bytecode file was compiled from (``a/__pycache__/m.cpython-311.pyc``
    → ``a/m.py``), or None for any other path."""
    directory, _, name = path.rpartition("/")
    parent, _, cache = directory.rpartition("/")
    if cache != "__pycache__" or not name.endswith(".pyc") or "." not in name[:-4]:
        return None
    module = name.split(".", 1)[0]
    return f"{parent}/{module}.py" if parent else f"{module}.py"


def pyc_at_epoch(header: bytes, epoch: int) -> bytes:
    """A ``.pyc`` header (PEP 552) that records ``epoch`` as its source's mtime, when it records one.

    Every mtime in a layer the build made becomes the epoch, the source's too; bytecode that
    recorded the source's old mtime would be stale, and Python would compile the module again in
    every process (3x as long for ``import asyncio, http.client``). Hash-based bytecode (flags 1
    or 3) records no time and is left alone.
    """
    if len(header) < PYC_HEADER or int.from_bytes(header[4:8], "little") != 0:
        return header
    return header[:8] + (epoch & 0xFFFFFFFF).to_bytes(4, "little") + header[12:]
