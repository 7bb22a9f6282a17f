"""What the rules need to know about the whole image, and what it was built from, in one read.

One pass of the project's image reader over the saved image (before it is rewritten): the paths
installed packages own (dpkg's ``info/*.list``, so no rule removes one), the symlinks whose target
is not in the image, every Debian package with its version, and every Python distribution in
every environment — the last two become the build record's inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardening.inspect.dpkg import parse_dpkg_status
from hardening.inspect.pydist import (
    ENVIRONMENT_DIRS,
    METADATA_BUDGET,
    distribution_from_metadata,
    is_metadata_path,
)
from hardening.inspect.tarfs import FileEntry, FileKind, RandomReader, read_image_tar

_DPKG_STATUS = "/var/lib/dpkg/status"
_DPKG_INFO = "/var/lib/dpkg/info/"
_DPKG_BUDGET = 64 * 1024 * 1024
_LIST_BUDGET = 16 * 1024 * 1024
_LINK_DIRS = ("/etc/ssl/certs/",)


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    architecture: str
    source: str
    source_version: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "source": self.source,
            "source_version": self.source_version,
        }


@dataclass(frozen=True)
class PythonPackage:
    name: str
    version: str
    environment: str  # the site-/dist-packages directory

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "environment": self.environment}


@dataclass(frozen=True)
class ImageContents:
    owned: frozenset[str]  # paths installed packages list
    dangling: frozenset[str]  # symlinks (in the directories rules look at) pointing at nothing
    packages: tuple[DebianPackage, ...]
    python: tuple[PythonPackage, ...]


def _budget(entry: FileEntry) -> int:
    if entry.kind is not FileKind.FILE:
        return 0
    if entry.path == _DPKG_STATUS:
        return _DPKG_BUDGET
    if entry.path.startswith(_DPKG_INFO) and entry.path.endswith(".list"):
        return _LIST_BUDGET
    if is_metadata_path(entry.path):
        return METADATA_BUDGET
    return 0


def _extract(entry: FileEntry, reader: RandomReader) -> str:
    return reader.read_at(0, reader.size).decode("utf-8", "replace")


def read_contents(tar_path: Path, *, reference: str | None = None) -> ImageContents:
    archive = read_image_tar(tar_path, reference=reference, wants=_budget, extract=_extract)
    fs = archive.filesystem
    owned: set[str] = set()
    dangling: set[str] = set()
    python: list[PythonPackage] = []
    status = ""
    for entry in fs.walk():
        text = fs.extracted(entry.path) if entry.kind is FileKind.FILE else None
        if entry.path == _DPKG_STATUS:
            status = text if isinstance(text, str) else ""
        elif entry.path.startswith(_DPKG_INFO) and entry.path.endswith(".list") and isinstance(text, str):
            owned.update(line for line in text.splitlines() if line.startswith("/"))
        elif entry.kind is FileKind.SYMLINK and entry.path.startswith(_LINK_DIRS):
            if fs.resolve(entry.path) is None:
                dangling.add(entry.path)
        elif is_metadata_path(entry.path):
            python.append(_python_package(entry.path, text if isinstance(text, str) else None))
    packages = {
        (p.name, p.architecture): DebianPackage(
            p.name, p.version, p.architecture, p.source_name, p.source_version
        )
        for p in parse_dpkg_status(status)
    }
    return ImageContents(
        owned=frozenset(owned),
        dangling=frozenset(dangling),
        packages=tuple(sorted(packages.values(), key=lambda p: (p.name, p.architecture))),
        python=tuple(sorted(python, key=lambda p: (p.environment, p.name, p.version))),
    )


def _python_package(path: str, text: str | None) -> PythonPackage:
    parts = path.split("/")
    index = max(i for i, part in enumerate(parts) if part in ENVIRONMENT_DIRS)
    environment = "/".join(parts[: index + 1])
    name = parts[index + 1]
    distribution = distribution_from_metadata("/".join(parts[: index + 2]), text, name)
    return PythonPackage(distribution.name, distribution.version, environment)
