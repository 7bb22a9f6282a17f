"""A tar header writer whose output depends on the entry alone.

``tarfile`` writes what the entry carries (user and group names, fractional times, its own PAX
header names); Go's writer (the engine's) adds access and change times when it has them. Here a
header holds exactly: name, mode bits, numeric owner, size, whole-second mtime, type, link target,
device numbers and extended attributes — ustar where a field fits, one PAX header where it does
not — so two equal entries always give equal bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
# The name of every PAX extended header, as GNU tar spells it: a constant, never derived.
_PAX_NAME = b"././@PaxHeader"
_XATTR = "SCHILY.xattr."


@dataclass(frozen=True)
class Header:
    name: str  # directories end with "/"
    kind: bytes  # ustar type flag: b"0" file, b"1" hard link, b"2" symlink, b"5" directory, …
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: Sequence[tuple[str, bytes]] = ()


def _octal(value: int, width: int) -> bytes | None:
    """``value`` as a NUL-terminated octal field of ``width`` bytes, or None when it does not fit."""
    if value < 0 or value >= 8 ** (width - 1):
        return None
    return b"%0*o\x00" % (width - 1, value)


def _record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode("utf-8") + b"=" + value + b"\n"
    # The length counts its own digits: grow until the total is stable.
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode("ascii") + body


def _ustar(
    name: bytes, kind: bytes, mode: int, uid: bytes, gid: bytes, size: bytes, mtime: bytes, link: bytes
) -> bytearray:
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = b"%07o\x00" % (mode & 0o7777)
    block[108:116] = uid
    block[116:124] = gid
    block[124:136] = size
    block[136:148] = mtime
    block[156:157] = kind
    block[157 : 157 + len(link)] = link
    block[257:265] = b"ustar\x0000"
    block[329:337] = b"0000000\x00"
    block[337:345] = b"0000000\x00"
    return block


def _checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)


def _fits(text: str) -> bytes | None:
    raw = text.encode("utf-8")
    return raw if raw.isascii() and len(raw) <= 100 else None


def encode(header: Header) -> bytes:
    """The header block(s) of ``header``: a PAX header first when a field needs one."""
    records: list[bytes] = []
    name = _fits(header.name)
    if name is None:
        records.append(_record("path", header.name.encode("utf-8")))
        name = header.name.encode("utf-8")[:99].decode("utf-8", "ignore").encode("ascii", "replace")
    link = _fits(header.linkname)
    if link is None:
        records.append(_record("linkpath", header.linkname.encode("utf-8")))
        link = b""
    fields = {}
    for key, value, width in (
        ("uid", header.uid, 8),
        ("gid", header.gid, 8),
        ("size", header.size, 12),
        ("mtime", header.mtime, 12),
    ):
        encoded = _octal(value, width)
        if encoded is None:  # too large (or negative) for ustar: the PAX record carries it
            records.append(_record(key, str(value).encode("ascii")))
            encoded = b"0" * (width - 1) + b"\x00"
        fields[key] = encoded
    records.extend(_record(_XATTR + key, value) for key, value in sorted(header.xattrs))
    block = _ustar(
        name, header.kind, header.mode, fields["uid"], fields["gid"], fields["size"], fields["mtime"], link
    )
    if header.kind in (b"3", b"4"):
        major, minor = _octal(header.devmajor, 8), _octal(header.devminor, 8)
        if major is None or minor is None:
            raise ValueError(f"device numbers of {header.name} do not fit a tar header")
        block[329:337], block[337:345] = major, minor
    _checksum(block)
    if not records:
        return bytes(block)
    payload = b"".join(records)
    pax = _ustar(
        _PAX_NAME,
        b"x",
        0o644,
        b"0000000\x00",
        b"0000000\x00",
        b"%011o\x00" % len(payload),
        b"0" * 11 + b"\x00",
        b"",
    )
    _checksum(pax)
    return bytes(pax) + payload + padding(len(payload)) + bytes(block)


def padding(size: int) -> bytes:
    """Zero bytes that fill ``size`` bytes of data up to the next block."""
    return bytes(-size % BLOCK)
