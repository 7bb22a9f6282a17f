"""Find the build information the Go linker embeds in ELF executables.

The Go toolchain leaves a 32-byte header starting with ``\\xff Go buildinf:`` at a 16-byte aligned
offset near the start of the data (in its own ``.go.buildinfo`` section when sections exist).
Byte 14 is the pointer size, byte 15 holds flags: bit 0 big-endian, bit 1 "strings follow inline".
Since Go 1.18 the strings follow inline as uvarint-length-prefixed bytes (toolchain version, then
the module information); older binaries store two pointers to Go string headers instead. The
module information is wrapped in 16-byte sentinels and is a list of tab-separated lines
(``path``, ``mod``, ``dep``, ``=>``, ``build``).

Reading stays bounded: the ELF header, the section and program header tables, the section name
table and 64 KiB of data, never the whole binary.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hardening.inspect.tarfs import RandomReader

GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_ALIGN = 16
_DATA_WINDOW = 64 * 1024
_MAX_HEADERS = 4096
_MAX_STRING = 1024 * 1024
_PT_LOAD = 1
_PF_X = 1
_PF_W = 2


@dataclass(frozen=True)
class GoModule:
    path: str
    version: str
    checksum: str = ""
    replaced_by: GoModule | None = None


@dataclass(frozen=True)
class GoBuildInfo:
    """What ``go version -m`` would print for a binary."""

    go_version: str
    main_package: str
    main_module: GoModule | None
    dependencies: tuple[GoModule, ...]
    settings: tuple[tuple[str, str], ...]

    @property
    def program(self) -> str:
        """The last element of the main package path: ``gosu`` for github.com/tianon/gosu."""
        return self.main_package.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class _Segment:
    vaddr: int
    offset: int
    filesz: int
    flags: int


@dataclass(frozen=True)
class _Elf:
    endian: str
    is64: bool
    segments: tuple[_Segment, ...]
    buildinfo_offset: int | None
    buildinfo_size: int

    def file_offset(self, address: int) -> tuple[int, int] | None:
        """(file offset, bytes available) for a virtual address inside a loaded segment."""
        for seg in self.segments:
            if seg.vaddr <= address < seg.vaddr + seg.filesz:
                return seg.offset + (address - seg.vaddr), seg.vaddr + seg.filesz - address
        return None


def read_go_buildinfo(reader: RandomReader) -> GoBuildInfo | None:
    """The Go build information of an ELF file, or None when it is not a Go binary."""
    elf = _parse_elf(reader)
    if elf is None:
        return None
    start = _data_start(elf)
    if start is None:
        return None
    offset, available = start
    data = reader.read_at(offset, min(available, _DATA_WINDOW))
    blob = _find_header(data)
    if blob is None:
        return None
    if blob[15] & 2:
        version, rest = _uvarint_string(blob[_HEADER_SIZE:])
        modinfo, _ = _uvarint_string(rest)
    else:
        version, modinfo = _pointer_strings(reader, elf, blob)
    if not version:
        return None
    return parse_modinfo(version.decode("utf-8", "replace"), _unframe(modinfo))


def _parse_elf(reader: RandomReader) -> _Elf | None:
    ident = reader.read_at(0, 64)
    if len(ident) < 52 or not ident.startswith(b"\x7fELF") or ident[4] not in (1, 2):
        return None
    is64 = ident[4] == 2
    endian = ">" if ident[5] == 2 else "<"
    if is64:
        if len(ident) < 64:
            return None
        phoff, shoff = struct.unpack_from(endian + "QQ", ident, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(endian + "5H", ident, 54)
    else:
        phoff, shoff = struct.unpack_from(endian + "II", ident, 28)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(endian + "5H", ident, 42)
    segments = _segments(reader, endian, is64, phoff, phentsize, min(phnum, _MAX_HEADERS))
    section = _buildinfo_section(reader, endian, is64, shoff, shentsize, min(shnum, _MAX_HEADERS), shstrndx)
    offset, size = section if section else (None, 0)
    return _Elf(endian, is64, segments, offset, size)


def _segments(
    reader: RandomReader, endian: str, is64: bool, phoff: int, phentsize: int, phnum: int
) -> tuple[_Segment, ...]:
    need = 56 if is64 else 32
    if phoff == 0 or phnum == 0 or phentsize < need:
        return ()
    table = reader.read_at(phoff, phentsize * phnum)
    segments = []
    for i in range(len(table) // phentsize):
        base = i * phentsize
        if is64:
            ptype, flags, offset, vaddr, _paddr, filesz = struct.unpack_from(endian + "IIQQQQ", table, base)
        else:
            ptype, offset, vaddr, _paddr, filesz, _memsz, flags = struct.unpack_from(
                endian + "7I", table, base
            )
        if ptype == _PT_LOAD:
            segments.append(_Segment(vaddr, offset, filesz, flags))
    return tuple(segments)


def _buildinfo_section(
    reader: RandomReader,
    endian: str,
    is64: bool,
    shoff: int,
    shentsize: int,
    shnum: int,
    shstrndx: int,
) -> tuple[int, int] | None:
    need = 64 if is64 else 40
    if shoff == 0 or shnum == 0 or shentsize < need or shstrndx >= shnum:
        return None
    table = reader.read_at(shoff, shentsize * shnum)
    headers = []
    for i in range(len(table) // shentsize):
        base = i * shentsize
        if is64:
            name, _type, _flags, _addr, offset, size = struct.unpack_from(endian + "IIQQQQ", table, base)
        else:
            name, _type, _flags, _addr, offset, size = struct.unpack_from(endian + "6I", table, base)
        headers.append((name, offset, size))
    if shstrndx >= len(headers):
        return None
    _, strtab_offset, strtab_size = headers[shstrndx]
    strtab = reader.read_at(strtab_offset, min(strtab_size, _DATA_WINDOW))
    wanted = b".go.buildinfo\x00"
    for name, offset, size in headers:
        if strtab[name : name + len(wanted)] == wanted:
            return offset, size
    return None


def _data_start(elf: _Elf) -> tuple[int, int] | None:
    if elf.buildinfo_offset is not None:
        return elf.buildinfo_offset, elf.buildinfo_size
    for seg in elf.segments:
        if seg.flags & (_PF_X | _PF_W) == _PF_W and seg.filesz:
            return seg.offset, seg.filesz
    return None


def _find_header(data: bytes) -> bytes | None:
    position = 0
    while True:
        found = data.find(GO_BUILDINFO_MAGIC, position)
        if found < 0 or len(data) - found < _HEADER_SIZE:
            return None
        if found % _ALIGN == 0:
            return data[found:]
        position = found + 1


def _uvarint_string(data: bytes) -> tuple[bytes, bytes]:
    value = 0
    shift = 0
    for index, byte in enumerate(data[:10]):
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            start = index + 1
            if value > len(data) - start:
                return b"", b""
            return data[start : start + value], data[start + value :]
        shift += 7
    return b"", b""


def _pointer_strings(reader: RandomReader, elf: _Elf, blob: bytes) -> tuple[bytes, bytes]:
    pointer_size = blob[14]
    if pointer_size not in (4, 8):
        return b"", b""
    endian = ">" if blob[15] & 1 else "<"
    code = endian + ("Q" if pointer_size == 8 else "I")
    first, second = (
        struct.unpack_from(code, blob, 16)[0],
        struct.unpack_from(code, blob, 16 + pointer_size)[0],
    )
    return (
        _read_go_string(reader, elf, first, code, pointer_size),
        _read_go_string(reader, elf, second, code, pointer_size),
    )


def _read_go_string(reader: RandomReader, elf: _Elf, address: int, code: str, pointer_size: int) -> bytes:
    located = elf.file_offset(address)
    if located is None:
        return b""
    header = reader.read_at(located[0], 2 * pointer_size)
    if len(header) < 2 * pointer_size:
        return b""
    data_address = struct.unpack_from(code, header, 0)[0]
    length = struct.unpack_from(code, header, pointer_size)[0]
    target = elf.file_offset(data_address)
    if target is None or length > min(target[1], _MAX_STRING):
        return b""
    data = reader.read_at(target[0], length)
    return data if len(data) == length else b""


def _unframe(modinfo: bytes) -> str:
    # 16 sentinel bytes on each side; the newline before the trailing one is the format's tell.
    if len(modinfo) >= 33 and modinfo[-17:-16] == b"\n":
        return modinfo[16:-16].decode("utf-8", "replace")
    return ""


def parse_modinfo(go_version: str, modinfo: str) -> GoBuildInfo:
    """Parse the module information text (the lines ``go version -m`` prints)."""
    main_package = ""
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    last: str | None = None
    for line in modinfo.splitlines():
        fields = line.split("\t")
        key = fields[0]
        if key == "go" and len(fields) > 1 and not go_version:
            go_version = fields[1]
        elif key == "path" and len(fields) > 1:
            main_package = fields[1]
        elif key in ("mod", "dep") and len(fields) > 2:
            module = GoModule(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
            if key == "mod":
                main = module
            else:
                deps.append(module)
            last = key
        elif key == "=>" and len(fields) > 2 and last is not None:
            replacement = GoModule(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
            if last == "mod" and main is not None:
                main = GoModule(main.path, main.version, main.checksum, replacement)
            elif deps:
                old = deps[-1]
                deps[-1] = GoModule(old.path, old.version, old.checksum, replacement)
            last = None
        elif key == "build" and len(fields) > 1:
            name, _, value = "\t".join(fields[1:]).partition("=")
            settings.append((name, value.strip('"')))
    return GoBuildInfo(go_version, main_package, main, tuple(deps), tuple(settings))
