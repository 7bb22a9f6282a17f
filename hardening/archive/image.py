"""What an image says about its Debian packages and where they came from.

Read from the image's ``docker save`` archive (the same reader the inspector uses): dpkg's status
database, ``/etc/os-release``, the apt sources and the image labels. Which suite and mirrors to
compare with is decided from them, in this order: options given on the command line; the base
image's labels (``org.hardening.base.suite`` / ``.mirror``), which every image built on our base
inherits; the image's own ``os-release`` and apt sources; then the catalog's base and the
machine's apt configuration for a mirror the image does not name.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.aptsources import AptSource, debian_mirror, parse_sources, security_mirror
from hardening.archive.snapshot import ArchiveTarget
from hardening.base import LABEL_PREFIX, BaseSpec
from hardening.engine.saved import saved_image
from hardening.errors import UsageError
from hardening.inspect.dpkg import DpkgPackage, parse_dpkg_status
from hardening.inspect.tarfs import FileEntry, FileKind, RandomReader, read_image_tar

if TYPE_CHECKING:  # the docker SDK is slow to import and only needed to talk to the engine
    from hardening.engine.client import Engine

SUITE_LABEL = f"{LABEL_PREFIX}.suite"
MIRROR_LABEL = f"{LABEL_PREFIX}.mirror"

_DPKG_STATUS = "/var/lib/dpkg/status"
_DPKG_STATUS_DIR = "/var/lib/dpkg/status.d/"
_DPKG_INFO = "/var/lib/dpkg/info/"
_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
_SOURCES_LIST = "/etc/apt/sources.list"
_SOURCES_DIR = "/etc/apt/sources.list.d/"
_DPKG_BUDGET = 64 * 1024 * 1024
_TEXT_BUDGET = 1024 * 1024
# Docker's architecture names (image config) → Debian's, for images whose packages are all "all".
_DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64", "386": "i386", "ppc64le": "ppc64el", "s390x": "s390x"}


@dataclass(frozen=True)
class ImageState:
    reference: str
    image_id: str
    architecture: str
    labels: Mapping[str, str]
    has_dpkg_status: bool
    packages: tuple[DpkgPackage, ...]
    os_release: Mapping[str, str]
    apt_sources: tuple[AptSource, ...]
    # Package name → diff id of the layer that last wrote its file list (/var/lib/dpkg/info),
    # i.e. the layer whose instruction installed or upgraded it: where a finding about it points.
    package_layers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetOptions:
    """What the command line says, overriding what the image says."""

    suite: str | None = None
    mirror: str | None = None
    security_mirror: str | None = None


def read_image_archive(path: Path, *, reference: str) -> ImageState:
    """The package state of the image saved (``docker save``) at ``path``."""
    archive = read_image_tar(path, reference=reference, wants=_wants, extract=_extract)
    fs = archive.filesystem
    status_paths: list[str] = []
    source_paths: list[str] = []
    list_layers: dict[str, int] = {}
    for entry in fs.walk():
        if entry.kind is not FileKind.FILE:
            continue
        if entry.path.startswith(_DPKG_INFO) and entry.path.endswith(".list"):
            name = entry.path[len(_DPKG_INFO) : -len(".list")].partition(":")[0]
            list_layers[name] = max(entry.layer, list_layers.get(name, -1))
        if entry.path == _DPKG_STATUS or (
            entry.path.startswith(_DPKG_STATUS_DIR) and not entry.path.endswith(".md5sums")
        ):
            status_paths.append(entry.path)
        elif entry.path == _SOURCES_LIST or entry.path.startswith(_SOURCES_DIR):
            source_paths.append(entry.path)
    packages: dict[tuple[str, str], DpkgPackage] = {}
    for status in status_paths:
        for package in parse_dpkg_status(_text(fs.extracted(status))):
            packages.setdefault((package.name, package.architecture), package)
    sources: list[AptSource] = []
    for source_path in source_paths:
        sources.extend(parse_sources(source_path, _text(fs.extracted(source_path))))
    os_release: dict[str, str] = {}
    for candidate in _OS_RELEASE:
        resolved = fs.resolve(candidate)
        if resolved is not None and fs.extracted(resolved) is not None:
            os_release = parse_os_release(_text(fs.extracted(resolved)))
            break
    config = archive.config.get("config") or archive.config.get("Config") or {}
    labels = config.get("Labels") if isinstance(config, dict) else None
    return ImageState(
        reference=reference,
        image_id="sha256:" + hashlib.sha256(archive.config_bytes).hexdigest(),
        architecture=str(archive.config.get("architecture") or ""),
        labels={str(k): str(v) for k, v in (labels or {}).items()} if isinstance(labels, dict) else {},
        has_dpkg_status=bool(status_paths),
        packages=tuple(sorted(packages.values(), key=lambda p: (p.name, p.architecture))),
        os_release=os_release,
        apt_sources=tuple(sources),
        package_layers={
            name: archive.layers[index].diff_id
            for name, index in sorted(list_layers.items())
            if 0 <= index < len(archive.layers)
        },
    )


def read_image_ref(engine: Engine, ref: str, *, reference: str | None = None) -> ImageState:
    """Save ``ref`` (a name or an image id) from the engine to a private temporary file and read it."""
    if engine.image(ref) is None:
        raise UsageError(
            f"no local image {ref}",
            hint="nothing can be pulled here; build or load the image first (`docker images` lists them)",
        )
    with saved_image(engine, ref, prefix="hardening-outdated-") as archive:
        return read_image_archive(archive, reference=reference or ref)


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines, values unquoted the way a shell would."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        fields[key.strip()] = words[0] if words else ""
    return fields


def resolve_target(
    state: ImageState,
    options: TargetOptions,
    *,
    machine_sources: Sequence[AptSource],
    base: BaseSpec | None = None,
) -> ArchiveTarget:
    """Which suite and mirrors to compare ``state`` with; ``UsageError`` when it cannot be told."""
    if not state.has_dpkg_status:
        raise UsageError(
            f"{state.reference} has no dpkg status database ({_DPKG_STATUS} or {_DPKG_STATUS_DIR})",
            hint="the image is not Debian-based, or its package database was removed; "
            "its packages cannot be compared with the archive",
        )
    label_suite = state.labels.get(SUITE_LABEL)
    os_id = state.os_release.get("ID", "")
    codename = state.os_release.get("VERSION_CODENAME", "")
    if options.suite:
        suite, origin = options.suite, "options"
    elif label_suite:
        suite, origin = label_suite, "labels"
    elif os_id == "debian" and codename:
        suite, origin = codename, "os-release"
    else:
        what = f"its os-release says ID={os_id!r}" if os_id else "it has no /etc/os-release"
        raise UsageError(
            f"cannot tell which Debian suite {state.reference} is: no {SUITE_LABEL} label, and {what}",
            hint="pass --suite (e.g. --suite bookworm) for a Debian image",
        )
    own = [s for s in state.apt_sources if suite in s.suites]
    own_security = [s for s in state.apt_sources if f"{suite}-security" in s.suites]
    mirror = (
        options.mirror
        or (state.labels.get(MIRROR_LABEL) if origin != "os-release" else None)
        or next((s.uri for s in own if not s.uri.rstrip("/").endswith("-security")), None)
        or (base.mirror if base else None)
        or debian_mirror(suite, list(machine_sources))
    )
    machine_security = [s for s in machine_sources if f"{suite}-security" in s.suites]
    secure = (
        options.security_mirror
        or (own_security[0].uri if own_security else None)
        or (base.security_mirror if base else None)
        or (machine_security[0].uri if machine_security else None)
        or security_mirror(list(machine_sources))
    )
    if not mirror:
        raise UsageError(
            f"no Debian mirror is known for {suite}: the image names none and the machine's apt "
            "configuration has none",
            hint="pass --mirror URL",
        )
    if not secure:
        raise UsageError(
            f"no mirror is known for {suite}-security: the image names none and the machine's apt "
            "configuration has none",
            hint="pass --security-mirror URL (security updates are what this command is for)",
        )
    components = tuple(dict.fromkeys(c for s in own for c in s.components)) or ("main",)
    return ArchiveTarget(
        suite=suite,
        mirror=mirror,
        security_mirror=secure,
        origin=origin,
        components=components,
        architectures=_architectures(state),
    )


def _architectures(state: ImageState) -> tuple[str, ...]:
    found = sorted({p.architecture for p in state.packages if p.architecture and p.architecture != "all"})
    if found:
        return tuple(found)
    return (_DEBIAN_ARCH.get(state.architecture, state.architecture or "amd64"),)


def _budget(path: str) -> int:
    if path == _DPKG_STATUS or (path.startswith(_DPKG_STATUS_DIR) and not path.endswith(".md5sums")):
        return _DPKG_BUDGET
    if path in _OS_RELEASE or path == _SOURCES_LIST or path.startswith(_SOURCES_DIR):
        return _TEXT_BUDGET
    return 0


def _wants(entry: FileEntry) -> int:
    return _budget(entry.path)


def _extract(entry: FileEntry, reader: RandomReader) -> str | None:
    return reader.read_at(0, reader.size).decode("utf-8", "replace")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
