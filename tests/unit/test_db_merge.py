"""Private advisories merged into a base DB, read lazily; the DB's identity says what it holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardening.db import bbolt, bboltread
from hardening.db.build import build_db
from hardening.db.convert import PIP_BUCKET
from hardening.db.identity import DbSource, read_identity
from hardening.errors import AdvisoryError, DatabaseError, DatabaseInvalid
from tests.unit.test_db_sources import export, go_record

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ghsa(ident: str, cve: str | None, package: str, modified: str = "2026-10-01T00:00:00Z") -> dict[str, Any]:
    return {
        "id": ident,
        "modified": modified,
        "aliases": [cve] if cve else [],
        "summary": f"a flaw in {package}",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}],
            }
        ],
        "database_specific": {"severity": "HIGH"},
    }


def advisories(directory: Path, *records: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return directory


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """An 'upstream' DB: the Go standard library record plus one pip advisory."""
    cache = tmp_path / "upstream"
    build_db(
        [
            export(tmp_path / "Go.zip", go_record()),
            advisories(tmp_path / "up", ghsa("GHSA-1111-2222-3333", "CVE-2024-1000", "requests")),
        ],
        cache,
        now=NOW,
    )
    return cache


def tree(cache: Path) -> dict[bytes, Any]:
    reader = bboltread.Reader.open(cache / "db" / "trivy.db")
    assert reader.check() == []
    return reader.tree()


class TestMerge:
    def test_the_merged_db_holds_both_and_says_so(self, tmp_path: Path, base: Path) -> None:
        ours = advisories(tmp_path / "ours", ghsa("ACME-2026-0001", None, "acme-billing"))
        out = tmp_path / "merged"
        info = build_db([ours], out, base_db=base, now=NOW)
        merged = tree(out)
        upstream = tree(base)
        assert merged[PIP_BUCKET.encode()][b"acme-billing"][b"ACME-2026-0001"]
        for bucket, content in upstream.items():
            if bucket != PIP_BUCKET.encode() and bucket != b"vulnerability":
                assert merged[bucket] == content
        assert merged[PIP_BUCKET.encode()][b"requests"] == upstream[PIP_BUCKET.encode()][b"requests"]
        assert set(merged[b"vulnerability"]) == {*upstream[b"vulnerability"], b"ACME-2026-0001"}
        # The merged DB is as old as the upstream data in it, not as new as our advisories.
        base_metadata = json.loads((base / "db" / "metadata.json").read_text())
        metadata = json.loads((out / "db" / "metadata.json").read_text())
        assert metadata["UpdatedAt"] == base_metadata["UpdatedAt"]
        assert info.updated_at.isoformat().startswith(base_metadata["UpdatedAt"][:19])
        assert metadata["Hardening"]["Source"] == "merged"
        kinds = [(c["Kind"], c.get("Records")) for c in metadata["Hardening"]["Contents"]]
        assert kinds == [("base", None), ("osv", 1)]
        identity = read_identity(out)
        assert identity.source is DbSource.MERGED
        assert any("1 OSV records from" in line for line in identity.contents)

    def test_a_record_both_define_is_an_error_naming_both(self, tmp_path: Path, base: Path) -> None:
        ours = advisories(tmp_path / "ours", ghsa("GHSA-9999-8888-7777", "CVE-2024-1000", "requests"))
        out = tmp_path / "merged"
        with pytest.raises(AdvisoryError) as raised:
            build_db([ours], out, base_db=base, now=NOW)
        error = raised.value
        assert error.exit_code == 2
        text = error.diagnostics()
        assert "GHSA-9999-8888-7777.json" in text
        assert str(base / "db") in text
        assert "CVE-2024-1000" in text
        assert "--override" in text
        assert not (out / "db").exists()

    def test_override_lets_ours_replace_the_upstream_record(self, tmp_path: Path, base: Path) -> None:
        record = ghsa("GHSA-9999-8888-7777", "CVE-2024-1000", "requests")
        record["affected"][0]["ranges"][0]["events"][1] = {"fixed": "3.0"}
        out = tmp_path / "merged"
        build_db([advisories(tmp_path / "ours", record)], out, base_db=base, override=True, now=NOW)
        merged = tree(out)
        entry = json.loads(merged[PIP_BUCKET.encode()][b"requests"][b"CVE-2024-1000"])
        assert entry["PatchedVersions"] == ["3.0"]
        assert json.loads(merged[b"vulnerability"][b"CVE-2024-1000"])["Title"] == "a flaw in requests"

    def test_a_fork_of_an_upstream_package_adds_the_package_and_keeps_the_description(
        self, tmp_path: Path, base: Path
    ) -> None:
        ours = advisories(tmp_path / "ours", ghsa("ACME-2026-0002", "CVE-2024-1000", "acme-requests"))
        out = tmp_path / "merged"
        build_db([ours], out, base_db=base, now=NOW)
        merged, upstream = tree(out), tree(base)
        assert merged[PIP_BUCKET.encode()][b"acme-requests"][b"CVE-2024-1000"]
        assert merged[PIP_BUCKET.encode()][b"requests"] == upstream[PIP_BUCKET.encode()][b"requests"]
        assert merged[b"vulnerability"][b"CVE-2024-1000"] == upstream[b"vulnerability"][b"CVE-2024-1000"]

    def test_merging_in_place_keeps_the_base_until_the_swap(self, tmp_path: Path, base: Path) -> None:
        ours = advisories(tmp_path / "ours", ghsa("ACME-2026-0001", None, "acme-billing"))
        build_db([ours], base, base_db=base, now=NOW)
        assert b"acme-billing" in tree(base)[PIP_BUCKET.encode()]
        assert [p.name for p in base.iterdir()] == ["db"]

    def test_a_base_without_a_db(self, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        with pytest.raises(DatabaseInvalid, match=r"no trivy\.db"):
            build_db([], tmp_path / "out", base_db=tmp_path / "empty", now=NOW)

    def test_a_base_of_another_schema(self, tmp_path: Path, base: Path) -> None:
        metadata = base / "db" / "metadata.json"
        metadata.write_text(metadata.read_text().replace('"Version": 2', '"Version": 1'))
        with pytest.raises(DatabaseInvalid, match="Version 1"):
            build_db([], tmp_path / "out", base_db=base, now=NOW)


class TestIdentity:
    def test_built(self, base: Path) -> None:
        identity = read_identity(base)
        assert identity.source is DbSource.BUILT
        assert (identity.repository, identity.manifest_digest) == (None, None)
        assert identity.updated_at == datetime(2026, 10, 1, tzinfo=UTC)

    def test_a_db_nobody_recorded(self, tmp_path: Path, base: Path) -> None:
        metadata = base / "db" / "metadata.json"
        data = json.loads(metadata.read_text())
        del data["Hardening"]
        metadata.write_text(json.dumps(data))
        identity = read_identity(base)
        assert identity.source is DbSource.UNKNOWN
        assert identity.contents == ()

    def test_no_db(self, tmp_path: Path) -> None:
        with pytest.raises(DatabaseInvalid, match="no vulnerability DB") as raised:
            read_identity(tmp_path)
        assert "harden db pull" in raised.value.diagnostics()


class TestLazyReader:
    def test_get_and_iterate_across_branch_pages(self, tmp_path: Path) -> None:
        big = {f"k{i:05d}".encode(): (b"v" * (i % 700)) for i in range(3000)}
        path = tmp_path / "t.db"
        bbolt.write(path, {b"big": big, b"small": {b"a": b"1"}, b"nested": {b"p": {b"x": b"y"}}})
        with bboltread.BoltFile(path) as bolt:
            view = bolt.root.bucket(b"big")
            assert view is not None
            assert [(k, v) for k, v in view] == sorted(big.items())
            for key in (b"k00000", b"k01234", b"k02999"):
                assert view.get(key) == big[key]
            assert view.get(b"k03000") is None
            assert view.get(b"a") is None
            nested = bolt.root.bucket(b"nested")
            assert nested is not None and nested.bucket(b"p") is not None
            assert dict(nested.bucket(b"p") or []) == {b"x": b"y"}

    def test_a_streamed_bucket_out_of_order_is_refused(self) -> None:
        with pytest.raises(DatabaseError, match="ascending key order"):
            bbolt.encode({b"b": iter([(b"2", b"x"), (b"1", b"y")])})

    def test_a_truncated_file(self, tmp_path: Path) -> None:
        path = tmp_path / "t.db"
        bbolt.write(path, {b"big": {f"k{i}".encode(): b"v" * 100 for i in range(500)}})
        path.write_bytes(path.read_bytes()[: 6 * bbolt.PAGE_SIZE])
        with bboltread.BoltFile(path) as bolt, pytest.raises(DatabaseInvalid, match="outside the file"):
            list(bolt.root.bucket(b"big") or [])


keys = st.binary(min_size=1, max_size=30)
trees = st.recursive(
    st.dictionaries(keys, st.binary(max_size=900), max_size=40),
    lambda children: st.dictionaries(keys, children | st.binary(max_size=3000), max_size=6),
    max_leaves=80,
)


def materialize(view: Any) -> Any:
    return {k: (v if isinstance(v, bytes) else materialize(v)) for k, v in view}


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, trees, max_size=4))
def test_a_lazy_copy_is_the_same_tree(tmp_path_factory: Any, tree_a: dict[bytes, Any]) -> None:
    directory = tmp_path_factory.mktemp("lazy")
    first = directory / "a.db"
    bbolt.write(first, tree_a)
    with bboltread.BoltFile(first) as bolt:
        assert materialize(bolt.root) == tree_a
        copy = bbolt.encode(bolt.root)
    reader = bboltread.Reader(copy)
    assert reader.check() == []
    assert reader.tree() == tree_a
