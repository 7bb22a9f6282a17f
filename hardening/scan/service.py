"""The scan stage of the pipeline: the image that was built, saved by the engine, scanned.

We scan the `docker save` tarball of the candidate image, never the repository's files: what
ships is the image. A ``scan.json`` appears only after a scan succeeded, so an absent file means
"unknown", never "clean".
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from hardening.atomic import write_json
from hardening.catalog import Catalog, ImageSpec
from hardening.engine.client import Engine
from hardening.engine.saved import TAR_NAME, private_dir, save_image
from hardening.errors import ScannerError
from hardening.pipeline import RunDir, latest_build
from hardening.scan.interface import Scanner, ScannerKind, ScanOptions, ScanResult, ScanTarget

SCAN_FILE = "scan.json"
SBOM_FILE = "sbom.cdx.json"
SCAN_SCHEMA_VERSION = 1


def scan_images(
    catalog: Catalog,
    specs: tuple[ImageSpec, ...],
    engine: Engine,
    run: RunDir,
    options: ScanOptions,
    *,
    trivy: Path | None,
    kind: ScannerKind = ScannerKind.TRIVY,
    scanner: Scanner | None = None,
) -> list[ScanResult]:
    """Scan the latest candidate of every image; the first fault stops the run."""
    # Every image must have a build before anything is scanned: a half-scanned catalog is a
    # result nobody asked for.
    builds: list[tuple[ImageSpec, str, str, str]] = []
    for spec in specs:
        found = latest_build(catalog, spec.name)
        if found is None:
            raise ScannerError(
                f"no build of {spec.name}; run `harden build {spec.name}`",
                hint=f"build records are looked up in {catalog.output_dir / 'runs'}",
            )
        build_run, record = found
        image_id = record.get("image_id")
        ref = record.get("candidate_ref")
        if not isinstance(image_id, str) or not isinstance(ref, str) or not image_id or not ref:
            raise ScannerError(
                f"the build record of {spec.name} in {build_run.path} has no image_id or candidate_ref",
                hint=f"run `harden build {spec.name}` again",
            )
        builds.append((spec, image_id, ref, build_run.run_id))

    scanner = scanner or kind.create(binary=trivy)
    scanner.prepare(options)
    results: list[ScanResult] = []
    for spec, image_id, ref, build_run_id in builds:
        info = engine.image(ref)
        if info is None or info.id != image_id:
            now = f"now {info.id}" if info else "gone"
            raise ScannerError(
                f"{ref} is not the image the last build of {spec.name} recorded "
                f"({image_id}; the tag is {now})",
                hint=f"run `harden build {spec.name}` and scan again",
            )
        out_dir = run.image_dir(spec.name)
        result = _scan_one(
            scanner, engine, spec.name, ref, image_id, out_dir, options, extra={"build_run": build_run_id}
        )
        results.append(result)
    return results


def scan_ref(
    ref: str,
    engine: Engine,
    out_dir: Path,
    options: ScanOptions,
    *,
    trivy: Path | None = None,
    kind: ScannerKind = ScannerKind.TRIVY,
    scanner: Scanner | None = None,
) -> ScanResult:
    """Scan any local image by reference (outside the catalog)."""
    info = engine.image(ref)
    if info is None:
        raise ScannerError(
            f"no local image {ref}",
            hint="nothing can be pulled here; build or load the image first (`docker images` lists them)",
        )
    scanner = scanner or kind.create(binary=trivy)
    scanner.prepare(options)
    return _scan_one(scanner, engine, ref, ref, info.id, out_dir, options, extra={})


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
) -> ScanResult:
    scan_file = out_dir / SCAN_FILE
    # A scan.json from an earlier attempt in the same directory would read as this scan's result.
    with contextlib.suppress(FileNotFoundError):
        scan_file.unlink()
    options = replace(options, sbom_path=out_dir / SBOM_FILE)
    with private_dir("hardening-scan-") as tmp:
        target = ScanTarget(image=image, ref=ref, image_id=image_id, tar_path=tmp / TAR_NAME)
        # A stored result for this very image spares the `docker save`.
        result = scanner.lookup(target, options)
        if result is None:
            save_image(engine, ref, target.tar_path)
            result = scanner.scan(target, options)
    write_scan_record(scan_file, image, ref, image_id, result, options, extra=extra)
    return result


def write_scan_record(
    path: Path,
    image: str,
    ref: str,
    image_id: str,
    result: ScanResult,
    options: ScanOptions,
    *,
    extra: dict[str, str] | None = None,
) -> None:
    """``scan.json``: written only after a successful scan, atomically."""
    document = {
        "schema_version": SCAN_SCHEMA_VERSION,
        "image": image,
        "ref": ref,
        "image_id": image_id,
        "scanner": "trivy",
        "trivy_version": result.trivy_version,
        "db_updated_at": result.db_updated_at,
        "scanned_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scanners": list(options.scanners),
        "offline": options.offline,
        "cached": result.cached,
        "packages": result.packages,
        "sbom": SBOM_FILE if result.sbom_path else None,
        **(extra or {}),
        "findings": [finding.to_json() for finding in result.findings],
    }
    write_json(path, document)
