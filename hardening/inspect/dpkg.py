"""Installed Debian packages, from dpkg's status database.

``var/lib/dpkg/status`` is a list of deb822 paragraphs; distroless-style images instead keep one
file per package under ``var/lib/dpkg/status.d/``. The ``Source`` field, when present, is
``name`` or ``name (version)``; without it the source is the binary package itself — that is the
name Debian's security tracker (and so Trivy) files advisories under.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Package states in which the files are not on disk.
_ABSENT_STATES = frozenset({"not-installed", "config-files"})
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]*)\))?\s*$")


@dataclass(frozen=True)
class DpkgPackage:
    name: str
    version: str
    source_name: str
    source_version: str
    architecture: str = ""
    status: str = ""


def parse_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs as dicts of field → first-line value; continuation lines are kept."""
    fields: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, current = {}, None
        elif line[0] in " \t":
            if current is not None:
                fields[current] += "\n" + line[1:]
        elif line.startswith("#"):
            continue
        elif ":" in line:
            name, _, value = line.partition(":")
            current = name.strip().lower()
            fields[current] = value.strip()
        else:
            current = None
    if fields:
        yield fields


def parse_dpkg_status(text: str) -> tuple[DpkgPackage, ...]:
    """The installed packages in one status file; paragraphs without a name or version are skipped."""
    packages = []
    for fields in parse_paragraphs(text):
        name = fields.get("package", "").strip()
        version = fields.get("version", "").strip()
        if not name or not version or " " in name or " " in version:
            continue
        status = " ".join(fields.get("status", "").split())
        words = status.split()
        if len(words) == 3 and words[2] in _ABSENT_STATES:
            continue
        source_name, source_version = name, version
        match = _SOURCE.match(fields.get("source", "").strip())
        if match:
            source_name = match["name"]
            source_version = (match["version"] or "").strip() or version
        packages.append(
            DpkgPackage(
                name=name,
                version=version,
                source_name=source_name,
                source_version=source_version,
                architecture=fields.get("architecture", "").strip(),
                status=status,
            )
        )
    return tuple(packages)
