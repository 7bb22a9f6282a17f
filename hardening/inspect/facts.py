"""Facts about a built image, read from its ``docker save`` archive.

A policy that reads the Dockerfile trusts what the Dockerfile claims; these facts come from the
layers that were actually built. ``inspect_image_tar`` is the entry point.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hardening.errors import InspectError
from hardening.inspect.accounts import (
    GroupEntry,
    PasswdEntry,
    parse_group,
    parse_passwd,
)
from hardening.inspect.accounts import resolve_user as _resolve_user
from hardening.inspect.dpkg import DpkgPackage, parse_dpkg_status
from hardening.inspect.gobuild import GoBuildInfo, GoModule, read_go_buildinfo
from hardening.inspect.pydist import (
    ENVIRONMENT_DIRS,
    METADATA_BUDGET,
    PythonDistribution,
    PythonEnvironment,
    distribution_from_metadata,
    is_metadata_path,
)
from hardening.inspect.tarfs import Anomaly, AnomalyKind, FileEntry, FileKind, LayerInfo, RandomReader

if TYPE_CHECKING:
    from hardening.inspect.tarfs import ImageArchive, ImageFilesystem

__all__ = [
    "DEFAULT_BINARY_NAMES",
    "Anomaly",
    "AnomalyKind",
    "Binary",
    "BinaryMatch",
    "DpkgPackage",
    "GoBuildInfo",
    "GoModule",
    "GroupEntry",
    "HealthCheck",
    "HistoryEntry",
    "ImageConfig",
    "ImageFacts",
    "LayerInfo",
    "PasswdEntry",
    "PythonDistribution",
    "PythonEnvironment",
    "SpecialFile",
    "WritableDirectory",
    "inspect_image_tar",
    "inspect_stream",
]

# Programs a hardened runtime image should not carry: privilege switchers and build tools.
DEFAULT_BINARY_NAMES: frozenset[str] = frozenset(
    {
        "gosu",
        "su-exec",
        "sudo",
        "doas",
        "gcc",
        "cc",
        "c++",
        "g++",
        "cpp",
        "clang",
        "clang++",
        "tcc",
        "make",
        "gmake",
        "cmake",
        "ld",
        "ld.bfd",
        "ld.gold",
        "as",
        "go",
        "rustc",
        "cargo",
    }
)

# Text files are small; a cap keeps a hostile multi-gigabyte /etc/passwd from being read.
_TEXT_BUDGET = 8 * 1024 * 1024
_DPKG_BUDGET = 64 * 1024 * 1024
# The ELF header, header tables, section names and a 64 KiB data window fit well inside this.
_ELF_BUDGET = 1024 * 1024
_ELF_MIN_SIZE = 64
_DPKG_STATUS = "/var/lib/dpkg/status"
_DPKG_STATUS_DIR = "/var/lib/dpkg/status.d/"
_ALTERNATIVES = "/etc/alternatives/"
# ``x86_64-linux-gnu-gcc-12`` is gcc; strip the target triplet and the version suffix.
_TRIPLET = re.compile(r"^[a-z0-9_]+-(?:[a-z0-9_]+-)?linux-[a-z0-9_]+-")
_VERSION_SUFFIX = re.compile(r"-\d+(?:\.\d+)*$")


@dataclass(frozen=True)
class HealthCheck:
    test: tuple[str, ...]
    interval_ns: int = 0
    timeout_ns: int = 0
    start_period_ns: int = 0
    retries: int = 0

    @property
    def disabled(self) -> bool:
        return self.test[:1] == ("NONE",)


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    empty_layer: bool
    created: str = ""
    comment: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The runtime configuration recorded in the image config."""

    user: str
    env: tuple[tuple[str, str], ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    healthcheck: HealthCheck | None
    exposed_ports: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    history: tuple[HistoryEntry, ...]
    working_dir: str
    architecture: str = ""
    os: str = ""

    def env_value(self, name: str) -> str | None:
        return next((value for key, value in self.env if key == name), None)

    def label(self, name: str) -> str | None:
        return next((value for key, value in self.labels if key == name), None)


@dataclass(frozen=True)
class SpecialFile:
    """A setuid or setgid file."""

    path: str
    mode: int
    uid: int
    gid: int
    layer: int

    @property
    def setuid(self) -> bool:
        return bool(self.mode & 0o4000)

    @property
    def setgid(self) -> bool:
        return bool(self.mode & 0o2000)


@dataclass(frozen=True)
class WritableDirectory:
    """A world-writable directory; without the sticky bit anyone can delete others' files."""

    path: str
    mode: int
    uid: int
    gid: int
    layer: int

    @property
    def sticky(self) -> bool:
        return bool(self.mode & 0o1000)


class BinaryMatch(StrEnum):
    NAME = "name"
    GO_BUILDINFO = "go-buildinfo"


@dataclass(frozen=True)
class Binary:
    """An executable of interest.

    ``program`` is what it is — the configured name its file name matched, or for a Go binary
    the last element of its main package (``gosu`` even when the file is called ``runas``).
    ``target`` is the resolved path when ``path`` is a symlink.
    """

    path: str
    program: str
    matched_by: tuple[BinaryMatch, ...]
    layer: int
    go: GoBuildInfo | None = None
    target: str | None = None


@dataclass(frozen=True)
class ImageFacts:
    reference: str
    image_id: str
    config: ImageConfig
    layers: tuple[LayerInfo, ...]
    passwd: tuple[PasswdEntry, ...]
    group: tuple[GroupEntry, ...]
    dpkg_packages: tuple[DpkgPackage, ...]
    python_envs: tuple[PythonEnvironment, ...]
    setuid_files: tuple[SpecialFile, ...]
    world_writable_dirs: tuple[WritableDirectory, ...]
    binaries: tuple[Binary, ...]
    # Bytes of regular files summed over all layers, overwritten copies included (what the
    # image costs to store) and over the merged view only (what a container sees).
    total_size: int
    filesystem_size: int
    anomalies: tuple[Anomaly, ...]

    @property
    def layer_count(self) -> int:
        return len(self.layers)

    @property
    def world_writable_without_sticky(self) -> tuple[WritableDirectory, ...]:
        return tuple(d for d in self.world_writable_dirs if not d.sticky)

    def resolve_user(self, user_spec: str | None = None) -> tuple[int, int] | None:
        """(uid, gid) for ``user_spec`` (default: the image's USER), None if it cannot resolve."""
        spec = self.config.user if user_spec is None else user_spec
        return _resolve_user(spec, self.passwd, self.group)

    def programs(self) -> frozenset[str]:
        return frozenset(b.program for b in self.binaries)

    def binaries_for(self, program: str) -> tuple[Binary, ...]:
        return tuple(b for b in self.binaries if b.program == program)

    def python_distribution(self, name: str) -> tuple[PythonDistribution, ...]:
        """Every installed copy of ``name``, across environments."""
        found = (env.get(name) for env in self.python_envs)
        return tuple(d for d in found if d is not None)

    def dpkg_package(self, name: str) -> DpkgPackage | None:
        return next((p for p in self.dpkg_packages if p.name == name), None)


# What the inspector keeps per file: decoded text, or the build info of a Go binary.
_Extracted = str | GoBuildInfo


def inspect_image_tar(
    path: Path,
    *,
    reference: str,
    binary_names: Iterable[str] = DEFAULT_BINARY_NAMES,
) -> ImageFacts:
    """Facts about the image saved at ``path`` by ``docker save`` (legacy or OCI layout)."""
    # The layer reader loads here, not with this module: a facts-cache hit never reads a layer.
    from hardening.inspect.tarfs.archive import read_image_tar

    archive: ImageArchive[_Extracted] = read_image_tar(
        path, reference=reference, wants=_wants, extract=_extract
    )
    return _facts(archive, reference, frozenset(binary_names))


def inspect_stream(
    fileobj: IO[bytes],
    *,
    reference: str,
    binary_names: Iterable[str] = DEFAULT_BINARY_NAMES,
) -> ImageFacts:
    """Like ``inspect_image_tar`` for an open stream, e.g. the stdout of ``docker save``."""
    from hardening.inspect.tarfs.archive import read_image_stream

    archive: ImageArchive[_Extracted] = read_image_stream(
        fileobj, reference=reference, wants=_wants, extract=_extract
    )
    return _facts(archive, reference, frozenset(binary_names))


def _text_budget(path: str) -> int:
    if path in ("/etc/passwd", "/etc/group"):
        return _TEXT_BUDGET
    if path == _DPKG_STATUS or (path.startswith(_DPKG_STATUS_DIR) and not path.endswith(".md5sums")):
        return _DPKG_BUDGET
    if is_metadata_path(path):
        return METADATA_BUDGET
    return 0


def _wants(entry: FileEntry) -> int:
    budget = _text_budget(entry.path)
    if budget:
        return budget
    if entry.is_executable and entry.size >= _ELF_MIN_SIZE:
        return _ELF_BUDGET
    return 0


def _extract(entry: FileEntry, reader: RandomReader) -> _Extracted | None:
    if _text_budget(entry.path):
        return reader.read_at(0, reader.size).decode("utf-8", "replace")
    return read_go_buildinfo(reader)


def _facts(archive: ImageArchive[_Extracted], reference: str, names: frozenset[str]) -> ImageFacts:
    fs = archive.filesystem
    passwd = parse_passwd(_text(fs, "/etc/passwd"))
    group = parse_group(_text(fs, "/etc/group"))
    setuid: list[SpecialFile] = []
    writable: list[WritableDirectory] = []
    binaries: list[Binary] = []
    envs: list[PythonEnvironment] = []
    status_files: list[str] = []
    filesystem_size = 0
    for entry in fs.walk():
        if entry.kind is FileKind.DIRECTORY:
            if entry.mode & 0o002:
                writable.append(WritableDirectory(entry.path, entry.mode, entry.uid, entry.gid, entry.layer))
            if entry.path.rsplit("/", 1)[-1] in ENVIRONMENT_DIRS:
                envs.append(_environment(fs, entry.path))
            continue
        if entry.kind is FileKind.FILE:
            if not entry.hardlink_to:
                filesystem_size += entry.size
            if entry.mode & 0o6000:
                setuid.append(SpecialFile(entry.path, entry.mode, entry.uid, entry.gid, entry.layer))
            if entry.path == _DPKG_STATUS or entry.path.startswith(_DPKG_STATUS_DIR):
                status_files.append(entry.path)
        binary = _binary(fs, entry, names)
        if binary is not None:
            binaries.append(binary)
    packages: list[DpkgPackage] = []
    seen: set[tuple[str, str, str]] = set()
    for status in status_files:
        for package in parse_dpkg_status(_text(fs, status)):
            key = (package.name, package.architecture, package.version)
            if key not in seen:
                seen.add(key)
                packages.append(package)
    return ImageFacts(
        reference=reference,
        image_id="sha256:" + hashlib.sha256(archive.config_bytes).hexdigest(),
        config=_config(archive.config),
        layers=archive.layers,
        passwd=passwd,
        group=group,
        dpkg_packages=tuple(sorted(packages, key=lambda p: (p.name, p.architecture))),
        python_envs=tuple(envs),
        setuid_files=tuple(setuid),
        world_writable_dirs=tuple(writable),
        binaries=tuple(binaries),
        total_size=sum(layer.content_size for layer in archive.layers),
        filesystem_size=filesystem_size,
        anomalies=archive.anomalies,
    )


def _text(fs: ImageFilesystem[_Extracted], path: str) -> str:
    value = fs.extracted(path)
    return value if isinstance(value, str) else ""


def _environment(fs: ImageFilesystem[_Extracted], path: str) -> PythonEnvironment:
    distributions = []
    for name in fs.listdir(path):
        entry = fs.get(f"{path}/{name}")
        if entry is None:
            continue
        if name.endswith(".dist-info") and entry.kind is FileKind.DIRECTORY:
            metadata = f"{path}/{name}/METADATA"
        elif name.endswith(".egg-info") and entry.kind is FileKind.DIRECTORY:
            metadata = f"{path}/{name}/PKG-INFO"
        elif name.endswith(".egg-info") and entry.kind is FileKind.FILE:
            metadata = f"{path}/{name}"
        else:
            continue
        text = fs.extracted(metadata)
        distributions.append(
            distribution_from_metadata(f"{path}/{name}", text if isinstance(text, str) else None, name)
        )
    distributions.sort(key=lambda d: (d.name, d.version))
    return PythonEnvironment(path, tuple(distributions))


def program_name(file_name: str, names: frozenset[str]) -> str | None:
    """The configured program ``file_name`` is a copy of, e.g. ``gcc`` for ``x86_64-linux-gnu-gcc-12``."""
    if file_name in names:
        return file_name
    stripped = _VERSION_SUFFIX.sub("", _TRIPLET.sub("", file_name))
    return stripped if stripped in names else None


def _binary(fs: ImageFilesystem[_Extracted], entry: FileEntry, names: frozenset[str]) -> Binary | None:
    named = program_name(entry.path.rsplit("/", 1)[-1], names)
    if entry.path.startswith(_ALTERNATIVES):
        # dpkg's alternatives links are bookkeeping; the /usr/bin link to them is reported.
        named = None
    if entry.kind is FileKind.SYMLINK:
        if named is None:
            return None
        target = fs.resolve(entry.path)
        resolved = fs.get(target) if target else None
        if resolved is None or not resolved.is_executable:
            return None
        return Binary(entry.path, named, (BinaryMatch.NAME,), entry.layer, target=target)
    if entry.kind is not FileKind.FILE or not entry.is_executable:
        return None
    info = fs.extracted(entry.path)
    go = info if isinstance(info, GoBuildInfo) else None
    matched: list[BinaryMatch] = []
    if named is not None:
        matched.append(BinaryMatch.NAME)
    if go is not None:
        matched.append(BinaryMatch.GO_BUILDINFO)
    if not matched:
        return None
    program = go.program if go is not None and go.main_package else named or ""
    return Binary(entry.path, program or entry.path.rsplit("/", 1)[-1], tuple(matched), entry.layer, go)


def _config(document: Mapping[str, Any]) -> ImageConfig:
    config = document.get("config") or document.get("Config") or {}
    if not isinstance(config, dict):
        raise InspectError("the image config's `config` member is not an object")
    env: list[tuple[str, str]] = []
    for item in _strings(config.get("Env"), "Env"):
        key, _, value = item.partition("=")
        env.append((key, value))
    labels = config.get("Labels") or {}
    ports = config.get("ExposedPorts") or {}
    if not isinstance(labels, dict) or not isinstance(ports, dict):
        raise InspectError("the image config has malformed Labels or ExposedPorts")
    history = []
    for item in document.get("history") or ():
        if isinstance(item, dict):
            history.append(
                HistoryEntry(
                    created_by=str(item.get("created_by") or ""),
                    empty_layer=bool(item.get("empty_layer")),
                    created=str(item.get("created") or ""),
                    comment=str(item.get("comment") or ""),
                )
            )
    return ImageConfig(
        user=str(config.get("User") or ""),
        env=tuple(env),
        entrypoint=_optional_strings(config.get("Entrypoint"), "Entrypoint"),
        cmd=_optional_strings(config.get("Cmd"), "Cmd"),
        healthcheck=_healthcheck(config.get("Healthcheck")),
        exposed_ports=tuple(sorted(str(p) for p in ports)),
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        history=tuple(history),
        working_dir=str(config.get("WorkingDir") or ""),
        architecture=str(document.get("architecture") or ""),
        os=str(document.get("os") or ""),
    )


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InspectError(f"the image config's {what} is not a list of strings")
    return tuple(value)


def _optional_strings(value: object, what: str) -> tuple[str, ...] | None:
    return None if value is None else _strings(value, what)


def _healthcheck(value: object) -> HealthCheck | None:
    if not isinstance(value, dict):
        return None

    def number(key: str) -> int:
        item = value.get(key)
        return item if isinstance(item, int) else 0

    return HealthCheck(
        test=_strings(value.get("Test"), "Healthcheck.Test"),
        interval_ns=number("Interval"),
        timeout_ns=number("Timeout"),
        start_period_ns=number("StartPeriod"),
        retries=number("Retries"),
    )
