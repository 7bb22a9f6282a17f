"""One layer tar rewritten in canonical form.

Read with the project's tar reader (``hardening.inspect.tarstream``) from the saved image in
place; written with ``tarwrite``: entries sorted by path (component by component, as the engine
walks a directory), every mtime set to the epoch (bytecode made to agree), numeric owners only,
no access or change times; files that only record the build removed (``rules``). The output
depends on the files alone, so the same files give the same diff id whenever and wherever they
were built, and whether the engine built the layer now or took it from its cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass, field
from typing import IO

from hardening.errors import BuildError
from hardening.inspect.tarstream import Member, Source, TarEnd, TarFormatError, members
from hardening.repro import rules
from hardening.repro.tarwrite import END_OF_ARCHIVE, Header, encode, padding

_COPY_CHUNK = 1024 * 1024
# Entries whose data lies in the layer: regular files (and the old-style "0"-less type).
_DATA_KINDS = (b"0", b"\x00", b"7")
_KINDS = {
    b"0": rules.Kind.FILE,
    b"\x00": rules.Kind.FILE,
    b"7": rules.Kind.FILE,
    b"5": rules.Kind.DIRECTORY,
    b"2": rules.Kind.SYMLINK,
}
_HARDLINK = b"1"
# Shadow files are a few kilobytes; anything larger is not rewritten in memory.
_SHADOW_LIMIT = 16 * 1024 * 1024


@dataclass
class LayerStats:
    entries: int = 0
    removed: dict[str, int] = field(default_factory=dict)  # rule name → entries removed
    removed_paths: list[str] = field(default_factory=list)
    kept_owned: int = 0  # rule matched, but a package lists the path
    clamped: int = 0  # entries whose mtime was not the epoch


@dataclass(frozen=True)
class LayerOutput:
    diff_id: str
    size: int
    stats: LayerStats


@dataclass(frozen=True)
class _Entry:
    parts: tuple[str, ...]
    member: Member


def _parts(name: str, where: str) -> tuple[str, ...]:
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise BuildError(f"{where}: entry {name!r} leaves the layer; refusing to rewrite it")
    return parts


def _kind(member: Member) -> rules.Kind:
    return _KINDS.get(member.type, rules.Kind.OTHER)


class _Writer:
    """Writes entries to ``out`` while hashing them: the diff id is the sha256 of the tar."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self._hash.update(data)
            self.size += len(data)

    @property
    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def normalise_layer(
    source: Source,
    out: IO[bytes],
    *,
    epoch: int,
    owned: Container[str] = frozenset(),
    dangling: Container[str] = frozenset(),
    where: str = "layer",
) -> LayerOutput:
    """Rewrite the layer tar at ``source`` into ``out``; returns its diff id, size and what changed."""
    stats = LayerStats()
    latest: dict[tuple[str, ...], Member] = {}
    try:
        end = TarEnd()
        for member in members(source, end):
            parts = _parts(member.name, where)
            if parts:  # the layer's own root ("./") is no entry of the image
                latest[parts] = member  # a later entry for the same path replaces the earlier
    except TarFormatError as exc:
        raise BuildError(f"{where} is not a readable tar: {exc}") from exc
    stats.entries = len(latest)
    removed: dict[tuple[str, ...], str] = {}
    for parts, member in latest.items():
        decision = rules.decide("/".join(parts), _kind(member), owned=owned, dangling=dangling)
        stats.kept_owned += decision.kept_owned
        if decision.rule is not None:
            removed[parts] = decision.rule.name
    # A removed directory with kept entries below it stays (its mode and owner matter).
    for parts in [p for p in latest if p not in removed]:
        for depth in range(1, len(parts)):
            removed.pop(parts[:depth], None)
    for parts in sorted(removed):
        stats.removed[removed[parts]] = stats.removed.get(removed[parts], 0) + 1
        stats.removed_paths.append("/" + "/".join(parts))
    kept = {parts: member for parts, member in latest.items() if parts not in removed}
    writer = _Writer(out)
    groups = _hardlink_groups(latest, kept, where)
    written_as: dict[tuple[str, ...], tuple[str, ...]] = {}  # hard link group → first path written
    for parts in sorted(kept):
        member = kept[parts]
        if member.type == _HARDLINK or parts in groups:
            origin = groups[parts]
            first = written_as.get(origin)
            if first is None:
                written_as[origin] = parts
                _write_file(writer, source, parts, latest[origin], epoch, stats)
            else:
                _write_header(writer, parts, latest[origin], epoch, stats, kind=_HARDLINK, link=first)
            continue
        if member.type in _DATA_KINDS:
            compiled_from = rules.pyc_source("/".join(parts))
            pyc = compiled_from is not None and tuple(compiled_from.split("/")) in kept
            _write_file(writer, source, parts, member, epoch, stats, pyc=pyc)
        else:
            _write_header(writer, parts, member, epoch, stats)
    writer.write(END_OF_ARCHIVE)
    return LayerOutput(writer.diff_id, writer.size, stats)


def _hardlink_groups(
    latest: dict[tuple[str, ...], Member], kept: dict[tuple[str, ...], Member], where: str
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Kept path → the regular file of its hard link group (the group's original entry).

    Only paths of a group with at least one kept link appear. After sorting, the first kept path
    of a group carries the data and the others link to it, whichever the engine wrote first; a
    link whose original was removed by a rule becomes the file.
    """
    groups: dict[tuple[str, ...], tuple[str, ...]] = {}
    for parts, member in kept.items():
        if member.type != _HARDLINK:
            continue
        origin = _parts(member.linkname, where)
        for _ in range(64):
            found = latest.get(origin)
            if found is None or found.type != _HARDLINK:
                break
            origin = _parts(found.linkname, where)
        found = latest.get(origin)
        if found is None or found.type not in _DATA_KINDS:
            raise BuildError(f"{where}: hard link /{'/'.join(parts)} has no regular file in its layer")
        groups[parts] = origin
        if origin in kept:
            groups[origin] = origin
    return groups


def _header(
    parts: tuple[str, ...],
    member: Member,
    epoch: int,
    stats: LayerStats,
    *,
    kind: bytes,
    size: int,
    link: str,
) -> Header:
    # Every time is the epoch, not just clamped to it: a layer the engine took from its cache
    # was built before the commit, and its times would otherwise differ from a fresh build's.
    if member.mtime != epoch:
        stats.clamped += 1
    name = "/".join(parts) + ("/" if kind == b"5" else "")
    return Header(
        name=name,
        kind=kind,
        mode=member.mode & 0o7777,
        uid=member.uid,
        gid=member.gid,
        size=size,
        mtime=epoch,
        linkname=link,
        devmajor=member.devmajor,
        devminor=member.devminor,
        xattrs=member.xattrs,
    )


def _write_header(
    writer: _Writer,
    parts: tuple[str, ...],
    member: Member,
    epoch: int,
    stats: LayerStats,
    *,
    kind: bytes | None = None,
    link: tuple[str, ...] | None = None,
) -> None:
    linkname = "/".join(link) if link is not None else member.linkname
    header = _header(parts, member, epoch, stats, kind=kind or member.type, size=0, link=linkname)
    writer.write(encode(header))


def _write_file(
    writer: _Writer,
    source: Source,
    parts: tuple[str, ...],
    member: Member,
    epoch: int,
    stats: LayerStats,
    *,
    pyc: bool = False,
) -> None:
    """``pyc``: bytecode whose source file is in this layer (so its mtime becomes the epoch too)."""
    if member.type == _HARDLINK:
        # A link whose original is not in this layer: the engine never writes one.
        raise BuildError(f"hard link /{'/'.join(parts)} points outside its layer ({member.linkname})")
    path = "/".join(parts)
    if path in rules.SHADOW_FILES and member.size <= _SHADOW_LIMIT:
        data = rules.shadow_at_epoch(source.read_at(member.offset_data, member.size), epoch)
        writer.write(encode(_header(parts, member, epoch, stats, kind=b"0", size=len(data), link="")))
        writer.write(data)
        writer.write(padding(len(data)))
        return
    writer.write(encode(_header(parts, member, epoch, stats, kind=b"0", size=member.size, link="")))
    offset, remaining = member.offset_data, member.size
    if pyc and member.size >= rules.PYC_HEADER:
        header = rules.pyc_at_epoch(source.read_at(offset, rules.PYC_HEADER), epoch)
        writer.write(header)
        offset += len(header)
        remaining -= len(header)
    while remaining:
        chunk = source.read_at(offset, min(_COPY_CHUNK, remaining))
        if not chunk:
            raise BuildError(f"layer ends inside /{path}")
        writer.write(chunk)
        offset += len(chunk)
        remaining -= len(chunk)
    writer.write(padding(member.size))
