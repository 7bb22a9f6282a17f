"""The bbolt writer lays out pages the way bbolt reads them; the checking reader agrees."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardening.db import bbolt, bboltread
from hardening.errors import DatabaseError, DatabaseInvalid

PAGE = bbolt.PAGE_SIZE


def page_header(data: bytes, pgid: int) -> tuple[int, int, int, int]:
    header: tuple[int, int, int, int] = struct.unpack_from("<QHHI", data, pgid * PAGE)
    return header


def pages_with_flag(data: bytes, flag: int) -> list[int]:
    reader = bboltread.Reader(data)
    found = []
    pgid = 3
    while pgid < reader.meta.high_water:
        _, flags, _, overflow = page_header(data, pgid)
        if flags == flag:
            found.append(pgid)
        pgid += overflow + 1
    return found


class TestEmptyDatabase:
    def test_has_two_meta_pages_a_freelist_and_an_empty_root_leaf(self) -> None:
        data = bbolt.encode({})
        assert len(data) == 4 * PAGE
        assert page_header(data, 0) == (0, bbolt.META_PAGE, 0, 0)
        assert page_header(data, 1) == (1, bbolt.META_PAGE, 0, 0)
        assert page_header(data, 2) == (2, bbolt.FREELIST_PAGE, 0, 0)
        assert page_header(data, 3) == (3, bbolt.LEAF_PAGE, 0, 0)

    def test_meta_fields(self) -> None:
        data = bbolt.encode({})
        for pgid in (0, 1):
            fields = struct.unpack_from("<IIIIQQQQQQ", data, pgid * PAGE + 16)
            magic, version, page_size, flags, root, sequence, freelist, high_water, txid, _ = fields
            assert (magic, version, page_size, flags) == (0xED0CDAED, 2, PAGE, 0)
            assert (root, sequence, freelist, high_water) == (3, 0, 2, 4)
            # bbolt writes the meta with txid n to page n mod 2.
            assert txid == pgid

    def test_meta_checksum_is_fnv1a64_of_the_first_56_meta_bytes(self) -> None:
        data = bbolt.encode({})
        for pgid in (0, 1):
            start = pgid * PAGE + 16
            (checksum,) = struct.unpack_from("<Q", data, start + 56)
            assert checksum == bbolt.fnv1a64(data[start : start + 56])

    def test_reader_sees_nothing_and_no_problems(self) -> None:
        reader = bboltread.Reader(bbolt.encode({}))
        assert reader.tree() == {}
        assert reader.check() == []
        assert reader.freelist() == []


def test_fnv1a64_reference_values() -> None:
    # Published FNV-1a 64-bit test vectors.
    assert bbolt.fnv1a64(b"") == 0xCBF29CE484222325
    assert bbolt.fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert bbolt.fnv1a64(b"foobar") == 0x85944171F73967E8


class TestKeys:
    def test_keys_are_stored_in_bytewise_order(self) -> None:
        keys = [b"\xff", b"a", b"B", b"aa", b"0", b"A"]
        data = bbolt.encode({b"bucket": dict.fromkeys(keys, b"v")}, inline=False)
        reader = bboltread.Reader(data)
        (leaf,) = [p for p in pages_with_flag(data, bbolt.LEAF_PAGE) if p != reader.meta.root]
        stored = [key for _, key, _ in reader._walk(reader._node(leaf))]
        assert stored == sorted(keys)
        assert reader.check() == []

    def test_element_positions_are_relative_to_each_element(self) -> None:
        data = bbolt.encode({b"b": {b"k1": b"v1", b"k2": b"value2"}}, inline=False)
        reader = bboltread.Reader(data)
        (leaf,) = [p for p in pages_with_flag(data, bbolt.LEAF_PAGE) if p != reader.meta.root]
        base = leaf * PAGE
        first = struct.unpack_from("<IIII", data, base + 16)
        second = struct.unpack_from("<IIII", data, base + 32)
        assert first == (0, 32, 2, 2)  # two headers follow the first element: 16 + 16
        assert second == (0, 16 + 4, 2, 6)  # the second's data follows the first's k1v1
        assert data[base + 16 + 32 : base + 16 + 36] == b"k1v1"
        assert data[base + 32 + 20 : base + 32 + 28] == b"k2value2"

    def test_empty_key_is_refused(self) -> None:
        with pytest.raises(DatabaseError, match="empty bucket key"):
            bbolt.encode({b"b": {b"": b"v"}})

    def test_oversized_key_is_refused(self) -> None:
        with pytest.raises(DatabaseError, match="exceeds bbolt's limit"):
            bbolt.encode({b"b": {b"k" * (bbolt.MAX_KEY_SIZE + 1): b"v"}})

    def test_top_level_values_must_be_buckets(self) -> None:
        with pytest.raises(DatabaseError, match="only buckets at the top level"):
            bbolt.encode({b"plain": b"value"})

    def test_unsorted_keys_are_caught_by_the_checker(self) -> None:
        data = bytearray(bbolt.encode({b"b": {b"k1": b"x", b"k2": b"y"}}, inline=False))
        offset = data.index(b"k2y")
        data[offset : offset + 2] = b"k0"
        problems = bboltread.Reader(bytes(data)).check()
        assert any("out of order" in p for p in problems)


class TestNestedBuckets:
    TREE: ClassVar[dict[bytes, Any]] = {
        b"vulnerability": {b"CVE-1": b"{}", b"CVE-2": b"{}"},
        b"pip::GitHub Security Advisory pip": {
            b"setuptools": {b"CVE-2024-6345": b'{"PatchedVersions":["70.0.0"]}'},
            b"pip": {b"CVE-2023-5752": b'{"PatchedVersions":["23.3"]}'},
        },
        b"empty": {},
    }

    @pytest.mark.parametrize("inline", [True, False])
    def test_round_trip(self, inline: bool) -> None:
        reader = bboltread.Reader(bbolt.encode(self.TREE, inline=inline))
        assert reader.tree() == self.TREE
        assert reader.check() == []

    def test_bucket_values_carry_the_bucket_flag_and_a_root_page(self) -> None:
        data = bbolt.encode(self.TREE, inline=False)
        reader = bboltread.Reader(data)
        entries = list(reader._walk(reader._node(reader.meta.root)))
        assert [key for _, key, _ in entries] == sorted(self.TREE)
        for flags, _key, value in entries:
            assert flags == bbolt.BUCKET_LEAF_FLAG
            root, sequence = struct.unpack("<QQ", value)
            assert 3 <= root < reader.meta.high_water
            assert sequence == 0

    def test_small_leaf_buckets_are_inlined(self) -> None:
        data = bbolt.encode(self.TREE, inline=True)
        reader = bboltread.Reader(data)
        entries = {key: value for _, key, value in reader._walk(reader._node(reader.meta.root))}
        # A bucket holding only values, small enough, is stored inline with root 0.
        root, _ = struct.unpack_from("<QQ", entries[b"vulnerability"], 0)
        assert root == 0
        assert struct.unpack_from("<QHHI", entries[b"vulnerability"], 16)[1] == bbolt.LEAF_PAGE
        # A bucket with sub-buckets is never inline.
        root, _ = struct.unpack_from("<QQ", entries[b"pip::GitHub Security Advisory pip"], 0)
        assert root != 0

    def test_inline_bucket_larger_than_a_quarter_page_gets_its_own_page(self) -> None:
        tree = {b"b": {b"k": b"x" * (PAGE // 4)}}
        reader = bboltread.Reader(bbolt.encode(tree))
        (entry,) = reader._walk(reader._node(reader.meta.root))
        assert struct.unpack_from("<QQ", entry[2], 0)[0] != 0
        assert reader.tree() == tree


class TestLargeNodes:
    def test_a_large_value_spans_overflow_pages(self) -> None:
        value = bytes(range(256)) * 40  # 10240 bytes
        data = bbolt.encode({b"b": {b"big": value}})
        reader = bboltread.Reader(data)
        leaves = pages_with_flag(data, bbolt.LEAF_PAGE)
        overflows = {p: page_header(data, p)[3] for p in leaves}
        # 16 header + 16 element + 3 key + 10240 value = 10275 bytes: three pages.
        assert 2 in overflows.values()
        assert reader.meta.high_water * PAGE == len(data)
        assert reader.tree() == {b"b": {b"big": value}}
        assert reader.check() == []

    def test_many_keys_need_branch_pages(self) -> None:
        bucket = {f"key-{i:05d}".encode(): b"v" * 40 for i in range(3000)}
        data = bbolt.encode({b"b": bucket})
        branches = pages_with_flag(data, bbolt.BRANCH_PAGE)
        assert branches
        reader = bboltread.Reader(data)
        for branch in branches:
            keys = [key for key, _ in reader.branch_refs(reader._node(branch))]
            assert keys == sorted(keys)
        assert reader.tree() == {b"b": bucket}
        assert reader.check() == []

    def test_every_page_is_reachable_and_none_is_free(self) -> None:
        tree = {
            b"a": {f"{i:04d}".encode(): b"x" * (i % 700) for i in range(400)},
            b"b": {b"nested": {b"deeper": {b"k": b"v" * 9000}}},
        }
        reader = bboltread.Reader(bbolt.encode(tree))
        assert reader.check() == []
        assert reader.freelist() == []


class TestMetaValidation:
    def test_a_corrupt_meta_page_falls_back_to_the_other(self) -> None:
        data = bytearray(bbolt.encode({b"b": {b"k": b"v"}}))
        data[PAGE + 16 + 20] ^= 0xFF  # meta page 1: root pgid, now failing its checksum
        reader = bboltread.Reader(bytes(data))
        assert not reader.metas[1].valid
        assert reader.meta.txid == 0
        assert reader.tree() == {b"b": {b"k": b"v"}}

    def test_no_valid_meta_page_is_an_error(self) -> None:
        data = bytearray(bbolt.encode({}))
        data[16] ^= 0xFF
        data[PAGE + 16] ^= 0xFF
        with pytest.raises(DatabaseInvalid, match="no valid meta page"):
            bboltread.Reader(bytes(data))


class TestWrite:
    def test_writes_the_encoded_bytes_and_leaves_no_temp_file(self, tmp_path: Path) -> None:
        target = tmp_path / "db" / "trivy.db"
        tree = {b"b": {b"k": b"v"}}
        bbolt.write(target, tree)
        assert target.read_bytes() == bbolt.encode(tree)
        assert [p.name for p in target.parent.iterdir()] == ["trivy.db"]

    def test_replaces_an_existing_file(self, tmp_path: Path) -> None:
        target = tmp_path / "trivy.db"
        target.write_bytes(b"old")
        bbolt.write(target, {b"b": {}})
        assert bboltread.Reader.open(target).tree() == {b"b": {}}

    def test_unwritable_directory_is_a_database_error(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with pytest.raises(DatabaseError) as raised:
            bbolt.write(blocker / "trivy.db", {})
        assert raised.value.hint


keys = st.binary(min_size=1, max_size=40)
trees = st.recursive(
    st.dictionaries(keys, st.binary(max_size=600), max_size=8),
    lambda children: st.dictionaries(keys, children | st.binary(max_size=5000), max_size=6),
    max_leaves=60,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(keys, trees, max_size=5), st.booleans())
def test_any_tree_round_trips_and_passes_the_check(tree: dict[bytes, Any], inline: bool) -> None:
    reader = bboltread.Reader(bbolt.encode(tree, inline=inline))
    assert reader.tree() == tree
    assert reader.check() == []
