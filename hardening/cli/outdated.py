"""`harden outdated` and `harden advisories`: an image's packages against the Debian archive now."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hardening.cli.app import Context, echo, pass_ctx
from hardening.errors import ArchiveError, UsageError

if TYPE_CHECKING:
    from hardening.archive.image import ImageState, TargetOptions
    from hardening.archive.model import Gap, OutdatedReport, PocketState
    from hardening.archive.outdated import ArchiveAccess
    from hardening.archive.snapshot import ArchiveTarget
    from hardening.base import BaseSpec

RECORD_FILE = "outdated.json"
F = TypeVar("F", bound=Callable[..., Any])


def _archive_options(func: F) -> F:
    options = [
        click.argument("images", nargs=-1),
        click.option("--image", "refs", multiple=True, metavar="REF", help="A local image by reference."),
        click.option(
            "--archive",
            "archives",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="An image saved with `docker save` (a tar file).",
        ),
        click.option("--suite", help="Debian suite (default: the image's labels, else its os-release)."),
        click.option("--mirror", help="Archive mirror URL (default: the image's, else the machine's)."),
        click.option("--security-mirror", help="Mirror URL of <suite>-security (default: as --mirror)."),
        click.option(
            "--keyring",
            "keyrings",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="Keyring trusted to sign InRelease (repeatable; default: debian-archive-keyring).",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(path_type=Path, file_okay=False),
            envvar="HARDENING_ARCHIVE_CACHE",
            help="Where verified indexes and changelogs are kept (default: ~/.cache/hardening/archive).",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=1),
            default=60.0,
            show_default=True,
            help="Seconds allowed per file downloaded from the mirror.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass(frozen=True)
class _Selected:
    name: str
    state: ImageState
    base: BaseSpec | None


@click.command()
@_archive_options
@click.option(
    "--changelogs",
    type=click.Choice(["all", "security", "none"]),
    default="all",
    show_default=True,
    help="Which pending updates have their changelog read for the CVE ids they fix.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write <out>/<image>/outdated.json here (default: a new run directory).",
)
@click.option(
    "--released",
    is_flag=True,
    help="Catalog images by their first release tag (what was shipped), not their latest build.",
)
@click.option(
    "--registry",
    metavar="HOST[:PORT]",
    help="With --released: the release tag at this registry, pulled first (`docker login` credentials).",
)
@click.option(
    "--history-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Record the first sighting of each pending update of catalog images in <dir>/updates/.",
)
@click.option(
    "--pending-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also write <dir>/<image>/pending.json, the record `harden report` reads (as `harden scan` does).",
)
@click.option(
    "--stale-list",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the catalog names of images with pending security updates here, one per line.",
)
@pass_ctx
def outdated(
    ctx: Context,
    images: tuple[str, ...],
    refs: tuple[str, ...],
    archives: tuple[Path, ...],
    suite: str | None,
    mirror: str | None,
    security_mirror: str | None,
    keyrings: tuple[Path, ...],
    cache_dir: Path | None,
    timeout: float,
    changelogs: str,
    out_dir: Path | None,
    released: bool,
    registry: str | None,
    history_dir: Path | None,
    pending_dir: Path | None,
    stale_list: Path | None,
) -> None:
    """Packages of images (catalog names, --image REF, --archive TAR) with newer versions in the archive.

    Compares every installed package with <suite>, <suite>-updates and <suite>-security on the
    mirror (signed InRelease, hash-checked indexes) and names the CVE ids the candidates'
    changelogs fix. Exits 0 whatever is pending; 3 when the archive cannot be read or a file
    fails verification (the record is still written, with the gaps named).
    """
    from hardening.archive.outdated import ChangelogMode, check_image
    from hardening.atomic import write_json, write_text_atomic
    from hardening.scan.service import ref_dir_name

    if registry and not released:
        raise UsageError("--registry goes with --released (the release tags at that registry)")
    options = _target_options(suite, mirror, security_mirror)
    committed = [ctx.catalog.output_dir / "history"] if ctx.catalog_path.is_file() else []
    access = _access(
        keyrings, cache_dir, timeout, history=[*committed, *([history_dir] if history_dir else [])]
    )
    stale: list[str] = []  # catalog images to rebuild: never released, or lacking security updates
    selected = _select(ctx, images, refs, archives, released=released, registry=registry, unreleased=stale)
    if out_dir is None:
        from hardening.run.store import new_run_dir

        out_dir = new_run_dir(ctx.output_dir_outside_catalog()).path
    faults = 0
    for item in selected:
        target = _target(item, options)
        report = check_image(item.state, target, access, changelogs=ChangelogMode(changelogs))
        record = out_dir / ref_dir_name(item.name) / RECORD_FILE
        write_json(record, report.to_json(), sort_keys=False)
        _print_report(item.name, target, report, record)
        faults += len(report.faults)
        if item.base is not None and report.security_pending:
            stale.append(item.name)
        if history_dir is not None and item.base is not None:
            _record_sightings(history_dir, item.name, report, committed)
        if pending_dir is not None:
            _write_pending(pending_dir / ref_dir_name(item.name), item, target, report)
    access.cache.prune()
    if stale_list is not None:
        write_text_atomic(stale_list, "".join(f"{name}\n" for name in stale))
        echo(f"pending security updates: {', '.join(stale) or 'none'} → {stale_list}")
    if faults:
        raise ArchiveError(
            f"{faults} file(s) from the archive could not be read or verified; the CVE lists above "
            "are incomplete where a gap is named",
            hint="run again (a mirror mid-update heals itself); a hash mismatch that persists means "
            "the mirror serves altered files",
        )


@click.command()
@_archive_options
@click.option(
    "--output",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory for the OSV files (one DEBIAN-CVE-….json per CVE).",
)
@click.option(
    "--released", is_flag=True, help="Catalog images by their first release tag, not their latest build."
)
@click.option("--registry", metavar="HOST[:PORT]", help="With --released: pull the release tags from here.")
@click.option(
    "--prune",
    is_flag=True,
    help="Remove the derived records in the output directory that this derivation no longer gives.",
)
@pass_ctx
def advisories(
    ctx: Context,
    images: tuple[str, ...],
    refs: tuple[str, ...],
    archives: tuple[Path, ...],
    suite: str | None,
    mirror: str | None,
    security_mirror: str | None,
    keyrings: tuple[Path, ...],
    cache_dir: Path | None,
    timeout: float,
    output_dir: Path,
    released: bool,
    registry: str | None,
    prune: bool,
) -> None:
    """OSV records (DEBIAN-CVE-…) from the Debian changelogs of every source package in the images.

    The fixed version of a CVE is the first version whose changelog entry names it. `harden db
    build` takes the directory like any other. Changelogs give no severities and no unfixed CVEs.
    """
    from hardening.archive.osv import derive_advisories, stale_derived, write_advisories

    if registry and not released:
        raise UsageError("--registry goes with --released (the release tags at that registry)")
    options = _target_options(suite, mirror, security_mirror)
    access = _access(keyrings, cache_dir, timeout)
    unreleased: list[str] = []
    selected = _select(
        ctx, images, refs, archives, released=released, registry=registry, unreleased=unreleased
    )
    if unreleased:
        raise UsageError(
            f"no release of {', '.join(unreleased)} to read", hint="release it first, or name builds"
        )
    derived = derive_advisories([(item.state, _target(item, options)) for item in selected], access)
    written = write_advisories(derived.records, output_dir)
    if prune and not derived.faults:
        for path in stale_derived(output_dir, {p.name for p in written}):
            path.unlink()
            echo(f"advisories: {path.name} removed: no image's changelog names it now")
    echo(
        f"advisories: {len(written)} records from the changelogs of {derived.sources} source packages "
        f"({', '.join(item.name for item in selected)}) → {output_dir}"
    )
    _print_pockets(derived.pockets)
    for gap in derived.gaps:
        _print_gap(gap)
    access.cache.prune()
    if derived.faults:
        raise ArchiveError(
            f"{len(derived.faults)} changelog(s) could not be read or verified; their records are missing",
            hint="run again; a hash mismatch that persists means the mirror serves altered files",
        )


def _target_options(suite: str | None, mirror: str | None, security_mirror: str | None) -> TargetOptions:
    from hardening.archive.image import TargetOptions

    return TargetOptions(suite=suite, mirror=mirror, security_mirror=security_mirror or None)


def _access(
    keyrings: tuple[Path, ...], cache_dir: Path | None, timeout: float, *, history: list[Path] | None = None
) -> ArchiveAccess:
    from hardening.archive.cache import ArchiveCache, default_cache_dir
    from hardening.archive.fetch import Fetcher
    from hardening.archive.outdated import ArchiveAccess
    from hardening.archive.release import DEFAULT_KEYRING
    from hardening.pending.updates import known_sightings

    cache = ArchiveCache((cache_dir or default_cache_dir()).expanduser())
    return ArchiveAccess(
        Fetcher(timeout=timeout),
        cache,
        tuple(keyrings) or (DEFAULT_KEYRING,),
        # First sightings the repository's update history records: a fresh machine's empty cache
        # must not make an old update look new.
        known_sightings=known_sightings(history or []),
    )


def _write_pending(folder: Path, item: _Selected, target: ArchiveTarget, report: OutdatedReport) -> None:
    from hardening.pending.debian import check_of_report
    from hardening.pending.record import write_pending_record
    from hardening.run.store import PENDING_FILE

    check = check_of_report(item.name, target, item.state, report)
    write_pending_record(
        folder / PENDING_FILE,
        image=item.name,
        ref=item.state.reference,
        image_id=item.state.image_id,
        checks=[check],
    )


def _record_sightings(history_dir: Path, image: str, report: OutdatedReport, committed: list[Path]) -> None:
    from datetime import UTC, datetime

    from hardening.pending.findings import pending_finding
    from hardening.pending.updates import record_seen

    findings = [
        pending_finding(
            u, image=image, tool="debian-archive", checked_at=report.checked_at, layer=None, cve_gap=None
        )
        for u in report.pending
    ]
    added = record_seen(history_dir, image, findings, now=datetime.now(UTC), also_in=committed)
    if added:
        echo(f"  first sightings recorded: {', '.join(f'{e.source} {e.version}' for e in added)}")


def _target(item: _Selected, options: TargetOptions) -> ArchiveTarget:
    from hardening.aptsources import read_sources
    from hardening.archive.image import resolve_target

    return resolve_target(item.state, options, machine_sources=read_sources(), base=item.base)


def _select(
    ctx: Context,
    images: tuple[str, ...],
    refs: tuple[str, ...],
    archives: tuple[Path, ...],
    *,
    released: bool = False,
    registry: str | None = None,
    unreleased: list[str] | None = None,
) -> list[_Selected]:
    from hardening.archive.image import read_image_archive, read_image_ref

    selected = [
        _Selected(path.name, read_image_archive(path, reference=str(path)), None) for path in archives
    ]
    if not refs and not images and archives:
        return selected
    from hardening.engine.client import Engine

    engine = Engine.connect()
    try:
        for ref in refs:
            selected.append(_Selected(ref, read_image_ref(engine, ref), None))
        if images or not refs:
            if released:
                found = _released_images(
                    ctx, images, engine, registry, [] if unreleased is None else unreleased
                )
                selected.extend(found)
            else:
                selected.extend(_catalog_images(ctx, images, engine))
    finally:
        engine.close()
    return selected


def _catalog_images(ctx: Context, images: tuple[str, ...], engine: object) -> list[_Selected]:
    from hardening.archive.image import read_image_ref
    from hardening.engine.client import Engine
    from hardening.run.store import require_build

    assert isinstance(engine, Engine)  # noqa: S101 # nosec B101 - narrows a type for a lazy import
    catalog = ctx.catalog
    found = []
    for spec in catalog.select(images):
        build = require_build(catalog.output_dir, spec.name)  # none: a UsageError, as for scan and check
        # By id: a concurrent build may have moved the candidate tag since the record was written.
        state = read_image_ref(engine, build.image_id, reference=build.candidate_ref)
        found.append(_Selected(spec.name, state, spec.base))
    return found


def _released_images(
    ctx: Context, images: tuple[str, ...], engine: object, registry: str | None, unreleased: list[str]
) -> list[_Selected]:
    """Each image as shipped: its first release tag, at ``registry`` (pulled) or local."""
    from hardening.archive.image import read_image_ref
    from hardening.engine.client import Engine

    assert isinstance(engine, Engine)  # noqa: S101 # nosec B101 - narrows a type for a lazy import
    found = []
    for spec in ctx.catalog.select(images):
        repository = f"{registry.rstrip('/')}/{spec.repository}" if registry else spec.repository
        tag = spec.tags[0]
        if registry and engine.pull(repository, tag) is None:
            # Never released (an image new to the catalog): it needs its first release.
            echo(f"{spec.name}: {repository}:{tag} does not exist: no release yet")
            unreleased.append(spec.name)
            continue
        found.append(_Selected(spec.name, read_image_ref(engine, f"{repository}:{tag}"), spec.base))
    return found


def _print_report(name: str, target: ArchiveTarget, report: OutdatedReport, record: Path) -> None:
    summary = report.to_json()["summary"]
    echo(
        f"{name}: {target.suite} ({target.origin}), {report.compared} packages compared; "
        f"{summary['pending']} pending ({summary['security']} security, {summary['cves']} CVEs), "
        f"{summary['gaps']} gaps → {record}"
    )
    for update in report.pending:
        cves = (
            " ".join(update.cves)
            if update.cves
            else ("no CVE named" if update.cves_known else "CVEs unknown")
        )
        tag = " [security]" if update.security else ""
        echo(
            f"  {update.package} {update.installed_version} → {update.candidate_version} "
            f"{update.suite}{tag}: {cves}"
        )
    for gap in report.gaps:
        _print_gap(gap)
    _print_pockets(report.pockets)


def _print_gap(gap: Gap) -> None:
    echo(f"  gap {gap.kind.value} {gap.subject}: {gap.detail} ({gap.kind.meaning})")


def _print_pockets(pockets: tuple[PocketState, ...]) -> None:
    for pocket in pockets:
        sizes = ", ".join(
            f"{i.path} {i.size / 1e6:.1f} MB{' cached' if i.cached else ''}" for i in pocket.indexes
        )
        echo(f"  archive {pocket.suite} {pocket.date.strftime('%Y-%m-%d %H:%M')} UTC: {sizes}")
