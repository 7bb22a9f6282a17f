"""A minimal streaming writer for bbolt database files (the reader is ``bboltread``).

Trivy keeps its vulnerability DB in a bbolt file and no maintained Python library writes that
format, so this module lays the pages out itself. It only ever writes a fresh, complete file in
one go: there are no transactions to replay, so both meta pages describe the same tree and the
freelist is empty. Pages are written as they fill, so a bucket may be a lazy, sorted stream of
items (a merge reading another DB) and memory stays bounded by the tree's depth, not its size.

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

import io
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

from hardening.atomic import open_atomic
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

PAGE_HEADER = struct.Struct("<QHHI")
LEAF_ELEMENT = struct.Struct("<IIII")
BRANCH_ELEMENT = struct.Struct("<IIQ")
BUCKET_HEADER = struct.Struct("<QQ")
META = struct.Struct("<IIIIQQQQQ")
CHECKSUM = struct.Struct("<Q")

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
# The first pages: meta 0, meta 1, the (empty) freelist.
_FIRST_DATA_PAGE = 3

Bucket: TypeAlias = "Mapping[bytes, Value] | Iterable[tuple[bytes, Value]]"
"""A bucket: a mapping, or an iterable of (key, value) pairs in strictly ascending key order."""
Value: TypeAlias = "bytes | Bucket"
"""A value (bytes) or a nested bucket."""
Tree: TypeAlias = "Mapping[bytes, Value]"


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
        return LEAF_ELEMENT.size + len(self.key) + len(self.value)


@dataclass(frozen=True)
class _BranchRef:
    key: bytes
    pgid: int

    @property
    def branch_size(self) -> int:
        return BRANCH_ELEMENT.size + len(self.key)


def _leaf_node(pgid: int, elements: list[_Element], page_size: int) -> bytes:
    header_end = PAGE_HEADER.size + LEAF_ELEMENT.size * len(elements)
    headers = bytearray()
    data = bytearray()
    for index, element in enumerate(elements):
        element_offset = PAGE_HEADER.size + LEAF_ELEMENT.size * index
        pos = header_end + len(data) - element_offset
        headers += LEAF_ELEMENT.pack(element.flags, pos, len(element.key), len(element.value))
        data += element.key + element.value
    return _finish_node(pgid, LEAF_PAGE, len(elements), bytes(headers + data), page_size)


def _branch_node(pgid: int, refs: list[_BranchRef], page_size: int) -> bytes:
    header_end = PAGE_HEADER.size + BRANCH_ELEMENT.size * len(refs)
    headers = bytearray()
    data = bytearray()
    for index, ref in enumerate(refs):
        element_offset = PAGE_HEADER.size + BRANCH_ELEMENT.size * index
        pos = header_end + len(data) - element_offset
        headers += BRANCH_ELEMENT.pack(pos, len(ref.key), ref.pgid)
        data += ref.key
    return _finish_node(pgid, BRANCH_PAGE, len(refs), bytes(headers + data), page_size)


def _finish_node(pgid: int, flags: int, count: int, body: bytes, page_size: int) -> bytes:
    size = PAGE_HEADER.size + len(body)
    pages = max(1, -(-size // page_size))
    header = PAGE_HEADER.pack(pgid, flags, count, pages - 1)
    return (header + body).ljust(pages * page_size, b"\0")


class _Writer:
    """Writes pages in allocation order, so page ``n`` lands at offset ``n * page_size``.

    bbolt fills pages only to 50% by default to leave room for later inserts; this file is
    written once and read many times, so pages are packed full.
    """

    def __init__(self, out: BinaryIO, page_size: int, inline: bool) -> None:
        self.out = out
        self.page_size = page_size
        self.inline = inline
        self.next_pgid = _FIRST_DATA_PAGE

    def _emit(self, node_for: Callable[[int], bytes]) -> int:
        pgid = self.next_pgid
        node = node_for(pgid)
        self.out.write(node)
        self.next_pgid += len(node) // self.page_size
        return pgid

    def _leaf(self, elements: list[_Element]) -> _BranchRef:
        pgid = self._emit(lambda pgid: _leaf_node(pgid, elements, self.page_size))
        return _BranchRef(elements[0].key if elements else b"", pgid)

    def _branch(self, refs: list[_BranchRef]) -> _BranchRef:
        return _BranchRef(refs[0].key, self._emit(lambda pgid: _branch_node(pgid, refs, self.page_size)))

    def bucket(self, bucket: Bucket, path: tuple[bytes, ...], *, may_inline: bool) -> bytes:
        """Write a bucket and return its bucket header value (root pgid, or the inline page)."""
        pending: list[_Element] = []
        pending_size = PAGE_HEADER.size
        leaves: list[_BranchRef] = []
        has_sub_buckets = False
        for key, value in _sorted_items(bucket, path):
            if isinstance(value, (bytes, bytearray)):
                if len(value) > MAX_VALUE_SIZE:
                    raise DatabaseError(
                        f"value of {len(value)} bytes exceeds bbolt's limit",
                        location=Location(_render_path((*path, key))),
                    )
                element = _Element(key, bytes(value), 0)
            else:
                has_sub_buckets = True
                element = _Element(
                    key, self.bucket(value, (*path, key), may_inline=self.inline), BUCKET_LEAF_FLAG
                )
            # A full page is written out; an element larger than a page gets a page of its own.
            if pending and pending_size + element.leaf_size > self.page_size:
                leaves.append(self._leaf(pending))
                pending, pending_size = [], PAGE_HEADER.size
            pending.append(element)
            pending_size += element.leaf_size
        if may_inline and not leaves and not has_sub_buckets and pending_size <= self.page_size // 4:
            # bbolt inlines a bucket without sub-buckets whose leaf fits in a quarter page; an
            # inline page is exactly as long as its content: no padding, page id 0.
            return BUCKET_HEADER.pack(0, 0) + _leaf_node(0, pending, self.page_size)[:pending_size]
        if pending or not leaves:
            leaves.append(self._leaf(pending))
        level = leaves
        while len(level) > 1:
            parents: list[_BranchRef] = []
            run: list[_BranchRef] = []
            used = PAGE_HEADER.size
            for ref in level:
                if run and used + ref.branch_size > self.page_size:
                    parents.append(self._branch(run))
                    run, used = [], PAGE_HEADER.size
                run.append(ref)
                used += ref.branch_size
            parents.append(self._branch(run))
            level = parents
        return BUCKET_HEADER.pack(level[0].pgid, 0)


def _sorted_items(bucket: Bucket, path: tuple[bytes, ...]) -> Iterator[tuple[bytes, Value]]:
    if isinstance(bucket, Mapping):
        for key in bucket:
            _check_key(key, path)
        for key in sorted(bucket):
            yield bytes(key), bucket[key]
        return
    previous: bytes | None = None
    for key, value in bucket:
        _check_key(key, path)
        if previous is not None and key <= previous:
            raise DatabaseError(
                f"key {key!r} comes after {previous!r}: a streamed bucket must be in ascending key order",
                location=Location(_render_path(path)),
            )
        previous = bytes(key)
        yield previous, value


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
    meta = META.pack(MAGIC, VERSION, page_size, 0, root, 0, freelist, high_water, txid)
    body = meta + CHECKSUM.pack(fnv1a64(meta))
    header = PAGE_HEADER.pack(pgid, META_PAGE, 0, 0)
    return (header + body).ljust(page_size, b"\0")


def _top_level(tree: Bucket) -> Iterator[tuple[bytes, Value]]:
    items = tree.items() if isinstance(tree, Mapping) else tree
    for key, value in items:
        if isinstance(value, (bytes, bytearray)):
            raise DatabaseError(
                "bbolt allows only buckets at the top level",
                location=Location(_render_path((bytes(key),))),
            )
        yield key, value


def dump(out: BinaryIO, tree: Bucket, *, page_size: int = PAGE_SIZE, inline: bool = True) -> int:
    """Write a bbolt file whose root bucket holds ``tree`` to the seekable ``out``; its size.

    Top-level values must be buckets: bbolt's root bucket holds only buckets.
    """
    start = out.tell()
    out.write(b"\0" * (_FIRST_DATA_PAGE * page_size))
    writer = _Writer(out, page_size, inline)
    items = {bytes(k): v for k, v in _top_level(tree)} if isinstance(tree, Mapping) else _top_level(tree)
    # The root bucket never goes inline: the meta page must point at a page id.
    header = writer.bucket(items, (), may_inline=False)
    root = BUCKET_HEADER.unpack_from(header, 0)[0]
    high_water = writer.next_pgid
    freelist = PAGE_HEADER.pack(2, FREELIST_PAGE, 0, 0).ljust(page_size, b"\0")
    out.seek(start)
    out.write(
        _meta_page(0, 0, root, 2, high_water, page_size)
        + _meta_page(1, 1, root, 2, high_water, page_size)
        + freelist
    )
    out.seek(start + high_water * page_size)
    return high_water * page_size


def encode(tree: Bucket, *, page_size: int = PAGE_SIZE, inline: bool = True) -> bytes:
    """The bytes of a bbolt file whose root bucket holds ``tree``."""
    buffer = io.BytesIO()
    dump(buffer, tree, page_size=page_size, inline=inline)
    return buffer.getvalue()


def write(path: Path, tree: Bucket, *, page_size: int = PAGE_SIZE, inline: bool = True) -> int:
    """Write ``tree`` as a bbolt file at ``path``, atomically (temp file, fsync, rename); its size.

    A reader (Trivy) never sees a half-written file: it sees the old file or the new one.
    """
    with open_atomic(
        path, error=DatabaseError, hint="check free space and permissions of the cache directory"
    ) as handle:
        return dump(handle, tree, page_size=page_size, inline=inline)
