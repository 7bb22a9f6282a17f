"""One pass over one layer tar: the operations (add, hard link, whiteout, opaque) to merge later.

A layer's whiteouts may come before or after the entries they sit beside, so a layer is first
scanned into operations and only then merged (``merge``). Oddities become ``Anomaly`` records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hardening.inspect.tarfs.entries import Anomaly, AnomalyKind, FileEntry, FileKind, RandomReader, Wants
from hardening.inspect.tarfs.view import join_parts
from hardening.inspect.tarstream import Member, Source, TarEnd, members

# Stream-read (gzip) layers keep at most this much of one file in memory for ``extract``.
MAX_STREAM_BUFFER = 64 * 1024 * 1024

_WHITEOUT_PREFIX = ".wh."
_OPAQUE_MARKER = ".wh..wh..opq"


@dataclass
class Op:
    action: str  # "whiteout" | "opaque" | "add" | "hardlink"
    parts: tuple[str, ...]
    entry: FileEntry | None = None
    extracted: object = None
    target: tuple[str, ...] = ()


@dataclass
class LayerScan:
    ops: list[Op] = field(default_factory=list)
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


def scan_layer(
    source: Source,
    index: int,
    *,
    wants: Wants,
    extract: Callable[[FileEntry, RandomReader], object],
) -> LayerScan:
    scan = LayerScan()
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
        path = join_parts(parts)
        if member.type == _HARDLINK:
            target = _normalise(member.linkname, index, anomalies)
            if target is None:
                continue
            op = Op("hardlink", parts, target=target)
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
        scan.ops.append(Op("add", parts, entry=entry, extracted=extracted))
    if not end.marker:
        anomalies.append(Anomaly("", index, AnomalyKind.MISSING_END_OF_ARCHIVE))
    return scan


def _scan_whiteout(scan: LayerScan, parts: tuple[str, ...], index: int) -> None:
    base = parts[-1]
    if base == _OPAQUE_MARKER:
        scan.ops.append(Op("opaque", parts[:-1]))
    elif base.startswith(_WHITEOUT_PREFIX + _WHITEOUT_PREFIX):
        # Other ".wh..wh." names are aufs bookkeeping, not deletions.
        return
    elif base == _WHITEOUT_PREFIX or base[len(_WHITEOUT_PREFIX) :] in (".", ".."):
        scan.anomalies.append(Anomaly(join_parts(parts), index, AnomalyKind.INVALID_WHITEOUT))
    else:
        scan.ops.append(Op("whiteout", (*parts[:-1], base[len(_WHITEOUT_PREFIX) :])))


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
    scan: LayerScan,
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
