"""The Debian archive as an update source: ``harden outdated``'s comparison, as findings.

For one saved image: its dpkg status and the suite and mirrors its labels (else its os-release
and apt sources, else the catalog's base and this machine's apt configuration) name, compared
with the signed ``<suite>``, ``<suite>-updates`` and ``<suite>-security`` of the mirror now
(``hardening.archive``). Changelogs are read for the security updates only: their CVE ids are
what a reviewer wants, and the other updates would cost a download each for nothing the gate
uses.

Every fault of the archive — unreachable, slow, a signature or hash that does not verify — and
an image whose packages cannot be compared become a ``HARDEN-REBUILD-UNKNOWN`` finding: the
check is then ``unavailable``, never empty.

A result is kept per (image id, the three ``InRelease`` files read): a run that builds the same
image again while the archive has not moved reads three small signed files and nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from hardening import __version__
from hardening.aptsources import AptSource, read_sources
from hardening.archive.cache import ArchiveCache, default_cache_dir
from hardening.archive.fetch import Fetcher
from hardening.archive.image import ImageState, TargetOptions, read_image_archive, resolve_target
from hardening.archive.model import Gap, GapKind, OutdatedReport, PendingUpdate
from hardening.archive.outdated import ArchiveAccess, ChangelogMode, check_image
from hardening.archive.release import DEFAULT_KEYRING, fetch_release
from hardening.archive.snapshot import ArchiveTarget, Pocket
from hardening.atomic import write_json
from hardening.base import BaseSpec
from hardening.errors import ArchiveError, ArchiveTrustError, HardeningError, UsageError
from hardening.findings import Finding, ToolInfo
from hardening.inspect.dpkg import DpkgPackage
from hardening.pending.findings import gap_finding, pending_finding, unavailable_finding
from hardening.pending.interface import CheckState, PendingCheck, UpdateSource
from hardening.scan.interface import ScanTarget

NAME = "debian-archive"
TOOL = ToolInfo(NAME, __version__, "https://github.com/hardening-dev/hardening/blob/main/docs/archive.md")
# Gaps that leave "is anything pending?" unanswered for a package; the others only leave its CVEs.
UNCOMPARED = frozenset({GapKind.NOT_IN_ARCHIVE, GapKind.BAD_VERSION})
_RESULTS = "results"
_IMAGES = "images"
_RESULT_VERSION = 1
_KEEP_RESULTS_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class ArchiveSettings:
    cache_dir: Path | None = None  # None: $HARDENING_ARCHIVE_CACHE, else ~/.cache/hardening/archive
    keyrings: tuple[Path, ...] = (DEFAULT_KEYRING,)
    timeout: float = 60.0
    # First sightings recorded elsewhere (the committed update history), by sighting key.
    known_sightings: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None  # tests pin the clock (Valid-Until, first sightings)
    options: TargetOptions = field(default_factory=TargetOptions)


class DebianArchiveSource(UpdateSource):
    def __init__(self, settings: ArchiveSettings | None = None) -> None:
        self.settings = settings or ArchiveSettings()

    @property
    def name(self) -> str:
        return NAME

    def prepare(self) -> ToolInfo:
        if shutil.which("gpgv") is None:
            raise ArchiveError(
                "gpgv is not installed: the archive's signed Release files cannot be checked",
                hint="install gpgv (apt-get install gpgv), or run with --no-pending",
            )
        missing = [str(k) for k in self.settings.keyrings if not k.is_file()]
        if missing:
            raise ArchiveError(
                f"the archive keyring {', '.join(missing)} does not exist",
                hint="install debian-archive-keyring (apt-get install debian-archive-keyring), "
                "or run with --no-pending",
            )
        return TOOL

    def lookup(self, target: ScanTarget, base: BaseSpec | None) -> PendingCheck | None:
        access = self._access()
        state = _load_state(access.cache, target.image_id)
        return None if state is None else self._compare(target, base, state, access, stored_only=True)

    def check(self, target: ScanTarget, base: BaseSpec | None) -> PendingCheck:
        access = self._access()
        state = _load_state(access.cache, target.image_id)
        if state is None:
            state = read_image_archive(target.tar_path, reference=target.ref)
            _store_state(access.cache, target.image_id, state)
        checked = self._compare(target, base, state, access, stored_only=False)
        assert checked is not None  # noqa: S101 # nosec B101 - stored_only=False always answers
        return checked

    def _access(self) -> ArchiveAccess:
        settings = self.settings
        cache = ArchiveCache((settings.cache_dir or default_cache_dir()).expanduser())
        return ArchiveAccess(
            Fetcher(timeout=settings.timeout),
            cache,
            settings.keyrings,
            now=settings.now or datetime.now(UTC),
            known_sightings=settings.known_sightings,
        )

    def _compare(
        self,
        target: ScanTarget,
        base: BaseSpec | None,
        state: ImageState,
        access: ArchiveAccess,
        *,
        stored_only: bool,
    ) -> PendingCheck | None:
        now = access.now or datetime.now(UTC)
        try:
            where = resolve_target(state, self.settings.options, machine_sources=read_sources(), base=base)
        except UsageError as exc:
            return _unavailable(target, now, exc.message, "not-comparable", "its packages cannot be compared")
        try:
            key = _result_key(target.image_id, where, access)
            stored = _load_result(access.cache, key)
            if stored is not None:
                return _check_of(target.image, where, now, *stored, cached=True)
            if stored_only:
                return None
            report = check_image(state, where, access, changelogs=ChangelogMode.SECURITY)
        except ArchiveTrustError as exc:
            return _unavailable(target, now, exc.message, "archive-untrusted", "the archive did not verify")
        except ArchiveError as exc:
            return _unavailable(
                target, now, exc.message, "archive-unreachable", "the archive could not be read"
            )
        layers = {
            u.package: state.package_layers[u.package]
            for u in report.pending
            if u.package in state.package_layers
        }
        installed = _installed_sources(state)
        _store_result(access.cache, key, report, layers, installed)
        return _check_of(
            target.image,
            where,
            now,
            report.pending,
            report.gaps,
            layers,
            installed,
            report.to_json(),
            cached=False,
        )


def check_of_report(
    image: str, where: ArchiveTarget, state: ImageState, report: OutdatedReport
) -> PendingCheck:
    """What `harden outdated` found, as the check `harden scan` would have written for the image."""
    layers = {
        u.package: state.package_layers[u.package]
        for u in report.pending
        if u.package in state.package_layers
    }
    return _check_of(
        image,
        where,
        report.checked_at,
        report.pending,
        report.gaps,
        layers,
        _installed_sources(state),
        report.to_json(),
        cached=False,
    )


def _check_of(
    image: str,
    where: ArchiveTarget,
    now: datetime,
    pending: Sequence[PendingUpdate],
    gaps: Sequence[Gap],
    layers: Mapping[str, str],
    installed: Mapping[str, str],
    record: Mapping[str, Any],
    *,
    cached: bool,
) -> PendingCheck:
    cve_gaps = {g.subject: g for g in gaps if g.kind not in UNCOMPARED}
    findings: list[Finding] = []
    for update in pending:
        gap = cve_gaps.get(f"{update.source} {update.candidate_source_version}")
        findings.append(
            pending_finding(
                update,
                image=image,
                tool=NAME,
                checked_at=now,
                layer=layers.get(update.package),
                cve_gap=gap if not update.cves_known or not update.cves else None,
            )
        )
    for gap in gaps:
        if gap.kind in UNCOMPARED:
            package, version = _subject(gap.subject)
            findings.append(
                gap_finding(gap, image=image, tool=NAME, checked_at=now, package=package, version=version)
            )
    return PendingCheck(
        source=NAME,
        tool=TOOL,
        state=CheckState.PARTIAL if gaps else CheckState.COMPLETE,
        checked_at=now,
        findings=tuple(findings),
        suite=where.suite,
        installed=installed,
        record=record,
        cached=cached,
    )


def _unavailable(target: ScanTarget, now: datetime, reason: str, kind: str, what: str) -> PendingCheck:
    finding = unavailable_finding(reason, kind, image=target.image, tool=NAME, checked_at=now, what=what)
    return PendingCheck(
        source=NAME,
        tool=TOOL,
        state=CheckState.UNAVAILABLE,
        checked_at=now,
        findings=(finding,),
        unavailable=reason,
    )


def _subject(subject: str) -> tuple[str | None, str | None]:
    """``name:arch version`` (how the comparison names a package gap) → name, version."""
    name, _, version = subject.partition(" ")
    return (name.partition(":")[0] or None), (version or None)


def _installed_sources(state: ImageState) -> dict[str, str]:
    found: dict[str, str] = {}
    for package in state.packages:
        current = found.get(package.source_name)
        try:
            newer = current is None or Version(package.source_version) > Version(current)
        except ValueError:
            newer = current is None
        if newer:
            found[package.source_name] = package.source_version
    return dict(sorted(found.items()))


# --- what the image says, by image id ----------------------------------------------------------
# Reading a saved image takes seconds (every layer is walked); what the comparison needs of it
# is a few kilobytes, and an image id names its content exactly.


def _state_path(cache: ArchiveCache, image_id: str) -> Path | None:
    digest = image_id.removeprefix("sha256:")
    if cache.root is None or not digest.isalnum():
        return None
    return cache.root / _IMAGES / f"{digest}.json"


def _load_state(cache: ArchiveCache, image_id: str) -> ImageState | None:
    path = _state_path(cache, image_id)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("version") != _RESULT_VERSION or doc.get("image_id") != image_id:
            return None
        state = ImageState(
            reference=str(doc["reference"]),
            image_id=image_id,
            architecture=str(doc["architecture"]),
            labels={str(k): str(v) for k, v in doc["labels"].items()},
            has_dpkg_status=doc["has_dpkg_status"] is True,
            packages=tuple(DpkgPackage(**item) for item in doc["packages"]),
            os_release={str(k): str(v) for k, v in doc["os_release"].items()},
            apt_sources=tuple(
                AptSource(str(a["uri"]), tuple(a["suites"]), tuple(a["components"]))
                for a in doc["apt_sources"]
            ),
            package_layers={str(k): str(v) for k, v in doc["package_layers"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    with contextlib.suppress(OSError):
        path.touch()
    return state


def _store_state(cache: ArchiveCache, image_id: str, state: ImageState) -> None:
    path = _state_path(cache, image_id)
    if path is None or state.image_id != image_id:
        return  # a tar that is not the image it claims to be is never remembered under that id
    doc = {
        "version": _RESULT_VERSION,
        "image_id": image_id,
        "reference": state.reference,
        "architecture": state.architecture,
        "labels": dict(state.labels),
        "has_dpkg_status": state.has_dpkg_status,
        "packages": [dataclasses.asdict(p) for p in state.packages],
        "os_release": dict(state.os_release),
        "apt_sources": [dataclasses.asdict(a) for a in state.apt_sources],
        "package_layers": dict(state.package_layers),
    }
    with contextlib.suppress(HardeningError):
        write_json(path, doc, sort_keys=True)
        _prune(path.parent)


# --- the result cache ------------------------------------------------------------------------


def _result_key(image_id: str, where: ArchiveTarget, access: ArchiveAccess) -> str:
    """The image and exactly the archive state it was compared with (its signed Release files)."""
    parts = [str(_RESULT_VERSION), image_id, where.suite, *where.components, *where.architectures]
    for pocket in Pocket:
        release = fetch_release(
            access.fetcher,
            where.mirror_for(pocket),
            pocket.suite(where.suite),
            access.keyrings,
            now=access.now,
        )
        parts.append(f"{release.mirror} {release.suite} {release.sha256}")
    parts.extend(f"{k}={v}" for k, v in sorted(access.known_sightings.items()))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _result_path(cache: ArchiveCache, key: str) -> Path | None:
    return cache.root / _RESULTS / f"{key}.json" if cache.root is not None else None


_Stored = tuple[tuple[PendingUpdate, ...], tuple[Gap, ...], dict[str, str], dict[str, str], dict[str, Any]]


def _load_result(cache: ArchiveCache, key: str) -> _Stored | None:
    path = _result_path(cache, key)
    if path is None:
        return None
    try:
        doc = json.loads(path.read_bytes())
        pending = tuple(PendingUpdate(**{**item, "cves": tuple(item["cves"])}) for item in doc["pending"])
        gaps = tuple(Gap(GapKind(g["kind"]), g["subject"], g["detail"]) for g in doc["gaps"])
        layers = {str(k): str(v) for k, v in doc["layers"].items()}
        installed = {str(k): str(v) for k, v in doc["installed"].items()}
        record = doc["record"]
        if doc.get("version") != _RESULT_VERSION or not isinstance(record, dict):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, or not what this version writes: compare again
    with contextlib.suppress(OSError):
        path.touch()
    return pending, gaps, layers, installed, record


def _store_result(
    cache: ArchiveCache,
    key: str,
    report: OutdatedReport,
    layers: Mapping[str, str],
    installed: Mapping[str, str],
) -> None:
    path = _result_path(cache, key)
    if path is None or report.faults:
        return  # a fault may heal on the next try: never keep it
    doc = {
        "version": _RESULT_VERSION,
        "pending": [u.to_json() for u in report.pending],
        "gaps": [{"kind": g.kind.value, "subject": g.subject, "detail": g.detail} for g in report.gaps],
        "layers": dict(layers),
        "installed": dict(installed),
        "record": report.to_json(),
    }
    # Only an optimisation: a cache that cannot be written costs the next run time, nothing else.
    with contextlib.suppress(HardeningError):
        write_json(path, doc, sort_keys=True)
        _prune(path.parent)


def _prune(folder: Path) -> None:
    moment = time.time()
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            with contextlib.suppress(OSError):
                if moment - path.stat().st_mtime > _KEEP_RESULTS_SECONDS:
                    path.unlink()
