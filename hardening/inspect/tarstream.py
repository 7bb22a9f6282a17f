"""A small, strict tar header reader for layer archives.

``tarfile`` costs a few hundred microseconds per member (most of it PAX handling), which is
seconds for an image of a few tens of thousands of files. Layers only need the headers and
docker writes plain ustar/PAX (Go's archive/tar), so this reader parses exactly that — ustar,
PAX extended and global headers, GNU long names — with the checksum verified on every header.
It reads through a ``Source``: random access into a window of the saved image, or a forward-only
stream for compressed layers. Everything it cannot trust raises ``TarFormatError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Protocol

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
# PAX and GNU long-name payloads are a few hundred bytes; more is an attack, not metadata.
_MAX_META = 1024 * 1024
_SKIP_CHUNK = 1024 * 1024
_HEADER_ONLY = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})


class TarFormatError(Exception):
    """The layer is not a tar archive we can trust (bad checksum, truncation, garbage)."""


class Source(Protocol):
    @property
    def size(self) -> int | None:
        """Total bytes when known (random access), None for a stream."""
        ...

    def read_at(self, offset: int, length: int) -> bytes: ...


class WindowSource:
    """Random access to ``size`` bytes at ``start`` of an open, seekable file."""

    def __init__(self, handle: IO[bytes], start: int, size: int) -> None:
        self._handle = handle
        self._start = start
        self._size = size

    @property
    def size(self) -> int | None:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        length = min(length, self._size - offset)
        if offset < 0 or length <= 0:
            return b""
        self._handle.seek(self._start + offset)
        return self._handle.read(length)


class StreamSource:
    """Forward-only reads from a stream; a read behind the current position is refused."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._position = 0

    @property
    def size(self) -> int | None:
        return None

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < self._position:
            raise TarFormatError("internal error: a stream cannot be read backwards")
        while self._position < offset:
            skipped = self._stream.read(min(_SKIP_CHUNK, offset - self._position))
            if not skipped:
                raise TarFormatError(f"stream ends at byte {self._position}, inside a member")
            self._position += len(skipped)
        data = b""
        while len(data) < length:
            chunk = self._stream.read(length - len(data))
            if not chunk:
                break
            data += chunk
        self._position += len(data)
        return data


@dataclass(frozen=True)
class Member:
    name: str
    linkname: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    devmajor: int
    devminor: int
    offset_data: int
    # Whole seconds; what a rewriter needs to clamp times (the inspector ignores them).
    mtime: int = 0
    # Extended attributes from PAX ``SCHILY.xattr.*`` records, as raw bytes: a file capability
    # (``security.capability``) is binary and must survive a rewrite byte for byte.
    xattrs: tuple[tuple[str, bytes], ...] = ()


@dataclass
class TarEnd:
    """How the archive ended: ``marker`` False means it stopped at end of data without one."""

    marker: bool = False


def _number(field: bytes, what: str) -> int:
    if field[:1] in (b"\x80", b"\xff"):
        # GNU base-256: big-endian two's complement in the remaining bytes.
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else value
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError(f"invalid {what} field {field!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "replace")


_XATTR = "SCHILY.xattr."


def _pax_raw(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    position = 0
    while position < len(data):
        if data[position] == 0:
            break
        space = data.find(b" ", position, position + 20)
        if space < 0:
            raise TarFormatError("malformed PAX record")
        try:
            length = int(data[position:space])
        except ValueError:
            raise TarFormatError("malformed PAX record length") from None
        end = position + length
        if length <= space - position or end > len(data) or data[end - 1 : end] != b"\n":
            raise TarFormatError("malformed PAX record")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals:
            raise TarFormatError("malformed PAX record")
        records[key.decode("utf-8", "replace")] = value
        position = end
    return records


def _pax_int(records: dict[str, str], key: str, default: int) -> int:
    value = records.get(key)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit():
        raise TarFormatError(f"invalid PAX {key} {value!r}")
    return int(value)


def _pax_mtime(records: dict[str, str], default: int) -> int:
    value = records.get("mtime")
    if value is None:
        return default
    whole = value.split(".", 1)[0]
    if not whole.lstrip("-").isdigit() or not whole.isascii():
        raise TarFormatError(f"invalid PAX mtime {value!r}")
    return int(whole)


def members(source: Source, end: TarEnd) -> Iterator[Member]:
    """Every member of the archive in order; ``end`` is filled in when iteration completes.

    The caller may read a member's data through ``source`` before asking for the next one.
    """
    position = 0
    global_pax: dict[str, bytes] = {}
    pax: dict[str, bytes] = {}
    long_name: str | None = None
    long_link: str | None = None
    while True:
        block = source.read_at(position, BLOCK)
        if not block:
            if pax or long_name is not None or long_link is not None:
                raise TarFormatError("archive ends after an extended header")
            end.marker = False
            return
        if len(block) < BLOCK:
            raise TarFormatError(f"truncated header at byte {position}")
        if block == _ZERO_BLOCK:
            end.marker = True
            return
        stored = _number(block[148:156], "checksum")
        # The checksum field itself counts as eight spaces (8 * 32 = 256).
        unsigned = sum(block) - sum(block[148:156]) + 256
        if stored != unsigned:
            signed = 256 + sum(b - 256 if b > 127 else b for b in block[:148] + block[156:])
            if stored != signed:
                raise TarFormatError(f"bad header checksum at byte {position}")
        size = _number(block[124:136], "size")
        kind = block[156:157]
        data_offset = position + BLOCK
        if kind in (b"x", b"g", b"L", b"K"):
            if size > _MAX_META:
                raise TarFormatError(f"oversized extended header at byte {position}")
            payload = source.read_at(data_offset, size)
            if len(payload) < size:
                raise TarFormatError(f"truncated extended header at byte {position}")
            if kind == b"x":
                pax.update(_pax_raw(payload))
            elif kind == b"g":
                global_pax.update(_pax_raw(payload))
            elif kind == b"L":
                long_name = _text(payload)
            else:
                long_link = _text(payload)
            position = data_offset + -(-size // BLOCK) * BLOCK
            continue
        raw = {**global_pax, **pax} if global_pax else pax
        records = {key: value.decode("utf-8", "replace") for key, value in raw.items()}
        name = _text(block[0:100])
        if block[257:262] == b"ustar":
            prefix = _text(block[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        name = records.get("path", long_name if long_name is not None else name)
        linkname = records.get("linkpath", long_link if long_link is not None else _text(block[157:257]))
        size = _pax_int(records, "size", size)
        if size < 0:
            raise TarFormatError(f"negative size at byte {position}")
        member = Member(
            name=name,
            linkname=linkname,
            type=kind,
            mode=_number(block[100:108], "mode"),
            uid=_pax_int(records, "uid", _number(block[108:116], "uid")),
            gid=_pax_int(records, "gid", _number(block[116:124], "gid")),
            size=size,
            devmajor=_number(block[329:337], "devmajor"),
            devminor=_number(block[337:345], "devminor"),
            offset_data=data_offset,
            mtime=_pax_mtime(records, _number(block[136:148], "mtime")),
            xattrs=tuple(
                sorted((key[len(_XATTR) :], value) for key, value in raw.items() if key.startswith(_XATTR))
            ),
        )
        pax = {}
        long_name = long_link = None
        # As in Go's archive/tar: header-only types carry no data whatever their size says.
        data_size = 0 if kind in _HEADER_ONLY else size
        position = data_offset + -(-data_size // BLOCK) * BLOCK
        if source.size is not None and data_offset + data_size > source.size:
            raise TarFormatError(f"truncated data of {name!r}")
        yield member
