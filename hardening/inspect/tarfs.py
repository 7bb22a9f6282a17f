"""Read a ``docker save`` archive in place and merge its layers into one filesystem view.

Nothing is extracted: the outer archive and every uncompressed layer are read through seeks into
the one open file, and gzip layers are streamed once. The merged view follows overlay semantics
(whiteouts, opaque directories, a later layer replacing an earlier entry) and remembers which
layer last wrote each path. Hostile archives are expected: every oddity becomes an ``Anomaly``
instead of an exception, and only an archive that cannot be read at all raises ``InspectError``.

Callers choose which file contents matter through two callbacks: ``wants`` gives the byte budget
for an entry (0 = do not read it) and ``extract`` turns a bounded reader into whatever the caller
keeps. That keeps the expensive part — reading bytes — under the caller's control.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar, cast

from hardening.errors import InspectError
from hardening.inspect.tarstream import (
    Member,
    Source,
    StreamSource,
    TarEnd,
    TarFormatError,
    WindowSource,
    members,
)

T = TypeVar("T")

# Symlink resolution gives up after this many hops, as Linux does (MAXSYMLINKS).
SYMLINK_HOP_LIMIT = 40
# JSON documents in a docker save archive are a few kilobytes; anything bigger is not ours.
MAX_JSON_BYTES = 16 * 1024 * 1024
# Stream-read (gzip) layers keep at most this much of one file in memory for ``extract``.
MAX_STREAM_BUFFER = 64 * 1024 * 1024

_WHITEOUT_PREFIX = ".wh."
_OPAQUE_MARKER = ".wh..wh..opq"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BLOCK = tarfile.BLOCKSIZE


class AnomalyKind(StrEnum):
    """What was odd about an archive entry."""

    ABSOLUTE_PATH = "absolute-path"
    PATH_TRAVERSAL = "path-traversal"
    SYMLINK_LOOP = "symlink-loop"
    SYMLINK_ESCAPES_ROOT = "symlink-escapes-root"
    DEVICE_FILE = "device-file"
    HARDLINK_MISSING_TARGET = "hardlink-missing-target"
    DUPLICATE_ENTRY = "duplicate-entry"
    NON_DIRECTORY_PARENT = "non-directory-parent"
    INVALID_WHITEOUT = "invalid-whiteout"
    UNSUPPORTED_ENTRY = "unsupported-entry"
    MISSING_END_OF_ARCHIVE = "missing-end-of-archive"
    EMPTY_LAYER_BLOB = "empty-layer-blob"
    CONTENT_TRUNCATED = "content-truncated"


@dataclass(frozen=True)
class Anomaly:
    """A suspicious entry. ``layer`` is the layer index, or None for the archive itself."""

    path: str
    layer: int | None
    kind: AnomalyKind
    detail: str = ""


class FileKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    FIFO = "fifo"


@dataclass(frozen=True)
class FileEntry:
    """One path of the merged view.

    ``mode`` holds the permission bits only (including setuid, setgid and sticky). A hard link is
    reported as the file it links to, with ``hardlink_to`` naming that file. ``implicit`` marks a
    directory no layer listed but some entry needed as a parent.
    """

    path: str
    kind: FileKind
    mode: int
    uid: int
    gid: int
    size: int
    layer: int
    linkname: str = ""
    hardlink_to: str = ""
    implicit: bool = False

    @property
    def is_executable(self) -> bool:
        return self.kind is FileKind.FILE and bool(self.mode & 0o111)


@dataclass(frozen=True)
class LayerInfo:
    """A layer as the archive lists it; ``index`` 0 is the base."""

    index: int
    diff_id: str
    blob: str
    blob_size: int
    compressed: bool
    content_size: int


class RandomReader(Protocol):
    """Bounded random access to one file's content for an ``extract`` callback."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; shorter at the end of the file or the budget."""
        ...


Wants = Callable[[FileEntry], int]


def _nothing_wanted(entry: FileEntry) -> int:
    return 0


def _extract_nothing(entry: FileEntry, reader: RandomReader) -> None:
    return None


class _Node:
    """Mutable tree node used while merging; the public view hands out ``FileEntry`` copies."""

    __slots__ = ("children", "entry", "extracted")

    def __init__(self, entry: FileEntry, extracted: object = None) -> None:
        self.entry = entry
        self.children: dict[str, _Node] | None = {} if entry.kind is FileKind.DIRECTORY else None
        self.extracted = extracted


class ImageFilesystem(Generic[T]):
    """The merged, read-only view of an image's layers."""

    def __init__(self, root: _Node, anomalies: tuple[Anomaly, ...]) -> None:
        self._root = root
        self.anomalies = anomalies

    def _node(self, path: str) -> _Node | None:
        node = self._root
        for part in _split(path):
            if node.children is None:
                return None
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def get(self, path: str) -> FileEntry | None:
        """The entry at exactly ``path``; no symlink along the way is followed."""
        node = self._node(path)
        return node.entry if node else None

    def lookup(self, path: str) -> FileEntry | None:
        """The entry ``path`` leads to inside the image, following symlinks."""
        resolved = self.resolve(path)
        return self.get(resolved) if resolved is not None else None

    def extracted(self, path: str) -> T | None:
        """What ``extract`` returned for the file now at ``path`` (no symlinks followed)."""
        node = self._node(path)
        return node.extracted if node else None  # type: ignore[return-value]

    def listdir(self, path: str) -> tuple[str, ...]:
        node = self._node(path)
        if node is None or node.children is None:
            return ()
        return tuple(sorted(node.children))

    def walk(self) -> Iterator[FileEntry]:
        """Every entry, parents before children, names in sorted order."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield node.entry
            if node.children:
                stack.extend(node.children[name] for name in sorted(node.children, reverse=True))

    def resolve(self, path: str, *, follow_last: bool = True) -> str | None:
        """The canonical path ``path`` names inside the image, or None (missing, loop).

        ``..`` at the root stays at the root and absolute targets restart at the image root,
        so resolution can never leave the image.
        """
        outcome = _resolve(self._root, path, follow_last=follow_last)
        return outcome.path if outcome.status == "ok" else None


@dataclass(frozen=True)
class _Resolution:
    status: str  # "ok" | "missing" | "loop"
    path: str | None
    escaped: bool


def _resolve(root: _Node, path: str, *, follow_last: bool) -> _Resolution:
    pending = list(reversed(_split(path)))
    stack: list[tuple[str, _Node]] = []
    hops = 0
    escaped = False
    while pending:
        part = pending.pop()
        if part == "..":
            if stack:
                stack.pop()
            else:
                escaped = True
            continue
        parent = stack[-1][1] if stack else root
        if parent.children is None:
            return _Resolution("missing", None, escaped)
        child = parent.children.get(part)
        if child is None:
            return _Resolution("missing", None, escaped)
        if child.entry.kind is FileKind.SYMLINK and (pending or follow_last):
            hops += 1
            if hops > SYMLINK_HOP_LIMIT:
                return _Resolution("loop", None, escaped)
            target = child.entry.linkname
            if target.startswith("/"):
                stack.clear()
            pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        stack.append((part, child))
    return _Resolution("ok", "/" + "/".join(name for name, _ in stack), escaped)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def _join(parts: tuple[str, ...] | list[str]) -> str:
    return "/" + "/".join(parts)


# ---------------------------------------------------------------------------------------------
# Layer scanning: one pass over one layer tar, producing operations to merge later.


@dataclass
class _Op:
    action: str  # "whiteout" | "opaque" | "add" | "hardlink"
    parts: tuple[str, ...]
    entry: FileEntry | None = None
    extracted: object = None
    target: tuple[str, ...] = ()


@dataclass
class _LayerScan:
    ops: list[_Op] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    content_size: int = 0


def _normalise(name: str, layer: int, anomalies: list[Anomaly]) -> tuple[str, ...] | None:
    """Archive member name → path components, or None when the entry must be ignored."""
    if name.startswith("/"):
        anomalies.append(Anomaly(name, layer, AnomalyKind.ABSOLUTE_PATH))
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        anomalies.append(Anomaly(name, layer, AnomalyKind.PATH_TRAVERSAL))
        return None
    return parts


class _MemberReader:
    """Bounded access to one member's data through the layer's source.

    ``budget`` caps the bytes handed to the caller. On a random-access source reads go straight
    to the bytes asked for. A stream cannot go back, so the member is buffered forward as far as
    a read reaches (at most ``MAX_STREAM_BUFFER``): the bytes have to be decompressed anyway, and
    an ELF's section table sits at its end, after the data it points to.
    """

    def __init__(self, source: Source, member: Member, budget: int) -> None:
        self._source = source
        self._start = member.offset_data
        self._size = member.size
        self._budget = budget
        self._stream = source.size is None
        self._limit = min(member.size, MAX_STREAM_BUFFER)
        self._buffer = bytearray()

    @property
    def size(self) -> int:
        return self._size

    @property
    def truncated(self) -> bool:
        return self._stream and self._limit < self._size and len(self._buffer) >= self._limit

    def read_at(self, offset: int, length: int) -> bytes:
        length = min(length, self._size - offset, self._budget)
        if offset < 0 or length <= 0:
            return b""
        self._budget -= length
        if not self._stream:
            return self._source.read_at(self._start + offset, length)
        end = min(offset + length, self._limit)
        if end > len(self._buffer):
            missing = end - len(self._buffer)
            self._buffer += self._source.read_at(self._start + len(self._buffer), missing)
        return bytes(self._buffer[offset:end])


_TAR_KINDS: Mapping[bytes, FileKind] = {
    b"0": FileKind.FILE,
    b"\x00": FileKind.FILE,
    b"7": FileKind.FILE,
    b"5": FileKind.DIRECTORY,
    b"2": FileKind.SYMLINK,
    b"3": FileKind.CHAR_DEVICE,
    b"4": FileKind.BLOCK_DEVICE,
    b"6": FileKind.FIFO,
}
_HARDLINK = b"1"


def _scan_layer(
    source: Source,
    index: int,
    *,
    wants: Wants,
    extract: Callable[[FileEntry, RandomReader], object],
) -> _LayerScan:
    scan = _LayerScan()
    anomalies = scan.anomalies
    # Only regular files of this layer can be re-read for a hard link, and only with random access.
    regular: dict[tuple[str, ...], Member] = {}
    random_access = source.size is not None
    end = TarEnd()
    for member in members(source, end):
        parts = _normalise(member.name, index, anomalies)
        if parts is None:
            continue
        base = parts[-1] if parts else ""
        if base.startswith(_WHITEOUT_PREFIX):
            _scan_whiteout(scan, parts, index)
            continue
        path = _join(parts)
        if member.type == _HARDLINK:
            target = _normalise(member.linkname, index, anomalies)
            if target is None:
                continue
            op = _Op("hardlink", parts, target=target)
            original = regular.get(target)
            if random_access and original is not None:
                entry = _entry(original, path, FileKind.FILE, index)
                op.extracted = _extract_member(source, original, entry, wants, extract, scan)
            scan.ops.append(op)
            continue
        kind = _TAR_KINDS.get(member.type)
        if kind is None:
            anomalies.append(Anomaly(path, index, AnomalyKind.UNSUPPORTED_ENTRY, f"tar type {member.type!r}"))
            continue
        if kind in (FileKind.CHAR_DEVICE, FileKind.BLOCK_DEVICE):
            anomalies.append(
                Anomaly(path, index, AnomalyKind.DEVICE_FILE, f"{member.devmajor}:{member.devminor}")
            )
        entry = _entry(member, path, kind, index)
        extracted: object = None
        if kind is FileKind.FILE:
            scan.content_size += member.size
            regular[parts] = member
            extracted = _extract_member(source, member, entry, wants, extract, scan)
        scan.ops.append(_Op("add", parts, entry=entry, extracted=extracted))
    if not end.marker:
        anomalies.append(Anomaly("", index, AnomalyKind.MISSING_END_OF_ARCHIVE))
    return scan


def _scan_whiteout(scan: _LayerScan, parts: tuple[str, ...], index: int) -> None:
    base = parts[-1]
    if base == _OPAQUE_MARKER:
        scan.ops.append(_Op("opaque", parts[:-1]))
    elif base.startswith(_WHITEOUT_PREFIX + _WHITEOUT_PREFIX):
        # Other ".wh..wh." names are aufs bookkeeping, not deletions.
        return
    elif base == _WHITEOUT_PREFIX or base[len(_WHITEOUT_PREFIX) :] in (".", ".."):
        scan.anomalies.append(Anomaly(_join(parts), index, AnomalyKind.INVALID_WHITEOUT))
    else:
        scan.ops.append(_Op("whiteout", (*parts[:-1], base[len(_WHITEOUT_PREFIX) :])))


def _entry(member: Member, path: str, kind: FileKind, index: int) -> FileEntry:
    return FileEntry(
        path=path,
        kind=kind,
        mode=member.mode & 0o7777,
        uid=member.uid,
        gid=member.gid,
        size=member.size if kind is FileKind.FILE else 0,
        layer=index,
        linkname=member.linkname if kind is FileKind.SYMLINK else "",
    )


def _extract_member(
    source: Source,
    member: Member,
    entry: FileEntry,
    wants: Wants,
    extract: Callable[[FileEntry, RandomReader], object],
    scan: _LayerScan,
) -> object:
    budget = wants(entry)
    if budget <= 0:
        return None
    reader = _MemberReader(source, member, budget)
    result = extract(entry, reader)
    if reader.truncated:
        scan.anomalies.append(
            Anomaly(entry.path, entry.layer, AnomalyKind.CONTENT_TRUNCATED, f"{member.size} bytes")
        )
    return result


# ---------------------------------------------------------------------------------------------
# Merging layer scans into one tree.


def _children(node: _Node) -> dict[str, _Node]:
    if node.children is None:
        raise InspectError(f"internal error: {node.entry.path} is not a directory")
    return node.children


def _dir_entry(path: str, layer: int) -> FileEntry:
    return FileEntry(path, FileKind.DIRECTORY, 0o755, 0, 0, 0, layer, implicit=True)


class _Merger:
    def __init__(self) -> None:
        self.root = _Node(_dir_entry("/", 0))
        self.anomalies: list[Anomaly] = []

    def _existing(self, parts: tuple[str, ...]) -> tuple[_Node | None, _Node | None]:
        """(parent, node) at ``parts`` without following symlinks."""
        parent: _Node | None = None
        node: _Node | None = self.root
        for part in parts:
            if node is None or node.children is None:
                return None, None
            parent, node = node, node.children.get(part)
        return parent, node

    def _parent_dir(self, parts: tuple[str, ...], layer: int) -> _Node:
        node = self.root
        children = _children(node)
        for depth, part in enumerate(parts):
            child = children.get(part)
            if child is None or child.children is None:
                if child is not None:
                    # Overlay puts a new directory above a lower non-directory: it hides it.
                    self.anomalies.append(
                        Anomaly(_join(parts[: depth + 1]), layer, AnomalyKind.NON_DIRECTORY_PARENT)
                    )
                child = _Node(_dir_entry(_join(parts[: depth + 1]), layer))
                children[part] = child
            node = child
            children = _children(node)
        return node

    def apply(self, scan: _LayerScan, layer: int) -> None:
        # Whiteouts and opaque markers hide lower layers only, whatever their position in the tar.
        for op in scan.ops:
            if op.action == "whiteout":
                parent, node = self._existing(op.parts)
                if parent is not None and parent.children is not None and node is not None:
                    del parent.children[op.parts[-1]]
            elif op.action == "opaque":
                _, node = self._existing(op.parts)
                if node is not None and node.children is not None:
                    node.children.clear()
        seen: set[tuple[str, ...]] = set()
        for op in scan.ops:
            if op.action not in ("add", "hardlink"):
                continue
            if op.parts in seen:
                self.anomalies.append(Anomaly(_join(op.parts), layer, AnomalyKind.DUPLICATE_ENTRY))
            seen.add(op.parts)
            if op.action == "hardlink":
                self._hardlink(op, layer)
            elif op.entry is not None:
                self._add(op.parts, op.entry, op.extracted, layer)

    def _add(self, parts: tuple[str, ...], entry: FileEntry, extracted: object, layer: int) -> None:
        if not parts:
            if entry.kind is FileKind.DIRECTORY:
                self.root.entry = replace(entry, path="/")
            else:
                self.anomalies.append(Anomaly("/", layer, AnomalyKind.NON_DIRECTORY_PARENT))
            return
        children = _children(self._parent_dir(parts[:-1], layer))
        existing = children.get(parts[-1])
        if entry.kind is FileKind.DIRECTORY and existing is not None and existing.children is not None:
            existing.entry = entry
            return
        children[parts[-1]] = _Node(entry, extracted)

    def _hardlink(self, op: _Op, layer: int) -> None:
        _, target = self._existing(op.target)
        path = _join(op.parts)
        if target is None or target.entry.kind is FileKind.DIRECTORY:
            self.anomalies.append(Anomaly(path, layer, AnomalyKind.HARDLINK_MISSING_TARGET, _join(op.target)))
            return
        entry = replace(target.entry, path=path, layer=layer, hardlink_to=_join(op.target))
        extracted = op.extracted if op.extracted is not None else target.extracted
        self._add(op.parts, entry, extracted, layer)

    def finish(self) -> tuple[Anomaly, ...]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(node.children.values())
            entry = node.entry
            if entry.kind is FileKind.SYMLINK:
                outcome = _resolve(self.root, entry.path, follow_last=True)
                if outcome.status == "loop":
                    self.anomalies.append(
                        Anomaly(entry.path, entry.layer, AnomalyKind.SYMLINK_LOOP, entry.linkname)
                    )
                elif outcome.escaped:
                    self.anomalies.append(
                        Anomaly(entry.path, entry.layer, AnomalyKind.SYMLINK_ESCAPES_ROOT, entry.linkname)
                    )
        return tuple(self.anomalies)


# ---------------------------------------------------------------------------------------------
# The outer archive.


@dataclass(frozen=True)
class ImageArchive(Generic[T]):
    """A read ``docker save`` archive: the image config, its layers and the merged filesystem."""

    config: Mapping[str, Any]
    config_bytes: bytes
    repo_tags: tuple[str, ...]
    layers: tuple[LayerInfo, ...]
    filesystem: ImageFilesystem[T]

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        return self.filesystem.anomalies


def read_image_tar(
    path: Path,
    *,
    reference: str | None = None,
    wants: Wants = _nothing_wanted,
    extract: Callable[[FileEntry, RandomReader], T | None] = _extract_nothing,
) -> ImageArchive[T]:
    """Read the ``docker save`` archive at ``path`` (legacy or OCI layout)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InspectError(
            f"cannot open image archive {path}: {exc.strerror or exc}",
            hint="pass the path of a tar written by `docker save`",
        ) from exc
    with handle:
        return _read_archive(handle, str(path), reference, wants, extract)


def read_image_stream(
    fileobj: IO[bytes],
    *,
    reference: str | None = None,
    wants: Wants = _nothing_wanted,
    extract: Callable[[FileEntry, RandomReader], T | None] = _extract_nothing,
) -> ImageArchive[T]:
    """Read a ``docker save`` stream; a non-seekable one is first copied to an anonymous file."""
    if _seekable(fileobj):
        return _read_archive(fileobj, "<stream>", reference, wants, extract)
    # The manifest comes last in a docker save stream, so the layers need random access.
    with tempfile.TemporaryFile(prefix="hardening-inspect-") as spool:
        shutil.copyfileobj(fileobj, spool, 1024 * 1024)
        spool.seek(0)
        return _read_archive(spool, "<stream>", reference, wants, extract)


def _seekable(fileobj: IO[bytes]) -> bool:
    try:
        return fileobj.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _read_archive(
    handle: IO[bytes],
    name: str,
    reference: str | None,
    wants: Wants,
    extract: Callable[[FileEntry, RandomReader], T | None],
) -> ImageArchive[T]:
    outer = _OuterArchive(handle, name)
    layout = outer.layout(reference)
    config_bytes = outer.read_json_bytes(layout.config)
    config = _load_json(config_bytes, f"{name}: {layout.config}")
    if not isinstance(config, dict):
        raise InspectError(f"{name}: image config {layout.config} is not a JSON object")
    diff_ids = _diff_ids(config, name)
    if len(diff_ids) != len(layout.layers):
        raise InspectError(
            f"{name}: the manifest lists {len(layout.layers)} layers but the image config "
            f"has {len(diff_ids)} diff ids",
            hint="the archive is inconsistent; save the image again",
        )
    merger = _Merger()
    merger.anomalies.extend(outer.anomalies)
    layers: list[LayerInfo] = []
    for index, (blob, diff_id) in enumerate(zip(layout.layers, diff_ids, strict=True)):
        info, scan = outer.scan_layer(blob, index, diff_id, wants, extract)
        layers.append(info)
        merger.apply(scan, index)
        merger.anomalies.extend(scan.anomalies)
    anomalies = merger.finish()
    return ImageArchive(
        config=config,
        config_bytes=config_bytes,
        repo_tags=layout.repo_tags,
        layers=tuple(layers),
        filesystem=ImageFilesystem(merger.root, anomalies),
    )


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"{what} is not valid JSON: {exc}") from exc


def _diff_ids(config: Mapping[str, Any], name: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InspectError(f"{name}: the image config has no rootfs.diff_ids list")
    return diff_ids


@dataclass(frozen=True)
class _Layout:
    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]


class _OuterArchive:
    def __init__(self, handle: IO[bytes], name: str) -> None:
        self.handle = handle
        self.name = name
        size = handle.seek(0, 2)
        handle.seek(0)
        try:
            # Closed with ``handle`` by the caller; a TarFile on a fileobj owns nothing to close.
            self.tar = tarfile.open(fileobj=handle, mode="r:")  # noqa: SIM115
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InspectError(
                f"{name} is not a readable tar archive: {exc}",
                hint="pass the output of `docker save IMAGE -o image.tar`",
            ) from exc
        self.anomalies = _check_end(handle, self.tar.offset, size, f"{name} is truncated", layer=None)
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            if member.offset_data + member.size > size:
                raise InspectError(f"{name} is truncated inside {member.name}")
            self.members[posixpath.normpath(member.name.lstrip("/"))] = member

    def _member(self, blob: str) -> tarfile.TarInfo:
        name = posixpath.normpath(blob.lstrip("/"))
        # docker 20.10 stores a repeated layer once and links the other copies to it.
        for _ in range(8):
            member = self.members.get(name)
            if member is None:
                raise InspectError(f"{self.name}: {blob} is listed but missing from the archive")
            if member.issym():
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = posixpath.normpath(member.linkname.lstrip("/"))
            else:
                return member
        raise InspectError(f"{self.name}: {blob} is a chain of links")

    def _open(self, blob: str) -> IO[bytes]:
        member = self._member(blob)
        try:
            stream = self.tar.extractfile(member)
        except (KeyError, tarfile.TarError) as exc:
            raise InspectError(f"{self.name}: cannot read {blob}: {exc}") from exc
        if stream is None:
            raise InspectError(f"{self.name}: {blob} is not a file")
        return stream

    def read_json_bytes(self, blob: str) -> bytes:
        with self._open(blob) as stream:
            data = stream.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:
            raise InspectError(f"{self.name}: {blob} is larger than {MAX_JSON_BYTES} bytes")
        return data

    def layout(self, reference: str | None) -> _Layout:
        if "manifest.json" in self.members:
            return self._docker_layout(reference)
        if "index.json" in self.members:
            return self._oci_layout(reference)
        raise InspectError(
            f"{self.name} has neither manifest.json nor index.json",
            hint="this is a tar archive but not one written by `docker save`",
        )

    def _docker_layout(self, reference: str | None) -> _Layout:
        manifest = _load_json(self.read_json_bytes("manifest.json"), f"{self.name}: manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise InspectError(f"{self.name}: manifest.json is not a non-empty list")
        chosen = _choose(
            manifest,
            lambda item: tuple(t for t in item.get("RepoTags") or () if isinstance(t, str)),
            reference,
            self.name,
        )
        config = chosen.get("Config")
        layers = chosen.get("Layers")
        if not isinstance(config, str) or not isinstance(layers, list):
            raise InspectError(f"{self.name}: manifest.json entry lacks Config or Layers")
        if not all(isinstance(layer, str) for layer in layers):
            raise InspectError(f"{self.name}: manifest.json Layers must be strings")
        tags = tuple(t for t in chosen.get("RepoTags") or () if isinstance(t, str))
        return _Layout(config, tuple(layers), tags)

    def _oci_layout(self, reference: str | None) -> _Layout:
        document = _load_json(self.read_json_bytes("index.json"), f"{self.name}: index.json")
        names: tuple[str, ...] = ()
        # An index may point at further indexes (multi-platform); follow them a few levels.
        for _ in range(4):
            entries = document.get("manifests") if isinstance(document, dict) else None
            if not isinstance(entries, list) or not entries:
                raise InspectError(f"{self.name}: an OCI index has no manifests")
            chosen = _choose(entries, _oci_names, reference, self.name)
            names = names or _oci_names(chosen)
            blob = _blob_path(chosen.get("digest"), self.name)
            document = _load_json(self.read_json_bytes(blob), f"{self.name}: {blob}")
            if isinstance(document, dict) and "layers" in document:
                break
        if not isinstance(document, dict) or not isinstance(document.get("layers"), list):
            raise InspectError(f"{self.name}: no image manifest found through index.json")
        config = document.get("config")
        if not isinstance(config, dict):
            raise InspectError(f"{self.name}: the OCI manifest has no config descriptor")
        layers = tuple(
            _blob_path(layer.get("digest") if isinstance(layer, dict) else None, self.name)
            for layer in document["layers"]
        )
        return _Layout(_blob_path(config.get("digest"), self.name), layers, names)

    def scan_layer(
        self,
        blob: str,
        index: int,
        diff_id: str,
        wants: Wants,
        extract: Callable[[FileEntry, RandomReader], object],
    ) -> tuple[LayerInfo, _LayerScan]:
        member = self._member(blob)
        what = f"{self.name}: layer {index} ({blob})"
        window = WindowSource(self.handle, member.offset_data, member.size)
        head = window.read_at(0, 4)
        compressed = head.startswith(_GZIP_MAGIC)
        if head.startswith(_ZSTD_MAGIC):
            raise InspectError(f"{what} is zstd-compressed, which is not supported")
        if member.size == 0:
            scan = _LayerScan()
            scan.anomalies.append(Anomaly(blob, index, AnomalyKind.EMPTY_LAYER_BLOB))
        else:
            try:
                if compressed:
                    with gzip.GzipFile(fileobj=_WindowFile(window), mode="rb") as unzipped:
                        stream = StreamSource(cast(IO[bytes], unzipped))
                        scan = _scan_layer(stream, index, wants=wants, extract=extract)
                else:
                    scan = _scan_layer(window, index, wants=wants, extract=extract)
            except TarFormatError as exc:
                raise InspectError(
                    f"{what} is not a readable tar: {exc}",
                    hint="the archive is damaged or was cut short; save the image again",
                ) from exc
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise InspectError(f"{what} is not a readable gzip stream: {exc}") from exc
        info = LayerInfo(index, diff_id, blob, member.size, compressed, scan.content_size)
        return info, scan


class _WindowFile(io.RawIOBase):
    """A window of the saved image as a sequential file, for ``gzip.GzipFile``."""

    def __init__(self, window: WindowSource) -> None:
        super().__init__()
        self._window = window
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._window.read_at(self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def _check_end(handle: IO[bytes], offset: int, size: int, message: str, layer: int | None) -> list[Anomaly]:
    """Tell a complete archive from one cut short: tarfile stops quietly at either."""
    handle.seek(offset)
    block = handle.read(_BLOCK)
    if not block and offset == size:
        # Complete members but no end-of-archive blocks: readable, yet not what docker writes.
        return [Anomaly("", layer, AnomalyKind.MISSING_END_OF_ARCHIVE)]
    if len(block) < _BLOCK:
        raise InspectError(message, hint="the file was cut short; save the image again")
    if block.count(0) != _BLOCK:
        raise InspectError(
            message.replace("is truncated", "has unreadable data"),
            details=f"no valid tar header at byte {offset}",
        )
    return []


def _choose(
    items: list[Any],
    names: Callable[[dict[str, Any]], tuple[str, ...]],
    reference: str | None,
    archive: str,
) -> dict[str, Any]:
    candidates = [item for item in items if isinstance(item, dict)]
    if reference:
        matching = [item for item in candidates if reference in names(item)]
        if matching:
            return matching[0]
    if len(candidates) == 1:
        return candidates[0]
    known = ", ".join(sorted({n for item in candidates for n in names(item)})) or "none"
    raise InspectError(
        f"{archive} holds {len(candidates)} images and none is named {reference!r}",
        hint=f"names in the archive: {known}",
    )


def _oci_names(item: dict[str, Any]) -> tuple[str, ...]:
    annotations = item.get("annotations")
    if not isinstance(annotations, dict):
        return ()
    keys = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
    return tuple(annotations[k] for k in keys if isinstance(annotations.get(k), str))


def _blob_path(digest: object, archive: str) -> str:
    if not isinstance(digest, str) or ":" not in digest:
        raise InspectError(f"{archive}: invalid digest {digest!r} in an OCI descriptor")
    algorithm, _, encoded = digest.partition(":")
    if not algorithm.isalnum() or not encoded.isalnum():
        raise InspectError(f"{archive}: invalid digest {digest!r} in an OCI descriptor")
    return f"blobs/{algorithm}/{encoded}"
