"""`harden db push` and `harden db pull` against the real registry, Trivy's own downloader, and faults.

Every fault leaves the previous DB exactly as it was: same bytes, nothing half-written beside it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.db.artifact import Packed, pack
from hardening.db.build import build_db
from hardening.db.registry import push_layer
from tests.registry.faultproxy import fault_proxy
from tests.registry.server import RegistryServer, free_port
from tests.reliability import cases
from tests.reliability.cases import Case, params
from tests.reliability.harness import Result, harden
from tests.reliability.test_faults import tiny_tmpfs
from tests.trivy.test_db_real import debian_root, scan

pytestmark = [pytest.mark.registry, pytest.mark.trivy]

REPO = Path(__file__).resolve().parents[2]
ADVISORIES = REPO / "advisories"
UPSTREAM = REPO / "advisories" / "upstream"
TRIVY = Path(sys.executable).parent / "trivy"
REPOSITORY = "hardening-test/trivy-db"


def snapshot(cache: Path) -> dict[str, bytes]:
    """Every file under the cache, by relative path: what a fault must not change."""
    return {p.relative_to(cache).as_posix(): p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A DB built from the repository's advisories: the one we publish."""
    cache = tmp_path / "built"
    build_db([ADVISORIES], cache, now=datetime.now(UTC))
    return cache


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    """A cache holding another, older DB: what every failed pull must leave alone."""
    cache = tmp_path / "previous"
    record = {
        "id": "GHSA-prev-ious-0001",
        "modified": "2025-01-01T00:00:00Z",
        "aliases": ["CVE-2025-0001"],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "previous"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
            }
        ],
    }
    (tmp_path / "prev-adv").mkdir()
    (tmp_path / "prev-adv" / "GHSA-prev-ious-0001.json").write_text(json.dumps(record))
    build_db([tmp_path / "prev-adv"], cache, now=datetime.now(UTC))
    return cache


@pytest.fixture
def published(registry: RegistryServer, built: Path) -> str:
    ref = f"{registry.address}/{REPOSITORY}:2"
    result = harden(None, "db", "push", ref, "--cache-dir", str(built))
    assert result.code == 0, result.output
    assert f"to {ref}@sha256:" in result.stdout
    return ref


def pull(cache: Path, *refs: str) -> Result:
    args = [arg for ref in refs for arg in ("--repository", ref)]
    return harden(None, "db", "pull", *args, "--cache-dir", str(cache), timeout=600)


def assert_untouched(cache: Path, before: dict[str, bytes], result: Result, case: Case) -> None:
    assert result.code == 3, result.output
    assert "Traceback" not in result.output
    for words in case.words():
        assert words.lower() in result.output.lower(), (words, result.output)
    assert snapshot(cache) == before, "the previous DB changed"
    assert sorted(p.name for p in cache.iterdir()) == ["db"], "something was left beside the DB"
    assert "the previous DB is unchanged" in result.output


class TestRoundTrip:
    def test_push_pull_back_and_scan(
        self, tmp_path: Path, registry: RegistryServer, built: Path, published: str
    ) -> None:
        cache = tmp_path / "pulled"
        with fault_proxy(registry.address) as proxy:
            ref = published.replace(registry.address, proxy.address)
            first = pull(cache, ref)
            assert first.code == 0, first.output
            assert f"pulled from {ref}@sha256:" in first.stdout
            assert proxy.blob_downloads() == 1
            for name in ("trivy.db", "metadata.json"):
                assert (cache / "db" / name).read_bytes() == (built / "db" / name).read_bytes()
            record = json.loads((cache / "db" / "pull.json").read_text())
            assert record["Repository"] == ref and record["ManifestDigest"].startswith("sha256:")
            # The same digest again: a manifest request, no download.
            again = pull(cache, ref)
            assert again.code == 0, again.output
            assert "already current" in again.stdout
            assert proxy.blob_downloads() == 1
        shown = harden(None, "db", "show", "--cache-dir", str(cache))
        assert shown.code == 0, shown.output
        assert "source:      pulled" in shown.stdout
        assert f"digest:      {record['ManifestDigest']}" in shown.stdout
        assert f"{len(list(ADVISORIES.rglob('*.json')))} OSV records from" in shown.stdout
        # And Trivy scans with what came back.
        root = debian_root(
            tmp_path / "root",
            setuptools_deb="66.1.1-1+deb12u2",
            perl="5.36.0-7+deb12u2",
            venv={"pip": "23.0.1"},
        )
        found, _ = scan(cache, root)
        assert ("CVE-2023-5752", "pip", "23.0.1", "23.3") in found

    def test_trivys_own_downloader_accepts_what_we_pushed(
        self, tmp_path: Path, built: Path, published: str
    ) -> None:
        cache = tmp_path / "trivy-cache"
        completed = subprocess.run(
            [
                str(TRIVY), "image", "--download-db-only", "--db-repository", published,
                "--cache-dir", str(cache), "--skip-java-db-update", "--disable-telemetry",
            ],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert "Artifact successfully downloaded" in completed.stderr
        assert (cache / "db" / "trivy.db").read_bytes() == (built / "db" / "trivy.db").read_bytes()
        metadata = json.loads((cache / "db" / "metadata.json").read_text())
        assert metadata["Version"] == 2
        assert metadata["UpdatedAt"] == json.loads((built / "db" / "metadata.json").read_text())["UpdatedAt"]


def _case(kind: str) -> list[object]:
    return params(tuple(c for c in cases.DB_PULL_CASES if c.data["kind"] == kind))


class TestRegistryFaults:
    @pytest.mark.parametrize("case", _case("proxy"))
    def test_fault_keeps_the_previous_db_and_the_next_repository_serves(
        self, registry: RegistryServer, published: str, previous: Path, case: Case
    ) -> None:
        before = snapshot(previous)
        with fault_proxy(registry.address, case.id) as proxy:
            faulty = published.replace(registry.address, proxy.address)
            failed = pull(previous, faulty)
            assert_untouched(previous, before, failed, case)
            assert "no repository served a valid Trivy DB (1 tried)" in failed.output
            recovered = pull(previous, faulty, published)
        assert recovered.code == 0, recovered.output
        assert f"db pull: {faulty}: " in recovered.output and "trying the next repository" in recovered.output
        assert f"pulled from {published}@" in recovered.stdout

    @pytest.mark.parametrize("case", _case("address"))
    def test_unreachable_or_missing(
        self, registry: RegistryServer, published: str, previous: Path, case: Case
    ) -> None:
        before = snapshot(previous)
        if case.id == "closed-port":
            ref = f"127.0.0.1:{free_port()}/{REPOSITORY}:2"
        else:
            ref = f"{registry.address}/hardening-test/nothing-here:2"
        failed = pull(previous, ref)
        assert_untouched(previous, before, failed, case)
        assert f"{ref}: " in failed.output
        assert pull(previous, ref, published).code == 0


def layer_of(path: Path, members: dict[str, bytes]) -> Packed:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return packed(path)


def packed(path: Path) -> Packed:
    return Packed(path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)


def bad_layer(case: str, built: Path, scratch: Path) -> Packed:
    members = {name: (built / "db" / name).read_bytes() for name in ("trivy.db", "metadata.json")}
    if case == "no-metadata":
        return layer_of(scratch / "bad.tar.gz", {"trivy.db": members["trivy.db"]})
    if case == "version-1":
        members["metadata.json"] = members["metadata.json"].replace(b'"Version": 2', b'"Version": 1')
        return layer_of(scratch / "bad.tar.gz", members)
    if case == "escaping-path":
        return layer_of(scratch / "bad.tar.gz", {"../../outside": b"x", **members})
    assert case == "truncated", case
    whole = pack(built / "db", scratch / "whole.tar.gz")
    cut = scratch / "cut.tar.gz"
    cut.write_bytes(whole.path.read_bytes()[: whole.size // 2])
    return packed(cut)


class TestBadArtifacts:
    @pytest.mark.parametrize("case", _case("layer"))
    def test_bad_layer(
        self, tmp_path: Path, registry: RegistryServer, built: Path, previous: Path, case: Case
    ) -> None:
        ref = f"{registry.address}/{REPOSITORY}-{case.id}:2"
        push_layer(ref, bad_layer(case.id, built, tmp_path))
        before = snapshot(previous)
        failed = pull(previous, ref)
        assert_untouched(previous, before, failed, case)
        assert not (tmp_path / "outside").exists()


@pytest.fixture
def full_exports_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cache = tmp_path_factory.mktemp("exports") / "cache"
    build_db([UPSTREAM / "Go.zip", UPSTREAM / "PyPI.zip"], cache, now=datetime.now(UTC))
    yield cache


@pytest.mark.parametrize("case", _case("disk"))
def test_a_disk_that_fills_during_the_unpack(
    tmp_path: Path, registry: RegistryServer, full_exports_db: Path, previous: Path, case: Case
) -> None:
    ref = f"{registry.address}/{REPOSITORY}-big:2"
    assert harden(None, "db", "push", ref, "--cache-dir", str(full_exports_db)).code == 0
    size = (full_exports_db / "db" / "trivy.db").stat().st_size
    with tiny_tmpfs(tmp_path / "full", size="3m") as full:
        cache = full / "cache"
        subprocess.run(["cp", "-a", str(previous), str(cache)], check=True, timeout=60)
        before = snapshot(cache)
        # Room for the download (about 1.3 MB) but not for the 7 MB DB it unpacks to.
        assert size > 3 * 1024 * 1024
        result = pull(cache, ref)
        assert_untouched(cache, before, result, case)
