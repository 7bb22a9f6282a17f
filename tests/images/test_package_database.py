"""The package database of every catalog image tells the truth, as scanners read it.

Scanners list an image's Debian packages from /var/lib/dpkg/status and attribute files through
/var/lib/dpkg/info/*.list. So a package whose files were deleted must not stay listed, and the
programs and libraries in the image must belong to a listed package. Files dpkg was told not to
unpack (path-exclude in /etc/dpkg/dpkg.cfg.d: documentation, and JIT's bitcode when JIT is off)
are listed but absent by design, exactly as dpkg itself handles them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pytest

from hardening.catalog import load_catalog
from tests.conftest import REPO_ROOT
from tests.images.conftest import CatalogImage
from tests.images.imagefs import ImageEntry, save_and_index

pytestmark = pytest.mark.docker

SPECS = {spec.name: spec for spec in load_catalog(REPO_ROOT / "hardening.toml").images}
DPKG = "/var/lib/dpkg"
# Files that maintainer scripts and triggers generate from listed files: byte-compiled Python
# (py3compile in python3.x's postinst) and glibc's gconv module cache (libc-bin's trigger).
GENERATED = (
    re.compile(r".*/__pycache__/[^/]+\.pyc"),
    re.compile(r"/usr/lib/[^/]+/gconv/gconv-modules\.cache"),
)
# apt's state directories: every install in a template ends by emptying them (hadolint DL3009), and
# apt-get update makes them again.
APT_STATE = ("/var/lib/apt/lists/", "/var/cache/apt/")
# Only what JIT (LLVM) and postgresql-common's perl scripts need; none of it may stay listed.
PURGED = re.compile(
    r"perl|perl-modules-[0-9.]+|libperl[0-9.]+|lib[a-z0-9.+-]*-perl|libllvm[0-9]+|libz3-[0-9]+"
)


def _keep(path: str) -> bool:
    return (
        path.startswith(f"{DPKG}/")
        and (path == f"{DPKG}/status" or path.endswith(".list") or path.startswith(f"{DPKG}/alternatives/"))
    ) or path.startswith("/etc/dpkg/dpkg.cfg.d/")


@dataclass(frozen=True)
class PackageDatabase:
    files: Mapping[str, ImageEntry]
    installed: frozenset[str]  # package names with Status "install ok installed"
    owned: Mapping[str, str]  # path (resolved through directory symlinks) → package
    filters: tuple[tuple[bool, str], ...]  # (include?, glob) in dpkg's order; the last match wins
    alternatives: frozenset[str]  # links update-alternatives manages

    def text(self, path: str) -> str:
        content = self.files[path].content
        assert content is not None, path
        return content.decode()

    def excluded(self, path: str) -> bool:
        verdict = False
        for include, glob in self.filters:
            if fnmatchcase(path, glob):
                verdict = not include
        return verdict


def _resolve(files: Mapping[str, ImageEntry], path: str) -> str:
    """``path`` with symlinked parent directories followed (/bin → /usr/bin on merged-/usr)."""
    parts = [part for part in path.split("/") if part]
    resolved = "/"
    for index, part in enumerate(parts):
        candidate = posixpath.join(resolved, part)
        entry = files.get(candidate)
        last = index == len(parts) - 1
        hops = 0
        while entry is not None and entry.kind == "link" and entry.link_target and not last and hops < 16:
            target = entry.link_target
            candidate = posixpath.normpath(
                target if target.startswith("/") else posixpath.join(posixpath.dirname(candidate), target)
            )
            entry = files.get(candidate)
            hops += 1
        resolved = candidate
    return resolved


def _read(files: dict[str, ImageEntry]) -> PackageDatabase:
    def text(path: str) -> str:
        content = files[path].content
        assert content is not None, path
        return content.decode()

    installed = set()
    for stanza in text(f"{DPKG}/status").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.MULTILINE))
        if fields.get("Status") == "install ok installed":
            installed.add(fields["Package"])
    owned: dict[str, str] = {}
    for path in files:
        if path.startswith(f"{DPKG}/info/") and path.endswith(".list"):
            package = posixpath.basename(path).removesuffix(".list").split(":")[0]
            for line in text(path).splitlines():
                if line and line != "/.":
                    owned.setdefault(_resolve(files, line), package)
    filters = []
    for path in sorted(p for p in files if p.startswith("/etc/dpkg/dpkg.cfg.d/")):
        for line in text(path).splitlines():
            found = re.fullmatch(r"path-(exclude|include)[= ](\S+)", line.strip())
            if found:
                filters.append((found.group(1) == "include", found.group(2)))
    alternatives = set()
    for path in files:
        if path.startswith(f"{DPKG}/alternatives/"):
            lines = text(path).splitlines()
            # mode, the master link, then (name, link) pairs of slaves until an empty line
            alternatives.add(_resolve(files, lines[1]))
            slaves = lines[2 : lines.index("", 2)] if "" in lines[2:] else []
            alternatives.update(_resolve(files, link) for link in slaves[1::2])
    return PackageDatabase(files, frozenset(installed), owned, tuple(filters), frozenset(alternatives))


@pytest.fixture(scope="module")
def databases(
    catalog_images: Mapping[str, CatalogImage], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], PackageDatabase]:
    """Each image's package database, read once from its saved tarball."""
    cache: dict[str, PackageDatabase] = {}

    def database_of(name: str) -> PackageDatabase:
        if name not in cache:
            directory = tmp_path_factory.mktemp("packages")
            cache[name] = _read(save_and_index(catalog_images[name].ref, directory, keep=_keep))
        return cache[name]

    return database_of


@pytest.fixture(scope="module", params=sorted(SPECS))
def database(request: pytest.FixtureRequest, databases: Callable[[str], PackageDatabase]) -> PackageDatabase:
    return databases(request.param)


def test_every_listed_file_is_in_the_image_unless_dpkg_was_told_to_skip_it(database: PackageDatabase) -> None:
    missing = sorted(
        f"{package}: {path}"
        for path, package in database.owned.items()
        if package in database.installed
        and path not in database.files
        and not database.excluded(path)
        and not path.startswith(APT_STATE)
    )
    assert missing == []


def test_every_program_and_library_belongs_to_a_listed_package(database: PackageDatabase) -> None:
    unlisted = sorted(
        path
        for path, entry in database.files.items()
        if path.startswith("/usr/")
        and not path.startswith("/usr/local/")
        and entry.kind in {"file", "link"}
        and path not in database.owned
        and path not in database.alternatives
        and not any(pattern.fullmatch(path) for pattern in GENERATED)
    )
    assert unlisted == []


@pytest.mark.parametrize(
    "name", sorted(n for n, s in SPECS.items() if s.template.parent.name == "postgres-secure")
)
def test_postgres_keeps_neither_jit_nor_perl(name: str, databases: Callable[[str], PackageDatabase]) -> None:
    spec, database = SPECS[name], databases(name)
    assert spec.variables.get("jit", False) is False, "these expectations are for the default, jit = false"
    assert sorted(p for p in database.installed if PURGED.fullmatch(p)) == []
    major = spec.variables["postgres_major"]
    assert {f"postgresql-{major}", f"postgresql-client-{major}", "postgresql-common"} <= database.installed
    leftovers = [
        path
        for path in database.files
        if re.search(r"/(libLLVM[^/]*\.so[^/]*|libz3\.so[^/]*|llvmjit[^/]*\.so|bitcode)$", path)
        or path.startswith(("/usr/share/perl/", "/usr/lib/x86_64-linux-gnu/perl/"))
    ]
    assert leftovers == []
