"""A signed apt repository on 127.0.0.1 with three pockets, and images that use it.

The packages are chosen so that every rule of the comparison shows: a security update of a
source with two binaries (one .deb read), a point update in -updates, an epoch that outranks a
higher upstream version, ``~`` sorting before the release, a binNMU, documentation linked to a
sibling package, a changelog that does not reach back, a package without changelog, and one
not in the archive. The "faulty" image adds changelogs cut short.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.archive.aptrepo import (
    Behaviour,
    Deb,
    Entry,
    Pocket,
    RepoServer,
    SigningKey,
    build_deb,
    changelog,
    make_key,
    os_release,
    publish,
    serve,
    status_paragraph,
)
from tests.unit.imagetar import ImageSpec, file, legacy_save

SUITE = "bookworm"
RELEASE_DATE = datetime(2026, 1, 10, 12, tzinfo=UTC)
UPDATES_DATE = datetime(2026, 1, 12, 8, tzinfo=UTC)
SECURITY_DATE = datetime(2026, 1, 14, 20, tzinfo=UTC)

FOO_OLD = [
    Entry("1.0-1", ["New upstream release.", "Fix CVE-2023-0001."], "unstable"),
    Entry("0.9-1", ["Initial release."], "unstable"),
]
FOO_SECURITY = [
    Entry(
        "1.0-1+deb12u1",
        ["Fix CVE-2024-1111: buffer overflow.", "Fix CVE-2024-2222.", "Really fix CVE-2024-1111."],
        "bookworm-security",
    ),
    *FOO_OLD,
]


@dataclass(frozen=True)
class Scenario:
    root: Path
    server: RepoServer
    key: SigningKey
    other_key: SigningKey
    debs: dict[str, Deb]
    images: dict[str, Path]

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour

    def pool_path(self, name: str, suite: str) -> str:
        """The URL path of a published .deb (``name`` as in ``debs``)."""
        deb = self.debs[name]
        archive = "debian-security" if suite.endswith("-security") else "debian"
        initial = deb.source[:4] if deb.source.startswith("lib") else deb.source[0]
        return f"/{archive}/pool/{suite}/main/{initial}/{deb.source}/{deb.path.name}"


def _debs(work: Path) -> dict[str, Deb]:
    log = changelog
    return {
        # foo: a security update of two binaries; libfoo1 is the smaller, so its .deb is read.
        "libfoo1": build_deb(work, "libfoo1", "1.0-1", source="foo", changelog_text=log("foo", FOO_OLD)),
        "foo-tools": build_deb(work, "foo-tools", "1.0-1", source="foo", changelog_text=log("foo", FOO_OLD)),
        "libfoo1-sec": build_deb(
            work, "libfoo1", "1.0-1+deb12u1", source="foo", changelog_text=log("foo", FOO_SECURITY)
        ),
        "foo-tools-sec": build_deb(
            work,
            "foo-tools",
            "1.0-1+deb12u1",
            source="foo",
            changelog_text=log("foo", FOO_SECURITY),
            padding=20000,
        ),
        # bar: a point update in -updates that names a CVE (a no-DSA fix).
        "bar": build_deb(work, "bar", "2.0-1", changelog_text=log("bar", [Entry("2.0-1")])),
        "bar-upd": build_deb(
            work,
            "bar",
            "2.0-1+deb12u1",
            changelog_text=log(
                "bar", [Entry("2.0-1+deb12u1", ["Fix CVE-2024-3333 (no DSA)."], "bookworm"), Entry("2.0-1")]
            ),
        ),
        # baz: the epoch outranks the security pocket's higher upstream version.
        "baz": build_deb(work, "baz", "1:3.0-2", changelog_text=log("baz", [Entry("1:3.0-2")])),
        "baz-sec": build_deb(
            work, "baz", "3.5-1", changelog_text=log("baz", [Entry("3.5-1", ["CVE-2024-9000"])])
        ),
        # tilde: 1.0~rc1-1 installed, 1.0-1 released; the rc's own CVE is not "between".
        "tilde": build_deb(
            work,
            "tilde",
            "1.0-1",
            changelog_text=log(
                "tilde", [Entry("1.0-1", ["Final release."]), Entry("1.0~rc1-1", ["Fix CVE-2022-9999."])]
            ),
        ),
        # bin: a binNMU installed (2.0-1+b1 of source 2.0-1), a security upload of the source.
        "libbin1": build_deb(
            work,
            "libbin1",
            "2.0-1+b1",
            source="bin",
            source_version="2.0-1",
            changelog_text=log("bin", [Entry("2.0-1")]),
        ),
        "libbin1-sec": build_deb(
            work,
            "libbin1",
            "2.0-1+deb12u1",
            source="bin",
            changelog_text=log("bin", [Entry("2.0-1+deb12u1", ["CVE-2024-4444"]), Entry("2.0-1")]),
        ),
        # docs: the smallest binary links its docs to libdocs1, which has the changelog.
        "libdocs1": build_deb(
            work, "libdocs1", "1.0-1", source="docs", changelog_text=log("docs", [Entry("1.0-1")])
        ),
        "docs-data-sec": build_deb(
            work, "docs-data", "1.0-1+deb12u1", source="docs", architecture="all", docs_link="libdocs1"
        ),
        "libdocs1-sec": build_deb(
            work,
            "libdocs1",
            "1.0-1+deb12u1",
            source="docs",
            changelog_text=log("docs", [Entry("1.0-1+deb12u1", ["CVE-2024-5555"]), Entry("1.0-1")]),
            padding=20000,
        ),
        # short: the candidate's changelog starts after the installed version.
        "libshort1": build_deb(
            work, "libshort1", "1.0-1", source="short", changelog_text=log("short", [Entry("1.0-1")])
        ),
        "libshort1-sec": build_deb(
            work,
            "libshort1",
            "1.0-4",
            source="short",
            changelog_text=log("short", [Entry("1.0-4", ["CVE-2024-6666"]), Entry("1.0-3")]),
        ),
        # nolog: no changelog anywhere.
        "nolog": build_deb(work, "nolog", "1.0-1"),
        "nolog-sec": build_deb(work, "nolog", "1.0-2"),
        # common-data: Architecture all, current.
        "common-data": build_deb(
            work,
            "common-data",
            "1.0-1",
            architecture="all",
            changelog_text=log("common-data", [Entry("1.0-1")]),
        ),
        # Faulty changelogs: a gzip stream cut short, and a text cut before its trailer line.
        "libtrunc1": build_deb(
            work, "libtrunc1", "1.0-1", source="trunc", changelog_text=log("trunc", [Entry("1.0-1")])
        ),
        "libtrunc1-sec": build_deb(
            work,
            "libtrunc1",
            "1.0-1+deb12u1",
            source="trunc",
            changelog_gz=gzip.compress(
                log("trunc", [Entry("1.0-1+deb12u1", ["CVE-2024-7777"]), Entry("1.0-1")]).encode(), mtime=0
            )[:60],
        ),
        "libcut1": build_deb(
            work, "libcut1", "1.0-1", source="cut", changelog_text=log("cut", [Entry("1.0-1")])
        ),
        "libcut1-sec": build_deb(
            work,
            "libcut1",
            "1.0-1+deb12u1",
            source="cut",
            changelog_text="cut (1.0-1+deb12u1) bookworm-security; urgency=high\n\n  * Fix CVE-2024-8888.\n",
        ),
    }


RELEASE = [
    "libfoo1", "foo-tools", "bar", "baz", "tilde", "libbin1", "libdocs1", "libshort1", "nolog",
    "common-data", "libtrunc1", "libcut1",
]  # fmt: skip
UPDATES = ["bar-upd"]
SECURITY = [
    "libfoo1-sec", "foo-tools-sec", "baz-sec", "libbin1-sec", "docs-data-sec", "libdocs1-sec",
    "libshort1-sec", "nolog-sec", "libtrunc1-sec", "libcut1-sec",
]  # fmt: skip

INSTALLED = [
    ("libfoo1", "1.0-1", "foo", "amd64"),
    ("foo-tools", "1.0-1", "foo", "amd64"),
    ("bar", "2.0-1", None, "amd64"),
    ("baz", "1:3.0-2", None, "amd64"),
    ("tilde", "1.0~rc1-1", None, "amd64"),
    ("libbin1", "2.0-1+b1", "bin (2.0-1)", "amd64"),
    ("libdocs1", "1.0-1", "docs", "amd64"),
    ("libshort1", "1.0-1", "short", "amd64"),
    ("nolog", "1.0-1", None, "amd64"),
    ("common-data", "1.0-1", None, "all"),
    ("local-only", "1.0", None, "amd64"),
]
FAULTY = [("libtrunc1", "1.0-1", "trunc", "amd64"), ("libcut1", "1.0-1", "cut", "amd64")]


def pockets(debs: dict[str, Deb]) -> list[Pocket]:
    release = Pocket("debian", SUITE, [debs[n] for n in RELEASE], date=RELEASE_DATE)
    updates = Pocket(
        "debian", f"{SUITE}-updates", [debs[n] for n in UPDATES], version="12-updates", date=UPDATES_DATE
    )
    security = Pocket(
        "debian-security",
        f"{SUITE}-security",
        [debs[n] for n in SECURITY],
        version="12",
        date=SECURITY_DATE,
        valid_until=datetime.now(UTC) + timedelta(days=3650),
    )
    return [release, updates, security]


def status(packages: list[tuple[str, str, str | None, str]]) -> str:
    return "\n".join(status_paragraph(n, v, source=s, architecture=a) for n, v, s, a in packages)


def image_tar(path: Path, entries: list[object], labels: dict[str, str] | None = None) -> Path:
    path.write_bytes(legacy_save([entries], ImageSpec(labels=labels or {})))  # type: ignore[list-item]
    return path


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    work = tmp_path_factory.mktemp("aptrepo")
    key = make_key(work / "key")
    other = make_key(work / "other", "Someone Else")
    debs = _debs(work / "debs")
    root = work / "www"
    for pocket in pockets(debs):
        publish(root, pocket, key)
    server = serve(root)
    sources = (
        f"deb {server.mirror} {SUITE} main\ndeb {server.mirror} {SUITE}-updates main\n"
        f"deb {server.security_mirror} {SUITE}-security main\n"
    )
    labels = {"org.hardening.base.suite": SUITE, "org.hardening.base.mirror": server.mirror}
    images_dir = work / "images"
    images_dir.mkdir()
    deb822 = (
        f"Types: deb\nURIs: {server.mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n\n"
        f"Types: deb\nURIs: {server.security_mirror}\nSuites: {SUITE}-security\nComponents: main\n"
    )
    images = {
        "labelled": image_tar(
            images_dir / "labelled.tar",
            [file("var/lib/dpkg/status", status(INSTALLED)), file("etc/apt/sources.list", sources)],
            labels,
        ),
        "os-release": image_tar(
            images_dir / "os-release.tar",
            [
                file("var/lib/dpkg/status", status(INSTALLED)),
                file("usr/lib/os-release", os_release()),
                file("etc/apt/sources.list.d/debian.sources", deb822),
            ],
        ),
        "faulty": image_tar(
            images_dir / "faulty.tar",
            [file("var/lib/dpkg/status", status(INSTALLED + FAULTY)), file("etc/apt/sources.list", sources)],
            labels,
        ),
        "no-dpkg": image_tar(images_dir / "no-dpkg.tar", [file("etc/os-release", os_release())], labels),
        "no-suite": image_tar(images_dir / "no-suite.tar", [file("var/lib/dpkg/status", status(INSTALLED))]),
    }
    try:
        yield Scenario(root, server, key, other, debs, images)
    finally:
        server.stop()
        key.close()
        other.close()


@pytest.fixture
def repo(scenario: Scenario) -> Iterator[Scenario]:
    """The shared scenario with the server's misbehaviour reset before and after the test."""
    scenario.behaviour.reset()
    yield scenario
    scenario.behaviour.reset()
