"""Reading bbolt files: a lazy reader for large DBs, and a checking reader for tests.

``BoltFile`` reads pages on demand with ``pread`` and walks buckets in key order, so merging
private advisories into an upstream DB of hundreds of MB keeps only a path of pages in memory.
``Reader`` loads a whole (small) file and checks bbolt's consistency rules the way bbolt's own
``Tx.Check`` does; tests use it on everything the writer produces.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hardening.db.bbolt import (
    BRANCH_ELEMENT,
    BRANCH_PAGE,
    BUCKET_HEADER,
    BUCKET_LEAF_FLAG,
    CHECKSUM,
    FREELIST_PAGE,
    LEAF_ELEMENT,
    LEAF_PAGE,
    MAGIC,
    META,
    PAGE_HEADER,
    PAGE_SIZE,
    VERSION,
    fnv1a64,
)
from hardening.errors import DatabaseInvalid, Location

_PGID = struct.Struct("<Q")
# Deeper than any B+tree of a real file; a loop in a damaged file stops here.
_MAX_DEPTH = 64


class BoltFile:
    """A bbolt file opened for lazy, read-only access; ``root`` is its root bucket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_RDONLY)
            self.size = os.fstat(self._fd).st_size
        except OSError as error:
            raise DatabaseInvalid(
                f"cannot open: {error.strerror or error}", location=Location(path)
            ) from error
        try:
            self.meta = self._read_meta()
        except BaseException:
            os.close(self._fd)
            raise
        self.page_size = self.meta.page_size

    def __enter__(self) -> BoltFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _pread(self, size: int, offset: int) -> bytes:
        try:
            data = os.pread(self._fd, size, offset)
        except OSError as error:
            raise DatabaseInvalid(
                f"cannot read: {error.strerror or error}", location=Location(self.path)
            ) from error
        if len(data) != size:
            raise self._damaged(f"ends at byte {self.size}, inside the page at {offset}")
        return data

    def _damaged(self, message: str) -> DatabaseInvalid:
        return DatabaseInvalid(
            f"not a sound bbolt file: {message}",
            location=Location(self.path),
            hint="the DB is damaged; pull or build it again",
        )

    def _read_meta(self) -> Meta:
        metas: list[Meta] = []
        page_size = PAGE_SIZE
        for pgid in (0, 1):
            offset = pgid * page_size + PAGE_HEADER.size
            if offset + META.size + CHECKSUM.size > self.size:
                break
            raw = self._pread(META.size + CHECKSUM.size, offset)
            meta = Meta(*META.unpack_from(raw, 0), *CHECKSUM.unpack_from(raw, META.size))
            metas.append(meta)
            if pgid == 0 and meta.valid:
                page_size = meta.page_size
        valid = [m for m in metas if m.valid]
        if not valid:
            raise self._damaged("no valid meta page")
        return max(valid, key=lambda m: m.txid)

    def page(self, pgid: int) -> bytes:
        """The node at ``pgid`` with its overflow pages."""
        if pgid < 2 or (pgid + 1) * self.page_size > self.size:
            raise self._damaged(f"page {pgid} lies outside the file")
        first = self._pread(self.page_size, pgid * self.page_size)
        own, _flags, _count, overflow = PAGE_HEADER.unpack_from(first, 0)
        if own != pgid:
            raise self._damaged(f"page {pgid} identifies itself as {own}")
        if not overflow:
            return first
        return first + self._pread(overflow * self.page_size, (pgid + 1) * self.page_size)

    @property
    def root(self) -> BucketView:
        return BucketView(self, self.meta.root, None)


class BucketView:
    """One bucket of a ``BoltFile``: its items in key order, and lookups by key.

    Iterating yields ``(key, value)`` where a value is ``bytes`` or a nested ``BucketView``, so a
    view is itself a sorted stream of items the writer can copy.
    """

    def __init__(self, file: BoltFile, root: int, inline: bytes | None) -> None:
        self.file = file
        self.root = root
        self.inline = inline

    def __iter__(self) -> Iterator[tuple[bytes, bytes | BucketView]]:
        if self.inline is not None:
            yield from self._leaf_items(self.inline)
        else:
            yield from self._items(self.root, 0)

    def _items(self, pgid: int, depth: int) -> Iterator[tuple[bytes, bytes | BucketView]]:
        if depth > _MAX_DEPTH:
            raise self.file._damaged(f"page {pgid} is deeper than {_MAX_DEPTH} levels")
        node = self.file.page(pgid)
        flags = PAGE_HEADER.unpack_from(node, 0)[1]
        if flags == LEAF_PAGE:
            yield from self._leaf_items(node)
        elif flags == BRANCH_PAGE:
            for _key, child in branch_refs(node):
                yield from self._items(child, depth + 1)
        else:
            raise self.file._damaged(f"page {pgid} has unexpected flags {flags:#x}")

    def _leaf_items(self, node: bytes) -> Iterator[tuple[bytes, bytes | BucketView]]:
        for flags, key, value in leaf_elements(node):
            yield key, (self._child(value) if flags & BUCKET_LEAF_FLAG else value)

    def _child(self, value: bytes) -> BucketView:
        if len(value) < BUCKET_HEADER.size:
            raise self.file._damaged("a bucket value is shorter than a bucket header")
        root, _sequence = BUCKET_HEADER.unpack_from(value, 0)
        return BucketView(self.file, root, value[BUCKET_HEADER.size :] if root == 0 else None)

    def get(self, key: bytes) -> bytes | BucketView | None:
        """The value or sub-bucket at ``key``, found by descending the B+tree."""
        node = self.inline
        depth = 0
        if node is None:
            node = self.file.page(self.root)
        while PAGE_HEADER.unpack_from(node, 0)[1] == BRANCH_PAGE:
            refs = branch_refs(node)
            # The last child whose first key is not above the key searched for.
            child = refs[0][1]
            for first, pgid in refs:
                if first > key:
                    break
                child = pgid
            depth += 1
            if depth > _MAX_DEPTH:
                raise self.file._damaged(f"page {child} is deeper than {_MAX_DEPTH} levels")
            node = self.file.page(child)
        for flags, found, value in leaf_elements(node):
            if found == key:
                return self._child(value) if flags & BUCKET_LEAF_FLAG else value
        return None

    def bucket(self, key: bytes) -> BucketView | None:
        found = self.get(key)
        return found if isinstance(found, BucketView) else None


def leaf_elements(node: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    """(flags, key, value) of every element of a leaf node."""
    count = PAGE_HEADER.unpack_from(node, 0)[2]
    for index in range(count):
        offset = PAGE_HEADER.size + LEAF_ELEMENT.size * index
        flags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(node, offset)
        start = offset + pos
        yield flags, node[start : start + ksize], node[start + ksize : start + ksize + vsize]


def branch_refs(node: bytes) -> list[tuple[bytes, int]]:
    """(first key, child pgid) of every element of a branch node."""
    count = PAGE_HEADER.unpack_from(node, 0)[2]
    refs = []
    for index in range(count):
        offset = PAGE_HEADER.size + BRANCH_ELEMENT.size * index
        pos, ksize, child = BRANCH_ELEMENT.unpack_from(node, offset)
        refs.append((node[offset + pos : offset + pos + ksize], child))
    return refs


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
        return META.pack(
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
            raise DatabaseInvalid("no valid meta page")
        self.meta = max(valid, key=lambda m: m.txid)
        self.metas = tuple(metas)

    @classmethod
    def open(cls, path: Path) -> Reader:
        return cls(path.read_bytes())

    def _meta(self, pgid: int, page_size: int) -> Meta:
        offset = pgid * page_size + PAGE_HEADER.size
        return Meta(
            *META.unpack_from(self.data, offset),
            *CHECKSUM.unpack_from(self.data, offset + META.size),
        )

    def header(self, pgid: int) -> PageHeader:
        return PageHeader(*PAGE_HEADER.unpack_from(self.data, pgid * self.page_size))

    def _node(self, pgid: int) -> bytes:
        header = self.header(pgid)
        if header.pgid != pgid:
            raise DatabaseInvalid(f"page {pgid} identifies itself as {header.pgid}")
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
        root, _sequence = BUCKET_HEADER.unpack_from(value, 0)
        if root == 0:
            return self._bucket_items(value[BUCKET_HEADER.size :])
        return self._bucket_items(self._node(root))

    def _walk(self, node: bytes) -> Iterator[tuple[int, bytes, bytes]]:
        pgid, flags, _count, _overflow = PAGE_HEADER.unpack_from(node, 0)
        if flags == LEAF_PAGE:
            yield from leaf_elements(node)
        elif flags == BRANCH_PAGE:
            for _key, child in branch_refs(node):
                yield from self._walk(self._node(child))
        else:
            raise DatabaseInvalid(f"page {pgid} has unexpected flags {flags:#x}")

    branch_refs = staticmethod(branch_refs)

    def freelist(self) -> list[int]:
        node = self._node(self.meta.freelist)
        _pgid, flags, count, _overflow = PAGE_HEADER.unpack_from(node, 0)
        if flags != FREELIST_PAGE:
            raise DatabaseInvalid(f"page {self.meta.freelist} is not a freelist page")
        first = 0
        if count == 0xFFFF:
            (count,) = _PGID.unpack_from(node, PAGE_HEADER.size)
            first = 1
        return [_PGID.unpack_from(node, PAGE_HEADER.size + _PGID.size * (first + i))[0] for i in range(count)]

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
                child_root, _sequence = BUCKET_HEADER.unpack_from(value, 0)
                child_name = f"{name}/{key.decode('utf-8', 'backslashreplace')}"
                if child_root != 0:
                    self._check_page(child_root, reachable, free, problems, child_name, None, None)
                else:
                    self._check_inline(value[BUCKET_HEADER.size :], reachable, free, problems, child_name)
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
        _pgid, flags, _count, _overflow = PAGE_HEADER.unpack_from(page, 0)
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
