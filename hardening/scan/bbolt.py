"""A minimal writer (and checking reader) for bbolt database files.

Trivy keeps its vulnerability DB in a bbolt file and no maintained Python library writes that
format, so this module lays the pages out itself. It only ever writes a fresh, complete file in
one go: there are no transactions to replay, so both meta pages describe the same tree and the
freelist is empty.

On-disk facts this relies on (bbolt ``internal/common``), all little-endian as on amd64/arm64:

* every page starts with a 16-byte header: page id u64, flags u16, count u16, overflow u32;
  a node larger than one page continues over ``overflow`` further pages;
* page flags: branch 0x01, leaf 0x02, meta 0x04, freelist 0x10;
* leaf element (16 bytes): flags u32, pos u32, ksize u32, vsize u32; branch element (16 bytes):
  pos u32, ksize u32, child pgid u64; ``pos`` counts from the element itself to its key;
* a nested bucket is a leaf value with flag 0x01 holding (root pgid u64, sequence u64); root 0
  means the bucket's leaf page follows inline in the same value;
* the meta (after the page header) is magic, version, page size, flags (u32 each), the root
  bucket (root pgid, sequence), freelist pgid, high-water pgid, txid (u64 each) and an FNV-1a 64
  checksum over those first 56 bytes; meta page ``n`` holds the meta whose txid is ``n`` mod 2
  and readers take the valid one with the highest txid.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from hardening.atomic import write_bytes_atomic
from hardening.errors import DatabaseError, Location

PAGE_SIZE = 4096
MAGIC = 0xED0CDAED
VERSION = 2

BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
FREELIST_PAGE = 0x10
BUCKET_LEAF_FLAG = 0x01

# bbolt's own limits; values beyond them are rejected by bbolt on write.
MAX_KEY_SIZE = 32768
MAX_VALUE_SIZE = (1 << 31) - 2

_PAGE_HEADER = struct.Struct("<QHHI")
_LEAF_ELEMENT = struct.Struct("<IIII")
_BRANCH_ELEMENT = struct.Struct("<IIQ")
_BUCKET_HEADER = struct.Struct("<QQ")
_META = struct.Struct("<IIIIQQQQQ")
_CHECKSUM = struct.Struct("<Q")
_PGID = struct.Struct("<Q")

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3

Tree = Mapping[bytes, Union[bytes, "Tree"]]
"""A bucket: keys map to values (bytes) or to nested buckets (mappings)."""


def fnv1a64(data: bytes) -> int:
    """FNV-1a 64, the hash bbolt uses for meta page checksums."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value


@dataclass(frozen=True)
class _Element:
    key: bytes
    value: bytes
    flags: int

    @property
    def leaf_size(self) -> int:
        return _LEAF_ELEMENT.size + len(self.key) + len(self.value)


@dataclass(frozen=True)
class _BranchRef:
    key: bytes
    pgid: int

    @property
    def branch_size(self) -> int:
        return _BRANCH_ELEMENT.size + len(self.key)


def _leaf_node(pgid: int, elements: list[_Element], page_size: int) -> bytes:
    header_end = _PAGE_HEADER.size + _LEAF_ELEMENT.size * len(elements)
    headers = bytearray()
    data = bytearray()
    for index, element in enumerate(elements):
        element_offset = _PAGE_HEADER.size + _LEAF_ELEMENT.size * index
        pos = header_end + len(data) - element_offset
        headers += _LEAF_ELEMENT.pack(element.flags, pos, len(element.key), len(element.value))
        data += element.key + element.value
    return _finish_node(pgid, LEAF_PAGE, len(elements), bytes(headers + data), page_size)


def _branch_node(pgid: int, refs: list[_BranchRef], page_size: int) -> bytes:
    header_end = _PAGE_HEADER.size + _BRANCH_ELEMENT.size * len(refs)
    headers = bytearray()
    data = bytearray()
    for index, ref in enumerate(refs):
        element_offset = _PAGE_HEADER.size + _BRANCH_ELEMENT.size * index
        pos = header_end + len(data) - element_offset
        headers += _BRANCH_ELEMENT.pack(pos, len(ref.key), ref.pgid)
        data += ref.key
    return _finish_node(pgid, BRANCH_PAGE, len(refs), bytes(headers + data), page_size)


def _finish_node(pgid: int, flags: int, count: int, body: bytes, page_size: int) -> bytes:
    size = _PAGE_HEADER.size + len(body)
    pages = _pages_for(size, page_size)
    header = _PAGE_HEADER.pack(pgid, flags, count, pages - 1)
    return (header + body).ljust(pages * page_size, b"\0")


def _pages_for(size: int, page_size: int) -> int:
    return max(1, -(-size // page_size))


def _chunk(sizes: list[int], page_size: int) -> list[tuple[int, int]]:
    """Split items into runs that fill a page; an item larger than a page gets its own run.

    bbolt fills pages only to 50% by default to leave room for later inserts; this file is
    written once and read many times, so pages are packed full.
    """
    runs: list[tuple[int, int]] = []
    start = 0
    used = _PAGE_HEADER.size
    for index, size in enumerate(sizes):
        if index > start and used + size > page_size:
            runs.append((start, index))
            start = index
            used = _PAGE_HEADER.size
        used += size
    runs.append((start, len(sizes)))
    return runs


class _Writer:
    def __init__(self, page_size: int, inline: bool) -> None:
        self.page_size = page_size
        self.inline = inline
        # Pages 0 and 1 are the meta pages, page 2 the (empty) freelist.
        self.next_pgid = 3
        self.chunks: list[bytes] = []

    def _allocate(self, size: int) -> int:
        pgid = self.next_pgid
        self.next_pgid += _pages_for(size, self.page_size)
        return pgid

    def _store(self, node: bytes) -> None:
        self.chunks.append(node)

    def bucket(self, tree: Tree, path: tuple[bytes, ...]) -> int:
        """Write a bucket's pages bottom-up and return its root pgid."""
        elements = self._elements(tree, path)
        level: list[_BranchRef] = []
        for start, end in _chunk([e.leaf_size for e in elements], self.page_size):
            run = elements[start:end]
            size = _PAGE_HEADER.size + sum(e.leaf_size for e in run)
            pgid = self._allocate(size)
            self._store(_leaf_node(pgid, run, self.page_size))
            level.append(_BranchRef(run[0].key if run else b"", pgid))
        while len(level) > 1:
            parents: list[_BranchRef] = []
            for start, end in _chunk([r.branch_size for r in level], self.page_size):
                refs = level[start:end]
                size = _PAGE_HEADER.size + sum(r.branch_size for r in refs)
                pgid = self._allocate(size)
                self._store(_branch_node(pgid, refs, self.page_size))
                parents.append(_BranchRef(refs[0].key, pgid))
            level = parents
        return level[0].pgid

    def _elements(self, tree: Tree, path: tuple[bytes, ...]) -> list[_Element]:
        elements: list[_Element] = []
        for key in sorted(tree):
            _check_key(key, path)
            value = tree[key]
            if isinstance(value, (bytes, bytearray)):
                if len(value) > MAX_VALUE_SIZE:
                    raise DatabaseError(
                        f"value of {len(value)} bytes exceeds bbolt's limit",
                        location=Location(_render_path((*path, key))),
                    )
                elements.append(_Element(bytes(key), bytes(value), 0))
                continue
            inline_page = self._inline_page(value, (*path, key)) if self.inline else None
            if inline_page is not None:
                payload = _BUCKET_HEADER.pack(0, 0) + inline_page
            else:
                payload = _BUCKET_HEADER.pack(self.bucket(value, (*path, key)), 0)
            elements.append(_Element(bytes(key), payload, BUCKET_LEAF_FLAG))
        return elements

    def _inline_page(self, tree: Tree, path: tuple[bytes, ...]) -> bytes | None:
        """The inline leaf page for a small bucket without sub-buckets, else None.

        bbolt inlines a bucket when it has no sub-buckets and its leaf fits in a quarter page;
        doing the same keeps the file as compact as one bbolt itself would write.
        """
        if any(not isinstance(v, (bytes, bytearray)) for v in tree.values()):
            return None
        elements = self._elements(tree, path)
        size = _PAGE_HEADER.size + sum(e.leaf_size for e in elements)
        if size > self.page_size // 4:
            return None
        # An inline page is exactly as long as its content: no padding, page id 0.
        return _leaf_node(0, elements, self.page_size)[:size]


def _check_key(key: object, path: tuple[bytes, ...]) -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise DatabaseError(f"bucket key {key!r} is not bytes", location=Location(_render_path(path)))
    if not key:
        raise DatabaseError("empty bucket key", location=Location(_render_path(path)))
    if len(key) > MAX_KEY_SIZE:
        raise DatabaseError(
            f"key of {len(key)} bytes exceeds bbolt's limit of {MAX_KEY_SIZE}",
            location=Location(_render_path((*path, bytes(key)))),
        )


def _render_path(path: tuple[bytes, ...]) -> str:
    return "/".join(p.decode("utf-8", "backslashreplace") for p in path) or "<root>"


def _meta_page(pgid: int, txid: int, root: int, freelist: int, high_water: int, page_size: int) -> bytes:
    meta = _META.pack(MAGIC, VERSION, page_size, 0, root, 0, freelist, high_water, txid)
    body = meta + _CHECKSUM.pack(fnv1a64(meta))
    header = _PAGE_HEADER.pack(pgid, META_PAGE, 0, 0)
    return (header + body).ljust(page_size, b"\0")


def encode(tree: Tree, *, page_size: int = PAGE_SIZE, inline: bool = True) -> bytes:
    """The bytes of a bbolt file whose root bucket holds ``tree``.

    Top-level values must be buckets: bbolt's root bucket holds only buckets.
    """
    for key, value in tree.items():
        if isinstance(value, (bytes, bytearray)):
            raise DatabaseError(
                "bbolt allows only buckets at the top level",
                location=Location(_render_path((bytes(key),))),
            )
    writer = _Writer(page_size, inline)
    # The root bucket never goes inline: the meta page must point at a page id.
    root = writer.bucket(tree, ())
    high_water = writer.next_pgid
    freelist = _PAGE_HEADER.pack(2, FREELIST_PAGE, 0, 0).ljust(page_size, b"\0")
    head = (
        _meta_page(0, 0, root, 2, high_water, page_size)
        + _meta_page(1, 1, root, 2, high_water, page_size)
        + freelist
    )
    return head + b"".join(writer.chunks)


def write(path: Path, tree: Tree, *, page_size: int = PAGE_SIZE, inline: bool = True) -> None:
    """Write ``tree`` as a bbolt file at ``path``, atomically (temp file, fsync, rename).

    A reader (Trivy) never sees a half-written file: it sees the old file or the new one.
    """
    data = encode(tree, page_size=page_size, inline=inline)
    write_bytes_atomic(
        path, data, error=DatabaseError, hint="check free space and permissions of the cache directory"
    )


# --- reading and checking -------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """A decoded meta page."""

    magic: int
    version: int
    page_size: int
    flags: int
    root: int
    sequence: int
    freelist: int
    high_water: int
    txid: int
    checksum: int

    @property
    def valid(self) -> bool:
        return self.magic == MAGIC and self.version == VERSION and self.checksum == fnv1a64(self._fields())

    def _fields(self) -> bytes:
        return _META.pack(
            self.magic,
            self.version,
            self.page_size,
            self.flags,
            self.root,
            self.sequence,
            self.freelist,
            self.high_water,
            self.txid,
        )


@dataclass(frozen=True)
class PageHeader:
    pgid: int
    flags: int
    count: int
    overflow: int


class Reader:
    """Reads a bbolt file fully into memory and checks bbolt's consistency rules.

    Meant for tests and diagnostics; Trivy is the real consumer of what ``write`` produces.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        metas = [self._meta(0, PAGE_SIZE)]
        self.page_size = metas[0].page_size if metas[0].valid else PAGE_SIZE
        metas.append(self._meta(1, self.page_size))
        valid = [m for m in metas if m.valid]
        if not valid:
            raise DatabaseError("no valid meta page")
        self.meta = max(valid, key=lambda m: m.txid)
        self.metas = tuple(metas)

    @classmethod
    def open(cls, path: Path) -> Reader:
        return cls(path.read_bytes())

    def _meta(self, pgid: int, page_size: int) -> Meta:
        offset = pgid * page_size + _PAGE_HEADER.size
        return Meta(
            *_META.unpack_from(self.data, offset),
            *_CHECKSUM.unpack_from(self.data, offset + _META.size),
        )

    def header(self, pgid: int) -> PageHeader:
        return PageHeader(*_PAGE_HEADER.unpack_from(self.data, pgid * self.page_size))

    def _node(self, pgid: int) -> bytes:
        header = self.header(pgid)
        if header.pgid != pgid:
            raise DatabaseError(f"page {pgid} identifies itself as {header.pgid}")
        start = pgid * self.page_size
        return self.data[start : start + (header.overflow + 1) * self.page_size]

    def tree(self) -> dict[bytes, object]:
        """The whole database as nested dicts of bytes."""
        return self._bucket_items(self._node(self.meta.root))

    def _bucket_items(self, node: bytes) -> dict[bytes, object]:
        result: dict[bytes, object] = {}
        for flags, key, value in self._walk(node):
            if flags & BUCKET_LEAF_FLAG:
                result[key] = self._child(value)
            else:
                result[key] = value
        return result

    def _child(self, value: bytes) -> dict[bytes, object]:
        root, _sequence = _BUCKET_HEADER.unpack_from(value, 0)
        if root == 0:
            return self._bucket_items(value[_BUCKET_HEADER.size :])
        return self._bucket_items(self._node(root))

    def _walk(self, node: bytes) -> Iterator[tuple[int, bytes, bytes]]:
        pgid, flags, count, _overflow = _PAGE_HEADER.unpack_from(node, 0)
        if flags == LEAF_PAGE:
            for index in range(count):
                offset = _PAGE_HEADER.size + _LEAF_ELEMENT.size * index
                eflags, pos, ksize, vsize = _LEAF_ELEMENT.unpack_from(node, offset)
                start = offset + pos
                yield (
                    eflags,
                    node[start : start + ksize],
                    node[start + ksize : start + ksize + vsize],
                )
        elif flags == BRANCH_PAGE:
            for _key, child in self.branch_refs(node):
                yield from self._walk(self._node(child))
        else:
            raise DatabaseError(f"page {pgid} has unexpected flags {flags:#x}")

    @staticmethod
    def branch_refs(node: bytes) -> list[tuple[bytes, int]]:
        _pgid, _flags, count, _overflow = _PAGE_HEADER.unpack_from(node, 0)
        refs = []
        for index in range(count):
            offset = _PAGE_HEADER.size + _BRANCH_ELEMENT.size * index
            pos, ksize, child = _BRANCH_ELEMENT.unpack_from(node, offset)
            refs.append((node[offset + pos : offset + pos + ksize], child))
        return refs

    def freelist(self) -> list[int]:
        node = self._node(self.meta.freelist)
        _pgid, flags, count, _overflow = _PAGE_HEADER.unpack_from(node, 0)
        if flags != FREELIST_PAGE:
            raise DatabaseError(f"page {self.meta.freelist} is not a freelist page")
        first = 0
        if count == 0xFFFF:
            (count,) = _PGID.unpack_from(node, _PAGE_HEADER.size)
            first = 1
        return [
            _PGID.unpack_from(node, _PAGE_HEADER.size + _PGID.size * (first + i))[0] for i in range(count)
        ]

    def check(self) -> list[str]:
        """Problems bbolt's own ``Tx.Check`` would report (empty when the file is sound)."""
        problems: list[str] = []
        if len(self.data) % self.page_size:
            problems.append(f"file size {len(self.data)} is not a multiple of the page size")
        if self.meta.high_water * self.page_size > len(self.data):
            problems.append("high-water mark lies beyond the end of the file")
        free = self.freelist()
        if len(set(free)) != len(free):
            problems.append("a page is freed twice")
        reachable: dict[int, str] = {0: "meta", 1: "meta"}
        for offset in range(self.header(self.meta.freelist).overflow + 1):
            reachable[self.meta.freelist + offset] = "freelist"
        self._check_bucket(self.meta.root, reachable, set(free), problems, "<root>")
        for pgid in range(self.meta.high_water):
            if pgid not in reachable and pgid not in free:
                problems.append(f"page {pgid}: unreachable unfreed")
        return problems

    def _check_bucket(
        self, root: int, reachable: dict[int, str], free: set[int], problems: list[str], name: str
    ) -> None:
        self._check_page(root, reachable, free, problems, name, None, None)

    def _check_page(
        self,
        pgid: int,
        reachable: dict[int, str],
        free: set[int],
        problems: list[str],
        name: str,
        low: bytes | None,
        high: bytes | None,
    ) -> None:
        header = self.header(pgid)
        if header.pgid != pgid:
            problems.append(f"page {pgid}: identifies itself as {header.pgid}")
            return
        if pgid >= self.meta.high_water:
            problems.append(f"page {pgid}: above the high-water mark")
        for offset in range(header.overflow + 1):
            if pgid + offset in reachable:
                problems.append(f"page {pgid + offset}: multiple references ({name})")
            reachable[pgid + offset] = name
        if pgid in free:
            problems.append(f"page {pgid}: reachable freed")
        node = self._node(pgid)
        if header.flags == BRANCH_PAGE:
            refs = self.branch_refs(node)
            keys = [key for key, _ in refs]
            self._check_order(keys, low, high, problems, pgid)
            for index, (key, child) in enumerate(refs):
                upper = keys[index + 1] if index + 1 < len(keys) else high
                self._check_page(child, reachable, free, problems, name, key, upper)
        elif header.flags == LEAF_PAGE:
            entries = list(self._walk(node))
            self._check_order([key for _, key, _ in entries], low, high, problems, pgid)
            for flags, key, value in entries:
                if not flags & BUCKET_LEAF_FLAG:
                    continue
                child_root, _sequence = _BUCKET_HEADER.unpack_from(value, 0)
                child_name = f"{name}/{key.decode('utf-8', 'backslashreplace')}"
                if child_root != 0:
                    self._check_page(child_root, reachable, free, problems, child_name, None, None)
                else:
                    self._check_inline(value[_BUCKET_HEADER.size :], reachable, free, problems, child_name)
        else:
            problems.append(f"page {pgid}: invalid type {header.flags:#x} ({name})")

    def _check_inline(
        self,
        page: bytes,
        reachable: dict[int, str],
        free: set[int],
        problems: list[str],
        name: str,
    ) -> None:
        _pgid, flags, _count, _overflow = _PAGE_HEADER.unpack_from(page, 0)
        if flags != LEAF_PAGE:
            problems.append(f"inline bucket {name}: not a leaf page")
            return
        entries = list(self._walk(page))
        self._check_order([key for _, key, _ in entries], None, None, problems, 0)
        for eflags, key, _value in entries:
            if eflags & BUCKET_LEAF_FLAG:
                problems.append(f"inline bucket {name}: holds sub-bucket {key!r}")

    @staticmethod
    def _check_order(
        keys: list[bytes], low: bytes | None, high: bytes | None, problems: list[str], pgid: int
    ) -> None:
        previous = low
        for key in keys:
            if not key:
                problems.append(f"page {pgid}: zero-length key")
            if previous is not None and key < previous:
                problems.append(f"page {pgid}: key {key!r} out of order")
            if high is not None and key >= high:
                problems.append(f"page {pgid}: key {key!r} not below the parent's next key")
            previous = key
