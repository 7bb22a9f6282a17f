"""The DB layer is checked while unpacking; the cache's DB is replaced whole or not at all."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.db import artifact
from hardening.db.build import build_db
from hardening.db.cache import staged_db
from hardening.errors import DatabaseError, DatabaseInvalid

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    build_db([REPO / "advisories"], tmp_path / "cache", now=NOW)
    return tmp_path / "cache" / "db"


def layer(path: Path, members: dict[str, bytes], *, kinds: dict[str, bytes] | None = None) -> Path:
    """A db.tar.gz with ``members`` as regular files and ``kinds`` (name → tar type) as others."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, kind in (kinds or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return path


def good_members(db_dir: Path) -> dict[str, bytes]:
    return {name: (db_dir / name).read_bytes() for name in ("trivy.db", "metadata.json")}


class TestPack:
    def test_round_trip_and_the_same_db_packs_to_the_same_digest(self, tmp_path: Path, db_dir: Path) -> None:
        first = artifact.pack(db_dir, tmp_path / "a.tar.gz")
        second = artifact.pack(db_dir, tmp_path / "b.tar.gz")
        assert first.digest == second.digest and first.digest.startswith("sha256:")
        out = tmp_path / "out"
        out.mkdir()
        metadata = artifact.unpack(first.path, out)
        assert metadata.version == 2
        for name in ("trivy.db", "metadata.json"):
            assert (out / name).read_bytes() == (db_dir / name).read_bytes()
        with tarfile.open(first.path) as archive:
            assert [m.name for m in archive] == ["trivy.db", "metadata.json"]


BAD_LAYERS: dict[str, tuple[Callable[[dict[str, bytes]], dict[str, bytes]], str]] = {
    "no-metadata": (lambda m: {"trivy.db": m["trivy.db"]}, "holds no metadata.json"),
    "no-db": (lambda m: {"metadata.json": m["metadata.json"]}, "holds no trivy.db"),
    "version-1": (
        lambda m: {**m, "metadata.json": m["metadata.json"].replace(b'"Version": 2', b'"Version": 1')},
        "Version 1",
    ),
    "escaping-path": (lambda m: {**m, "../../evil": b"x"}, "escapes the directory"),
    "absolute-path": (lambda m: {**m, "/tmp/evil": b"x"}, "escapes the directory"),
    "extra-member": (lambda m: {**m, "README": b"x"}, "unexpected member"),
    "not-bbolt": (lambda m: {**m, "trivy.db": b"\0" * 8192}, "no valid meta page"),
}


class TestUnpackRefuses:
    @pytest.mark.parametrize("case", sorted(BAD_LAYERS))
    def test_bad_layers(self, tmp_path: Path, db_dir: Path, case: str) -> None:
        change, words = BAD_LAYERS[case]
        bad = layer(tmp_path / "bad.tar.gz", change(good_members(db_dir)))
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(DatabaseInvalid, match=words):
            artifact.unpack(bad, out)
        assert not (tmp_path / "evil").exists()

    def test_a_symlink(self, tmp_path: Path, db_dir: Path) -> None:
        bad = layer(tmp_path / "bad.tar.gz", good_members(db_dir), kinds={"trivy.db.link": tarfile.SYMTYPE})
        (tmp_path / "out").mkdir()
        with pytest.raises(DatabaseInvalid, match="not a regular file"):
            artifact.unpack(bad, tmp_path / "out")

    @pytest.mark.parametrize("keep", [0.3, 0.9])
    def test_truncated(self, tmp_path: Path, db_dir: Path, keep: float) -> None:
        packed = artifact.pack(db_dir, tmp_path / "db.tar.gz")
        data = packed.path.read_bytes()
        packed.path.write_bytes(data[: int(len(data) * keep)])
        (tmp_path / "out").mkdir()
        with pytest.raises(DatabaseInvalid, match="truncated or damaged"):
            artifact.unpack(packed.path, tmp_path / "out")

    def test_not_gzip_at_all(self, tmp_path: Path) -> None:
        junk = tmp_path / "db.tar.gz"
        junk.write_text("<html>502 Bad Gateway</html>")
        (tmp_path / "out").mkdir()
        with pytest.raises(DatabaseInvalid):
            artifact.unpack(junk, tmp_path / "out")

    def test_inflating_past_the_limit(self, tmp_path: Path, db_dir: Path) -> None:
        packed = artifact.pack(db_dir, tmp_path / "db.tar.gz")
        (tmp_path / "out").mkdir()
        with pytest.raises(DatabaseInvalid, match="inflates past"):
            artifact.unpack(packed.path, tmp_path / "out", limit=1000)


class TestStagedSwap:
    def test_a_failure_leaves_the_previous_db_and_no_stage(self, tmp_path: Path, db_dir: Path) -> None:
        cache = db_dir.parent
        before = {p.name: p.read_bytes() for p in db_dir.iterdir()}
        with pytest.raises(RuntimeError), staged_db(cache) as stage:
            (stage / "trivy.db").write_bytes(b"half")
            raise RuntimeError("interrupted")
        assert {p.name: p.read_bytes() for p in db_dir.iterdir()} == before
        assert [p.name for p in cache.iterdir()] == ["db"]

    def test_success_replaces_the_pair_and_drops_stale_files(self, tmp_path: Path, db_dir: Path) -> None:
        cache = db_dir.parent
        (db_dir / "pull.json").write_text("{}")
        with staged_db(cache) as stage:
            (stage / "trivy.db").write_bytes(b"new")
            (stage / "metadata.json").write_text(json.dumps({"Version": 2}))
        assert sorted(p.name for p in db_dir.iterdir()) == ["metadata.json", "trivy.db"]
        assert (db_dir / "trivy.db").read_bytes() == b"new"
        assert [p.name for p in cache.iterdir()] == ["db"]

    def test_leftovers_of_a_killed_pull_are_swept_when_stale(self, tmp_path: Path, db_dir: Path) -> None:
        cache = db_dir.parent
        stale, fresh = cache / ".db-stage-killed", cache / ".db-download-running.tar.gz"
        stale.mkdir()
        (stale / "trivy.db").write_bytes(b"half")
        fresh.write_bytes(b"in progress")
        os.utime(stale, (0, 0))
        with staged_db(cache) as stage:
            (stage / "trivy.db").write_bytes(b"new")
        assert sorted(p.name for p in cache.iterdir()) == [".db-download-running.tar.gz", "db"]

    def test_an_unwritable_cache(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        with pytest.raises(DatabaseError, match="cannot create a directory"), staged_db(blocker):
            pass
