"""Which files only record the build, and how a few others are made independent of the build's clock.

Found by diffing the layers of two ``--no-cache`` builds of every catalog image (and by what
changes from one day to the next): apart from times, what differs is what the build wrote about
itself. Each rule names the files, says why they may go, and is the only place that decides it.

The package database stays truthful: a path that an installed package lists (dpkg's
``info/*.list``) is never removed, whatever a rule says, so ``dpkg -V`` and a scanner see every
file dpkg claims. Only files no package owns — logs, caches, backups, bytecode written at install
time, temporary leftovers — are removed.
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
    BUILT_HERE = "built-here"  # bytecode compiled from a source file written during the build


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
        "bytecode",
        ("*.pyc",),
        frozenset({Kind.FILE}),
        "bytecode compiled from a source file the build wrote records that file's build-time "
        "mtime, and once the mtime is clamped the interpreter no longer uses it. Bytecode of "
        "packaged sources (mtimes from the .deb) is the same every build and stays: without it "
        "`import asyncio, http.client` takes 3x as long in every process",
        Condition.BUILT_HERE,
    ),
    Rule(
        "bytecode-directories",
        ("*/__pycache__",),
        frozenset({Kind.DIRECTORY}),
        "directories left holding no bytecode (one still holding some stays)",
        Condition.BUILT_HERE,
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


def decide(
    path: str, kind: Kind, *, owned: Container[str], dangling: Container[str], built_here: bool = False
) -> Decision:
    """Whether ``path`` (no leading "/") is removed, and by which rule.

    ``owned`` and ``dangling`` hold image paths with a leading "/": what installed packages list,
    and the symlinks whose target is not in the image. ``built_here``: the file is bytecode whose
    source was written during the build (``bytecode_built_after``), or a directory that may go if
    nothing stays below it.
    """
    if path.rsplit("/", 1)[-1].startswith(WHITEOUT_PREFIX):
        return Decision(None)  # a deletion (or opaque marker) of the layer, never a file to drop
    for rule in RULES:
        if not rule.matches(path, kind):
            continue
        if rule.condition is Condition.DANGLING and "/" + path not in dangling:
            continue
        if rule.condition is Condition.BUILT_HERE and not built_here:
            continue
        if "/" + path in owned:
            return Decision(None, kept_owned=True)
        return Decision(rule)
    return Decision(None)


_SHADOW_LINE = re.compile(rb"^([^:\n]*:[^:\n]*:)(\d+)(:)", re.MULTILINE)


def clamp_shadow(data: bytes, epoch: int) -> bytes:
    """``/etc/shadow`` with every "last password change" day after ``epoch``'s day set to that day.

    useradd and passwd write today's day number; shadow's own tools do exactly this clamping
    when ``SOURCE_DATE_EPOCH`` is set, which the engine's classic builder cannot pass to them.
    """
    day = epoch // 86400

    def clamp(match: re.Match[bytes]) -> bytes:
        value = int(match.group(2))
        return match.group(1) + str(min(value, day)).encode("ascii") + match.group(3)

    return _SHADOW_LINE.sub(clamp, data)


PYC_HEADER = 16


def bytecode_built_after(header: bytes, epoch: int) -> bool:
    """Whether a ``.pyc`` header (its first 16 bytes) records a source mtime later than ``epoch``.

    PEP 552: magic (4 bytes), flags (4; 0 = validated by the source's mtime and size), source
    mtime (4), source size (4). Hash-based bytecode (flags 1 or 3) records no time and stays.
    """
    if len(header) < PYC_HEADER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    return flags == 0 and int.from_bytes(header[8:12], "little") > epoch
