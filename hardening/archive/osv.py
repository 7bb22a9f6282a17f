"""OSV records derived from Debian changelogs, for ``harden db build``.

For every source package installed in the given images, the changelog of its newest version in
the suite's pockets is read; each CVE id it names becomes (or joins) a record ``DEBIAN-CVE-…``
whose fixed version, per source package and Debian release (``Debian:12``, ``Debian:13``), is
the lowest version whose entry names the CVE — the same rule the Debian security tracker's
records follow for fixed issues.

What a changelog cannot tell, and the tracker can: CVEs not fixed yet (no entry names them),
CVEs that never affected a version (``not-affected``), severities and urgencies, and whether a
mention is a fix at all (an entry may name a CVE to say it does *not* apply). So these records
complete the fixed side for our packages; they do not replace the tracker's view of open ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from hardening.archive.changelog import ChangelogGap, read_changelog
from hardening.archive.image import ImageState
from hardening.archive.model import Gap, PocketState
from hardening.archive.outdated import ArchiveAccess, pocket_states
from hardening.archive.snapshot import ArchiveTarget, open_snapshot
from hardening.atomic import write_json
from hardening.errors import ArchiveError

OSV_SCHEMA_VERSION = "1.6.0"
ID_PREFIX = "DEBIAN-CVE-"


@dataclass(frozen=True)
class _Fix:
    ecosystem: str
    source: str
    fixed: str
    changelog_version: str
    suite: str


@dataclass(frozen=True)
class DerivedAdvisories:
    records: tuple[dict[str, Any], ...]
    sources: int
    pockets: tuple[PocketState, ...]
    gaps: tuple[Gap, ...]

    @property
    def faults(self) -> tuple[Gap, ...]:
        return tuple(g for g in self.gaps if g.kind.fault)


def derive_advisories(
    images: Sequence[tuple[ImageState, ArchiveTarget]], access: ArchiveAccess
) -> DerivedAdvisories:
    """OSV records for every CVE the changelogs of the images' source packages name."""
    groups: dict[tuple[str, str, str], list[ImageState]] = {}
    targets: dict[tuple[str, str, str], ArchiveTarget] = {}
    for state, target in images:
        key = (target.suite, target.mirror, target.security_mirror)
        groups.setdefault(key, []).append(state)
        targets.setdefault(key, target)
    fixes: dict[str, list[_Fix]] = {}
    pockets: list[PocketState] = []
    gaps: list[Gap] = []
    newest_date: datetime | None = None
    read = 0
    for key, states in groups.items():
        target = targets[key]
        sources = {p.source_name for s in states for p in s.packages}
        snapshot = open_snapshot(
            target,
            access.fetcher,
            access.cache,
            access.keyrings,
            packages={p.name for s in states for p in s.packages},
            sources=sources,
            now=access.now,
        )
        major = snapshot.release.major
        if major is None:
            raise ArchiveError(
                f"{target.suite} has no release number in its Release file (testing or unstable?)",
                hint="OSV's Debian ecosystems are per release (Debian:12, Debian:13); use a released suite",
            )
        pockets.extend(pocket_states(snapshot))
        for view in snapshot.pockets:
            if newest_date is None or view.release.date > newest_date:
                newest_date = view.release.date
        newest = snapshot.newest_source_versions()
        for source in sorted(sources):
            version = newest.get(source)
            if version is None:
                continue  # not in the archive: nothing to read (outdated names it as a gap)
            try:
                log = read_changelog(
                    access.fetcher, access.cache, source, version, snapshot.binaries(source, version)
                )
            except ChangelogGap as gap:
                gaps.append(gap.gap)
                continue
            read += 1
            for cve, fixed in log.first_fixed().items():
                fixes.setdefault(cve, []).append(
                    _Fix(f"Debian:{major}", source, fixed, log.version, target.suite)
                )
    modified = (newest_date or access.now or datetime.now(UTC)).astimezone(UTC)
    records = tuple(_record(cve, entries, modified) for cve, entries in sorted(fixes.items(), key=_by_cve))
    return DerivedAdvisories(records, read, tuple(pockets), tuple(gaps))


def write_advisories(records: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One ``<id>.json`` per record in ``out_dir`` (written atomically); returns the paths."""
    written = []
    for record in records:
        path = out_dir / f"{record['id']}.json"
        write_json(path, record, sort_keys=False, ensure_ascii=False)
        written.append(path)
    return written


def stale_derived(out_dir: Path, keep: set[str]) -> list[Path]:
    """Records in ``out_dir`` derived by this module (``derived_from``) whose file is not in ``keep``.

    A hand-written record in the same directory is never one of them.
    """
    found = []
    for path in sorted(out_dir.glob(f"{ID_PREFIX}*.json")):
        if path.name in keep:
            continue
        try:
            record = json.loads(path.read_bytes())
            affected = record.get("affected", []) if isinstance(record, dict) else []
            derived = bool(affected) and all(
                (a.get("database_specific") or {}).get("derived_from") == "debian-changelog" for a in affected
            )
        except (OSError, ValueError, AttributeError):
            continue
        if derived:
            found.append(path)
    return found


def _record(cve: str, entries: list[_Fix], modified: datetime) -> dict[str, Any]:
    # One affected entry per (release, source package); the lowest fix wins if images disagree.
    lowest: dict[tuple[str, str], _Fix] = {}
    for fix in entries:
        key = (fix.ecosystem, fix.source)
        if key not in lowest or Version(fix.fixed) < Version(lowest[key].fixed):
            lowest[key] = fix
    chosen = [lowest[key] for key in sorted(lowest)]
    named = ", ".join(f"{f.source} {f.fixed} ({f.ecosystem})" for f in chosen)
    return {
        "schema_version": OSV_SCHEMA_VERSION,
        "id": f"{ID_PREFIX}{cve.removeprefix('CVE-')}",
        "modified": modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "upstream": [cve],
        "summary": f"{cve}: fixed in {named}",
        "details": (
            f"Derived from the Debian changelogs of the packages named: the fixed version is the "
            f"first upload whose changelog entry names {cve}. Changelogs give no severity and say "
            "nothing about versions still unfixed."
        ),
        "affected": [
            {
                "package": {"ecosystem": f.ecosystem, "name": f.source},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": f.fixed}]}],
                "database_specific": {
                    "derived_from": "debian-changelog",
                    "suite": f.suite,
                    "changelog_version": f.changelog_version,
                },
            }
            for f in chosen
        ],
    }


def _by_cve(item: tuple[str, list[_Fix]]) -> tuple[int, int]:
    _, year, number = item[0].split("-")
    return int(year), int(number)
