"""The scan stage of the pipeline: the image that was built, saved by the engine, scanned.

We scan the `docker save` tarball of the candidate image, never the repository's files: what
ships is the image. A ``scan.json`` appears only after a scan succeeded, so an absent file means
"unknown", never "clean".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.atomic import write_json
from hardening.base import BaseSpec
from hardening.catalog import ImageSpec
from hardening.engine.saved import TAR_NAME, private_dir, require_image, save_image
from hardening.errors import ScannerError
from hardening.findings import DbIdentity
from hardening.freshness import NO_LIMIT, AgeLimit, require_fresh
from hardening.pending.interface import UpdateSource
from hardening.pending.record import write_pending_record
from hardening.run.store import PENDING_FILE, SBOM_FILE, SCAN_FILE, RunDir, require_build
from hardening.scan.interface import Scanner, ScanOptions, ScanResult, ScanTarget

if TYPE_CHECKING:  # the docker SDK is slow to import; callers hand us a connected engine
    from hardening.engine.client import Engine

SCAN_SCHEMA_VERSION = 1


def scan_images(
    specs: Sequence[ImageSpec],
    engine: Engine,
    run: RunDir,
    options: ScanOptions,
    *,
    output_dir: Path,
    scanner: Scanner,
    db_limit: AgeLimit = NO_LIMIT,
    sources: Sequence[UpdateSource] = (),
) -> list[ScanResult]:
    """Scan the latest candidate of every image; the first fault stops the run."""
    # Every image must have a build before anything is scanned: a half-scanned catalog is a
    # result nobody asked for.
    builds = [(spec, require_build(output_dir, spec.name)) for spec in specs]
    prepare_scanner(scanner, options, db_limit)
    results: list[ScanResult] = []
    for spec, build in builds:
        info = engine.image(build.candidate_ref)
        if info is None or info.id != build.image_id:
            now = f"now {info.id}" if info else "gone"
            raise ScannerError(
                f"{build.candidate_ref} is not the image the last build of {spec.name} recorded "
                f"({build.image_id}; the tag is {now})",
                hint=f"run `harden build {spec.name}` and scan again",
            )
        out_dir = run.image_dir(spec.name)
        extra = {"build_run": build.run.run_id}
        result = _scan_one(
            scanner,
            engine,
            spec.name,
            build.candidate_ref,
            build.image_id,
            out_dir,
            options,
            extra=extra,
            db_limit=db_limit,
            sources=[(source, spec.base) for source in sources],
        )
        results.append(result)
    return results


def scan_ref(
    ref: str,
    engine: Engine,
    out_dir: Path,
    options: ScanOptions,
    *,
    scanner: Scanner,
    db_limit: AgeLimit = NO_LIMIT,
    sources: Sequence[UpdateSource] = (),
) -> ScanResult:
    """Scan any local image by reference (outside the catalog)."""
    info = require_image(engine, ref)
    prepare_scanner(scanner, options, db_limit)
    return _scan_one(
        scanner,
        engine,
        ref,
        ref,
        info.id,
        out_dir,
        options,
        extra={},
        db_limit=db_limit,
        sources=[(s, None) for s in sources],
    )


def prepare_scanner(scanner: Scanner, options: ScanOptions, db_limit: AgeLimit = NO_LIMIT) -> None:
    """The scanner checked, and its DB young enough, before any image is saved."""
    tool = scanner.prepare(options)
    cache = str(options.cache_dir) if options.cache_dir else None
    require_fresh([tool], db_limit, now=datetime.now(UTC), cache_dir=cache)


def ref_dir_name(ref: str) -> str:
    """A directory name for an image reference (``repo/name:tag`` → ``repo_name_tag``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ref).strip("._") or "image"


def _scan_one(
    scanner: Scanner,
    engine: Engine,
    image: str,
    ref: str,
    image_id: str,
    out_dir: Path,
    options: ScanOptions,
    *,
    extra: dict[str, str],
    db_limit: AgeLimit,
    sources: Sequence[tuple[UpdateSource, BaseSpec | None]] = (),
) -> ScanResult:
    record = out_dir / SCAN_FILE
    pending = out_dir / PENDING_FILE
    # Records from an earlier attempt in the same directory would read as this scan's result.
    for stale in (record, pending):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    options = replace(options, sbom_path=out_dir / SBOM_FILE)
    with private_dir("hardening-scan-") as tmp:
        target = ScanTarget(image=image, ref=ref, image_id=image_id, tar_path=tmp / TAR_NAME)
        # Stored results for this very image spare the `docker save`.
        result = scanner.lookup(target, options)
        known = [source.lookup(target, base) for source, base in sources]
        if result is None or None in known:
            save_image(engine, ref, target.tar_path)
        if result is None:
            result = scanner.scan(target, options)
        checks = [
            found or source.check(target, base) for found, (source, base) in zip(known, sources, strict=True)
        ]
    # Again with the DB the scan did use: an online scan learns its DB only now.
    cache = str(options.cache_dir) if options.cache_dir else None
    require_fresh([result.tool], db_limit, now=datetime.now(UTC), cache_dir=cache)
    write_scan_record(record, image, ref, image_id, result, options, scanner=scanner.name, extra=extra)
    if sources:
        write_pending_record(pending, image=image, ref=ref, image_id=image_id, checks=checks)
    return result


def write_scan_record(
    path: Path,
    image: str,
    ref: str,
    image_id: str,
    result: ScanResult,
    options: ScanOptions,
    *,
    scanner: str,
    extra: dict[str, str] | None = None,
) -> None:
    """A scan record (``scan.json``): written only after a successful scan, atomically.

    ``tool`` says which tool, version and data; ``<scanner>_version`` and ``db_updated_at``
    repeat two of its fields under the names records had before there was more than one
    scanner, for the readers of those records. The other ``db_*`` fields repeat where the data
    came from (source, repository, manifest digest, inputs, next update) for the readers of flat
    fields, the release's gate record among them; each is written only when known.
    """
    tool = result.tool
    provenance = _flat_db_fields(tool.db) if tool.db is not None else {}
    document = {
        "schema_version": SCAN_SCHEMA_VERSION,
        "image": image,
        "ref": ref,
        "image_id": image_id,
        "scanner": scanner,
        "tool": tool.to_json(),
        f"{scanner}_version": tool.version,
        "db_updated_at": tool.db.updated_at if tool.db is not None else None,
        **provenance,
        "scanned_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scanners": list(options.scanners),
        "offline": options.offline,
        "cached": result.cached,
        "packages": result.packages,
        "sbom": result.sbom_path.name if result.sbom_path else None,
        **(extra or {}),
        "findings": [finding.to_json() for finding in result.findings],
    }
    write_json(path, document)


def _flat_db_fields(db: DbIdentity) -> dict[str, object]:
    values: dict[str, object] = {
        "db_next_update": db.next_update,
        "db_source": db.source,
        "db_repository": db.repository,
        "db_manifest_digest": db.manifest_digest,
        "db_inputs": list(db.inputs) or None,
    }
    return {key: value for key, value in values.items() if value is not None}
