"""The Debian changelog of a candidate version, read from its ``.deb`` without installing it.

One binary package per source is enough: every binary of a source ships the same
``changelog.Debian.gz`` (or ``changelog.gz`` for native packages), unless its documentation
directory is a link to a sibling's. The smallest binaries are tried first. The ``.deb`` must
match the SHA-256 of the signed index; python-debian reads the archive member and parses the
changelog. The CVE ids an entry names are what that upload says it fixes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from debian.changelog import Changelog, ChangelogParseError
from debian.debfile import DebError, DebFile
from debian.debian_support import Version

from hardening.archive.cache import ArchiveCache, CachedChangelog
from hardening.archive.fetch import Fetcher
from hardening.archive.index import Candidate
from hardening.archive.model import Gap, GapKind
from hardening.errors import ArchiveError, ArchiveTrustError

CVE_ID = re.compile(r"\bCVE-\d{4}-\d{4,}\b")
# A binary whose docs are a link to a sibling's has no changelog of its own; a few tries find
# one that does without downloading a large package.
MAX_TRIES = 4
_NAMES = ("usr/share/doc/{}/changelog.Debian.gz", "usr/share/doc/{}/changelog.gz")


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    date: str
    cves: tuple[str, ...]


@dataclass(frozen=True)
class SourceChangelog:
    """A source package's changelog, newest entry first, and the ``.deb`` it was read from."""

    source: str
    version: str
    entries: tuple[ChangelogEntry, ...]
    package: str
    deb_sha256: str

    @property
    def oldest(self) -> str:
        return self.entries[-1].version

    @property
    def uploaded(self) -> str:
        return self.entries[0].date

    def cves_between(self, installed: str, candidate: str) -> tuple[str, ...]:
        """CVE ids named by the entries after ``installed`` up to and including ``candidate``.

        By position in the changelog, not by version order: a stable update carries the entries
        of the unstable upload it was made from (``2.9.0-1~deb13u1`` above ``2.9.0-1``), which sort
        above it yet are part of it.
        """
        low, high = Version(installed), Version(candidate)
        found: dict[str, None] = {}
        started = False
        for entry in self.entries:
            version = Version(entry.version)
            started = started or version <= high
            if not started:
                continue
            if version <= low:
                break
            found.update(dict.fromkeys(entry.cves))
        return tuple(sorted(found, key=_cve_key))

    def reaches(self, installed: str) -> bool:
        """Whether the changelog goes back to ``installed`` (so nothing after it is missing)."""
        return Version(self.oldest) <= Version(installed)

    def first_fixed(self) -> dict[str, str]:
        """Each CVE id → the lowest version that carries its fix.

        An entry's fix is in every version above it in the changelog; the lowest of those is
        usually the entry itself, but a stable update made from an unstable upload
        (``2.9.0-1~deb13u1`` above ``2.9.0-1``) sorts below the entry that names the CVE.
        """
        first: dict[str, str] = {}
        carrier: str | None = None  # the lowest version from the top down to this entry
        for entry in self.entries:
            if carrier is None or Version(entry.version) < Version(carrier):
                carrier = entry.version
            for cve in entry.cves:
                if cve not in first or Version(carrier) < Version(first[cve]):
                    first[cve] = carrier
        return dict(sorted(first.items(), key=lambda item: _cve_key(item[0])))


class ChangelogGap(Exception):
    """The changelog of a source could not be established; carries the named gap."""

    def __init__(self, gap: Gap) -> None:
        super().__init__(gap.detail)
        self.gap = gap


def read_changelog(
    fetcher: Fetcher, cache: ArchiveCache, source: str, source_version: str, binaries: Sequence[Candidate]
) -> SourceChangelog:
    """The changelog of ``source`` at ``source_version`` from one of ``binaries``; raise ``ChangelogGap``."""
    subject = f"{source} {source_version}"
    if not binaries:
        raise ChangelogGap(Gap(GapKind.NO_CHANGELOG, subject, "no binary package of it is in the indexes"))
    tried: list[str] = []
    queue = list(binaries)
    while queue and len(tried) < MAX_TRIES:
        binary = queue.pop(0)
        entry = _changelog_bytes(fetcher, cache, binary, subject)
        tried.append(binary.package)
        if entry.data is None:
            # Documentation linked to a sibling package's (dh_installdocs --link-doc): that
            # sibling, built from the same source, carries the changelog.
            linked = [b for b in queue if b.package == entry.docs_link]
            queue = linked + [b for b in queue if b.package != entry.docs_link]
            continue
        changelog = parse_changelog(entry.data, source, binary, subject)
        if changelog.version != source_version:
            raise ChangelogGap(
                Gap(
                    GapKind.CHANGELOG_MISMATCH,
                    subject,
                    f"the changelog in {binary.package}_{binary.version} starts at {changelog.version}",
                )
            )
        return changelog
    raise ChangelogGap(Gap(GapKind.NO_CHANGELOG, subject, f"no changelog in the .deb of {', '.join(tried)}"))


def parse_changelog(raw: bytes, source: str, binary: Candidate, subject: str) -> SourceChangelog:
    """Unpack and parse ``changelog.Debian.gz`` bytes; ``ChangelogGap`` when cut short or malformed."""
    where = f"{binary.package}_{binary.version}"
    try:
        text = gzip.decompress(raw).decode("utf-8", "replace")
    except (EOFError, OSError, zlib.error) as exc:
        raise ChangelogGap(Gap(GapKind.CHANGELOG_TRUNCATED, subject, f"{where}: {exc}")) from exc
    with _parser_warnings() as warnings:
        try:
            parsed = Changelog(text, strict=False)
        except (ChangelogParseError, ValueError) as exc:
            raise ChangelogGap(Gap(GapKind.CHANGELOG_TRUNCATED, subject, f"{where}: {exc}")) from exc
    entries: list[ChangelogEntry] = []
    for block in parsed:
        # A block without its trailer line ("-- name <mail>  date") was cut off mid-entry.
        if block.version is None or not block.date or not block.author:
            said = f" ({'; '.join(warnings)})" if warnings else ""
            raise ChangelogGap(
                Gap(
                    GapKind.CHANGELOG_TRUNCATED,
                    subject,
                    f"{where}: the entry {block.version or '(unnamed)'} has no trailer line{said}",
                )
            )
        try:
            Version(str(block.version))
        except ValueError as exc:
            raise ChangelogGap(Gap(GapKind.CHANGELOG_TRUNCATED, subject, f"{where}: {exc}")) from exc
        cves = tuple(dict.fromkeys(CVE_ID.findall("\n".join(block.changes()))))
        entries.append(ChangelogEntry(str(block.version), block.date, cves))
    if not entries:
        raise ChangelogGap(Gap(GapKind.CHANGELOG_TRUNCATED, subject, f"{where}: the changelog is empty"))
    return SourceChangelog(source, entries[0].version, tuple(entries), binary.package, binary.sha256)


def _changelog_bytes(
    fetcher: Fetcher, cache: ArchiveCache, binary: Candidate, subject: str
) -> CachedChangelog:
    cached = cache.changelog(binary.sha256)
    if cached is not None:
        return cached
    try:
        data = fetcher.get_verified(binary.url, sha256=binary.sha256, size=binary.size, what="the .deb")
    except ArchiveTrustError as exc:
        raise ChangelogGap(Gap(GapKind.DEB_HASH_MISMATCH, subject, exc.message)) from exc
    except ArchiveError as exc:
        raise ChangelogGap(Gap(GapKind.DEB_UNAVAILABLE, subject, exc.message)) from exc
    entry = _member(data, binary, subject)
    cache.put_changelog(binary.sha256, entry)
    return entry


def _member(data: bytes, binary: Candidate, subject: str) -> CachedChangelog:
    try:
        deb = DebFile(fileobj=io.BytesIO(data))
    except (DebError, OSError, EOFError, KeyError, ValueError, tarfile.TarError) as exc:
        raise ChangelogGap(
            Gap(GapKind.DEB_UNREADABLE, subject, f"{binary.package}_{binary.version}.deb: {exc}")
        ) from exc
    with deb:
        try:
            for pattern in _NAMES:
                try:
                    with deb.data.get_file(pattern.format(binary.package), follow_symlinks=True) as handle:
                        return CachedChangelog(handle.read())
                except DebError:
                    continue
            return CachedChangelog(None, _docs_link(deb, binary.package))
        except (OSError, EOFError, KeyError, ValueError, tarfile.TarError) as exc:
            raise ChangelogGap(
                Gap(GapKind.DEB_UNREADABLE, subject, f"{binary.package}_{binary.version}.deb: {exc}")
            ) from exc


def _docs_link(deb: DebFile, package: str) -> str | None:
    """The package ``/usr/share/doc/<package>`` links to, when it is a symlink."""
    tar = deb.data.tgz()
    for name in (f"./usr/share/doc/{package}", f"usr/share/doc/{package}"):
        try:
            member = tar.getmember(name)
        except KeyError:
            continue
        if member.issym():
            return member.linkname.rstrip("/").rsplit("/", 1)[-1] or None
    return None


@contextlib.contextmanager
def _parser_warnings() -> Iterator[list[str]]:
    """Collect what python-debian's lenient parser logs, instead of letting it reach stderr."""
    logger = logging.getLogger("debian.changelog")
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect()
    previous = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = previous


def _cve_key(cve: str) -> tuple[int, int]:
    _, year, number = cve.split("-")
    return int(year), int(number)
