"""The archive reader's pieces on their own: Release checks, gpg status, index selection,
changelog arithmetic, target resolution, the cache, and every member of its enums."""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hardening.aptsources import AptSource
from hardening.archive.cache import ArchiveCache, CachedChangelog
from hardening.archive.changelog import ChangelogGap, parse_changelog
from hardening.archive.fetch import Fetcher
from hardening.archive.image import ImageState, TargetOptions, parse_os_release, resolve_target
from hardening.archive.index import Candidate, candidates, select
from hardening.archive.model import GapKind
from hardening.archive.outdated import ChangelogMode
from hardening.archive.release import Release, _signatures, parse_release
from hardening.archive.snapshot import Pocket
from hardening.base import BaseSpec
from hardening.errors import ArchiveError, ArchiveTrustError, UsageError
from hardening.inspect.dpkg import DpkgPackage
from tests.archive.aptrepo import Entry, changelog

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SUM = "a" * 64
RELEASE_TEXT = f"""\
Origin: Debian
Label: Debian-Security
Suite: oldstable-security
Version: 12
Codename: bookworm-security
Date: Sun, 29 Nov 2026 00:53:13 UTC
Valid-Until: Sun, 06 Dec 2026 00:53:13 UTC
Acquire-By-Hash: yes
Architectures: amd64 arm64
Components: updates/main updates/contrib
SHA256:
 {SUM}   383424 main/binary-amd64/Packages.xz
 {SUM}  2560365 main/binary-amd64/Packages
"""


def _release(text: str = RELEASE_TEXT, suite: str = "bookworm-security", now: datetime = NOW) -> Release:
    return parse_release(
        text, mirror="http://mirror.invalid/debian-security", suite=suite, signers=(), sha256="0", now=now
    )


def test_release_fields() -> None:
    release = _release()
    assert release.codename == "bookworm-security"
    assert release.components == ("main", "contrib")  # "updates/main" lives under main/
    assert release.by_hash is True
    assert release.valid_until == datetime(2026, 12, 6, 0, 53, 13, tzinfo=UTC)
    assert release.files["main/binary-amd64/Packages.xz"].size == 383424
    assert release.major == "12"
    assert release.url == "http://mirror.invalid/debian-security/dists/bookworm-security/InRelease"


def test_release_by_suite_name_and_major() -> None:
    release = _release(RELEASE_TEXT.replace("Version: 12\n", "Version: 12.15\n"), suite="oldstable-security")
    assert release.major == "12"
    assert _release(RELEASE_TEXT.replace("Version: 12\n", "")).major is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("Codename: bookworm-security", "Codename: trixie-security"), "is the Release of trixie-security"),
        (("Date: Sun, 29 Nov 2026 00:53:13 UTC\n", ""), "has no Date field"),
        (("Date: Sun, 29 Nov 2026", "Date: someday 29 Nov 2026"), "unreadable Date"),
        (("SHA256:", "MD5Sum:"), "lists no SHA256 sums"),
        ((f"{SUM}   383424", f"{SUM}   many"), "malformed SHA256 entry"),
    ],
)
def test_release_refused(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ArchiveTrustError, match=message):
        _release(RELEASE_TEXT.replace(*change))


def test_release_expired() -> None:
    with pytest.raises(ArchiveTrustError, match="expired on 2026-12-06"):
        _release(now=datetime(2026, 12, 7, tzinfo=UTC))


def test_gpg_status_lines() -> None:
    valid = "[GNUPG:] VALIDSIG 4CB50190207B4758A3F73A796ED0E7B82643E131 x\n"
    good = "[GNUPG:] GOODSIG 6ED0E7B82643E131 Key\n" + valid
    assert _signatures(good) == (("4CB50190207B4758A3F73A796ED0E7B82643E131",), False)
    expired = "[GNUPG:] EXPKEYSIG 6ED0E7B82643E131 Key\n" + valid
    assert _signatures(expired) == ((), False)
    assert _signatures(good + "[GNUPG:] BADSIG 1111222233334444 Other\n")[1] is True
    assert _signatures(
        "[GNUPG:] ERRSIG 1111222233334444 1 8 01 0 9\n[GNUPG:] NO_PUBKEY 1111222233334444\n"
    ) == ((), False)


INDEX = b"""\
Package: libfoo1
Source: foo (1.0-1)
Version: 1.0-1+b1
Architecture: amd64
Filename: pool/main/f/foo/libfoo1_1.0-1+b1_amd64.deb
Size: 100
SHA256: AAAA

Package: foo-doc
Source: foo
Version: 1.0-1
Architecture: all
Filename: pool/main/f/foo/foo-doc_1.0-1_all.deb
Size: 200
SHA256: bbbb

Package: bar
Version: 2.0
Architecture: amd64
Filename: pool/main/b/bar/bar_2.0_amd64.deb
Size: 300
SHA256: cccc

Version: 9
Package: odd
Architecture: amd64
Filename: pool/main/o/odd/odd_9_amd64.deb
Size: 1
SHA256: dddd
"""


def test_select_by_package_and_source() -> None:
    assert [p.split(b"\n")[0] for p in select(INDEX, packages=frozenset({"bar"}))] == [
        b"Package: bar",
        b"Version: 9",  # not in the archive's field order: handed to python-debian to decide
    ]
    by_source = [p.split(b"\n")[0] for p in select(INDEX, packages=frozenset(), sources=frozenset({"foo"}))]
    assert by_source == [b"Package: libfoo1", b"Package: foo-doc", b"Version: 9"]


def test_candidates_parse_source_and_binnmu_versions() -> None:
    release = _release()
    found = list(candidates(INDEX, release, packages=frozenset({"odd"}), sources=frozenset({"foo"})))
    assert [(c.package, c.version, c.source, c.source_version, c.sha256) for c in found] == [
        ("libfoo1", "1.0-1+b1", "foo", "1.0-1", "aaaa"),
        ("foo-doc", "1.0-1", "foo", "1.0-1", "bbbb"),
        ("odd", "9", "odd", "9", "dddd"),
    ]
    assert found[0].url == "http://mirror.invalid/debian-security/pool/main/f/foo/libfoo1_1.0-1+b1_amd64.deb"


def test_candidate_without_hash_is_refused() -> None:
    broken = INDEX.replace(b"SHA256: cccc\n", b"")
    with pytest.raises(ArchiveTrustError, match="lacks 'SHA256'"):
        list(candidates(broken, _release(), packages=frozenset({"bar"})))


BINARY = Candidate("libfoo1", "1.2-3", "amd64", "foo", "1.2-3", "pool/x.deb", 1, SUM, "bookworm", "http://m")
FOO_LOG = changelog(
    "foo",
    [
        Entry("1.2-3", ["Fix CVE-2025-0003.", "Fix CVE-2024-0001 regression."]),
        Entry("1.2-2", ["Fix CVE-2024-0002."]),
        Entry("1.2-1", ["Fix CVE-2024-0001 and CVE-2023-9999."]),
        Entry("1.1-1", ["New upstream release."]),
    ],
)


def test_changelog_arithmetic() -> None:
    log = parse_changelog(gzip.compress(FOO_LOG.encode()), "foo", BINARY, "foo 1.2-3")
    assert log.version == "1.2-3" and log.oldest == "1.1-1"
    assert log.cves_between("1.2-1", "1.2-3") == ("CVE-2024-0001", "CVE-2024-0002", "CVE-2025-0003")
    assert log.cves_between("1.2-2", "1.2-2") == ()
    assert log.cves_between("1.1-1", "1.2-1") == ("CVE-2023-9999", "CVE-2024-0001")
    assert log.first_fixed() == {
        "CVE-2023-9999": "1.2-1",
        "CVE-2024-0001": "1.2-1",
        "CVE-2024-0002": "1.2-2",
        "CVE-2025-0003": "1.2-3",
    }
    assert log.reaches("1.1-1") and log.reaches("1.2-1") and not log.reaches("1.0-1")
    assert log.uploaded == "Mon, 01 Jan 2024 12:00:00 +0000"


def test_a_stable_update_made_from_an_unstable_upload_carries_its_fixes() -> None:
    # The trixie update 2.9.0-1~deb13u1 sorts below the unstable 2.9.0-1 whose entry names the
    # CVE, yet it is that upload: the fix is in 2.9.0-1~deb13u1, and installing it fixes the CVE.
    text = changelog(
        "expat",
        [
            Entry("2.9.0-1~deb13u1", ["Rebuild for trixie."]),
            Entry("2.9.0-1", ["New upstream release, fixes CVE-2026-77214."]),
            Entry("2.7.1-1", ["Fix CVE-2025-0001."]),
        ],
    )
    log = parse_changelog(gzip.compress(text.encode()), "expat", BINARY, "expat 2.9.0-1~deb13u1")
    assert log.first_fixed() == {"CVE-2025-0001": "2.7.1-1", "CVE-2026-77214": "2.9.0-1~deb13u1"}
    assert log.cves_between("2.7.1-1", "2.9.0-1~deb13u1") == ("CVE-2026-77214",)
    assert log.cves_between("2.9.0-1~deb13u1", "2.9.0-1~deb13u1") == ()


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (gzip.compress(FOO_LOG.encode())[:-12], "end-of-stream"),
        (b"not gzip at all", "Not a gzipped file"),
        (gzip.compress(FOO_LOG.encode()[: FOO_LOG.index(" -- ")]), "has no trailer line"),
        (gzip.compress(b""), "the changelog is empty"),
    ],
)
def test_changelog_cut_short(raw: bytes, detail: str) -> None:
    with pytest.raises(ChangelogGap) as info:
        parse_changelog(raw, "foo", BINARY, "foo 1.2-3")
    assert info.value.gap.kind is GapKind.CHANGELOG_TRUNCATED
    assert detail in info.value.gap.detail


def test_os_release_values_unquoted() -> None:
    text = (
        'NAME="Debian GNU/Linux"\nVERSION_CODENAME=trixie\n# comment\nID=\'debian\'\nBROKEN="unterminated\n'
    )
    assert parse_os_release(text) == {
        "NAME": "Debian GNU/Linux",
        "VERSION_CODENAME": "trixie",
        "ID": "debian",
        "BROKEN": "unterminated",
    }


def _state(**changes: object) -> ImageState:
    fields: dict[str, object] = {
        "reference": "img",
        "image_id": "sha256:0",
        "architecture": "amd64",
        "labels": {},
        "has_dpkg_status": True,
        "packages": (DpkgPackage("libc6", "2.36-9", "glibc", "2.36-9", "amd64"),),
        "os_release": {"ID": "debian", "VERSION_CODENAME": "bookworm"},
        "apt_sources": (),
    }
    fields.update(changes)
    return ImageState(**fields)  # type: ignore[arg-type]


MACHINE = [
    AptSource("http://machine/debian", ("bookworm", "bookworm-updates"), ("main",)),
    AptSource("http://machine/debian-security", ("bookworm-security",), ("main",)),
]


def test_target_from_os_release_falls_back_to_the_machine() -> None:
    target = resolve_target(_state(), TargetOptions(), machine_sources=MACHINE)
    assert (target.suite, target.origin) == ("bookworm", "os-release")
    assert (target.mirror, target.security_mirror) == (
        "http://machine/debian",
        "http://machine/debian-security",
    )
    assert target.components == ("main",) and target.architectures == ("amd64",)


def test_target_labels_then_own_sources_then_base() -> None:
    own = (
        AptSource("http://own/debian", ("trixie",), ("main", "contrib")),
        AptSource("http://own/debian-security", ("trixie-security",), ("main",)),
    )
    labels = {"org.hardening.base.suite": "trixie", "org.hardening.base.mirror": "http://label/debian"}
    target = resolve_target(_state(labels=labels, apt_sources=own), TargetOptions(), machine_sources=MACHINE)
    assert (target.suite, target.origin) == ("trixie", "labels")
    assert (target.mirror, target.security_mirror) == ("http://label/debian", "http://own/debian-security")
    assert target.components == ("main", "contrib")
    base = BaseSpec("r", "t", "trixie", None, "http://base/debian-security")
    target = resolve_target(_state(labels=labels), TargetOptions(), machine_sources=[], base=base)
    assert target.security_mirror == "http://base/debian-security"


def test_target_options_win() -> None:
    options = TargetOptions("trixie", "http://o/debian", "http://o/debian-security")
    labels = {"org.hardening.base.suite": "bookworm", "org.hardening.base.mirror": "http://label/debian"}
    target = resolve_target(_state(labels=labels), options, machine_sources=MACHINE)
    assert (target.suite, target.mirror, target.security_mirror, target.origin) == (
        "trixie",
        "http://o/debian",
        "http://o/debian-security",
        "options",
    )


@pytest.mark.parametrize(
    ("state", "machine", "message"),
    [
        (_state(has_dpkg_status=False), MACHINE, "has no dpkg status database"),
        (_state(os_release={}), MACHINE, "no /etc/os-release"),
        (_state(os_release={"ID": "ubuntu", "VERSION_CODENAME": "noble"}), MACHINE, "ID='ubuntu'"),
        (_state(), [], "no Debian mirror is known for bookworm"),
        (_state(), MACHINE[:1], "no mirror is known for bookworm-security"),
    ],
)
def test_target_cannot_be_told(state: ImageState, machine: list[AptSource], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        resolve_target(state, TargetOptions(), machine_sources=machine)


def test_architectures_from_packages_else_config() -> None:
    packages = (DpkgPackage("a", "1", "a", "1", "all"), DpkgPackage("b", "1", "b", "1", "i386"))
    assert resolve_target(
        _state(packages=packages), TargetOptions(), machine_sources=MACHINE
    ).architectures == ("i386",)
    only_all = (DpkgPackage("a", "1", "a", "1", "all"),)
    state = _state(packages=only_all, architecture="arm64")
    assert resolve_target(state, TargetOptions(), machine_sources=MACHINE).architectures == ("arm64",)


def test_enums_walk_every_member() -> None:
    assert [p.suite("trixie") for p in Pocket] == ["trixie", "trixie-updates", "trixie-security"]
    for kind in GapKind:
        assert kind.meaning and isinstance(kind.fault, bool)
    assert {k for k in GapKind if k.fault} == {
        GapKind.DEB_UNAVAILABLE,
        GapKind.DEB_HASH_MISMATCH,
        GapKind.DEB_UNREADABLE,
        GapKind.CHANGELOG_TRUNCATED,
        GapKind.CHANGELOG_MISMATCH,
    }
    assert [(m.wants(True), m.wants(False)) for m in ChangelogMode] == [
        (True, True),
        (True, False),
        (False, False),
    ]


def test_cache_entries_are_checked_when_read(tmp_path: Path) -> None:
    cache = ArchiveCache(tmp_path)
    data = b"Package: x\n"
    digest = hashlib.sha256(data).hexdigest()
    cache.put_index(digest, data)
    assert cache.index(digest) == data
    (tmp_path / "indexes" / digest).write_bytes(b"tampered")
    assert cache.index(digest) is None
    assert not (tmp_path / "indexes" / digest).exists()

    cache.put_changelog("d" * 64, CachedChangelog(b"gz bytes"))
    assert cache.changelog("d" * 64) == CachedChangelog(b"gz bytes")
    cache.put_changelog("e" * 64, CachedChangelog(None, "libsibling1"))
    assert cache.changelog("e" * 64) == CachedChangelog(None, "libsibling1")
    assert cache.changelog("f" * 64) is None
    assert ArchiveCache(None).index(digest) is None


def test_first_sighting_is_kept(tmp_path: Path) -> None:
    cache = ArchiveCache(tmp_path)
    assert cache.first_seen({"s/a/1": "2026-01-10T00:00:00Z"}) == {"s/a/1": "2026-01-10T00:00:00Z"}
    later = cache.first_seen({"s/a/1": "2026-01-12T00:00:00Z", "s/b/2": "2026-01-12T00:00:00Z"})
    assert later == {"s/a/1": "2026-01-10T00:00:00Z", "s/b/2": "2026-01-12T00:00:00Z"}
    assert ArchiveCache(None).first_seen({"k": "d"}) == {"k": "d"}


def test_prune_removes_only_old_entries(tmp_path: Path) -> None:
    cache = ArchiveCache(tmp_path)
    cache.put_index("0" * 64, b"old")
    cache.put_index("1" * 64, b"new")
    old = time.time() - 30 * 24 * 3600
    os.utime(tmp_path / "indexes" / ("0" * 64), (old, old))
    assert cache.prune() == 1
    assert sorted(p.name for p in (tmp_path / "indexes").iterdir()) == ["1" * 64]


def test_only_http_mirrors() -> None:
    with pytest.raises(ArchiveError, match="only http and https"):
        Fetcher().get("file:///etc/passwd", limit=10, what="a file")
