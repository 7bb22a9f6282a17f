"""`harden scan`: the built images, scanned with the pinned Trivy; every fault exits 3."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from hardening.cli.app import (
    Context,
    echo,
    make_scanners,
    make_sources,
    max_db_age_option,
    pass_ctx,
    pending_option,
    trivy_cache_option,
    trivy_option,
)
from hardening.errors import UsageError
from hardening.findings import Finding, Severity
from hardening.freshness import NO_LIMIT, AgeLimit
from hardening.scan.interface import ScanOptions, ScanResult
from hardening.scan.registry import DEFAULT_SCANNER
from hardening.scan.trivy import KNOWN_SCANNERS


def _scanners(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [name for name in names if name not in KNOWN_SCANNERS]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown scanner(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KNOWN_SCANNERS)}"
        )
    return names


def summary_line(label: str, result: ScanResult, where: Path) -> str:
    counts = _counts(result.findings)
    by_severity = ", ".join(f"{counts[s]} {s.label}" for s in sorted(Severity, reverse=True))
    state = "cached" if result.cached else "scanned"
    tool = result.tool
    updated = tool.db.updated_at if tool.db else None
    db = f", db {updated[:10]}" if updated else ""
    if tool.db is not None and tool.db.age_seconds is not None:
        from hardening.freshness import describe_age

        db += f" ({describe_age(timedelta(seconds=tool.db.age_seconds))} old)"
    return (
        f"{label}: {by_severity} ({len(result.findings)} findings, {result.packages} packages; "
        f"{state}, {tool.name.lower()} {tool.version}{db}) → {where}"
    )


def _counts(findings: tuple[Finding, ...]) -> dict[Severity, int]:
    counts = dict.fromkeys(Severity, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts


@click.command()
@click.argument("images", nargs=-1)
@click.option(
    "--image", "ref", metavar="REF", help="Scan any local image by reference instead of the catalog."
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="With --image: where to write scan.json and sbom.cdx.json (default: a new run directory).",
)
@click.option(
    "--scanner",
    "scanner_name",
    metavar="NAME",
    help=f"The scanner to run (default {DEFAULT_SCANNER}); --scanners picks Trivy's kinds of scan.",
)
@trivy_option
@trivy_cache_option
@click.option(
    "--scanners",
    default="vuln",
    show_default=True,
    callback=_scanners,
    help=f"Comma-separated Trivy scanners: {','.join(KNOWN_SCANNERS)}.",
)
@click.option("--db-repository", metavar="REPO", help="With --online: where Trivy downloads its DB from.")
@click.option("--online", is_flag=True, help="Let Trivy use the network (DB download); default is offline.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, help="Seconds.")
@max_db_age_option
@pending_option
@pass_ctx
def scan(
    ctx: Context,
    images: tuple[str, ...],
    ref: str | None,
    out_dir: Path | None,
    scanner_name: str | None,
    trivy: Path | None,
    cache_dir: Path,
    scanners: tuple[str, ...],
    db_repository: str | None,
    online: bool,
    timeout: float,
    max_db_age: AgeLimit | None,
    no_pending: bool,
) -> None:
    """Scan built candidate images (or --image REF); write scan.json and an SBOM.

    Exits 0 whatever is found (`harden gate` decides); exits 3 when the scan itself fails or
    the DB is older than the gate's max_db_age.
    """
    from hardening.engine.client import Engine
    from hardening.run.store import SCAN_FILE, new_run_dir
    from hardening.scan.service import prepare_scanner, ref_dir_name, scan_images, scan_ref

    if ref and images:
        raise UsageError("give image names from the catalog or --image REF, not both")
    if out_dir and not ref:
        raise UsageError("--out goes with --image; catalog images are written to the run directory")
    if db_repository and not online:
        raise UsageError("--db-repository needs --online (offline scans never download a DB)")
    options = ScanOptions(
        cache_dir=cache_dir.expanduser(),
        scanners=scanners,
        timeout=timeout,
        offline=not online,
        skip_db_update=not online,
        db_repository=db_repository,
    )
    db_limit = _age_limit(ctx, catalog_images=not ref, override=max_db_age)
    # Binary, version and DB (its age too) are checked before any run directory is created.
    (scanner,) = make_scanners(ctx, (scanner_name,) if scanner_name else (), trivy)
    prepare_scanner(scanner, options, db_limit)
    sources = make_sources(ctx, enabled=not no_pending)
    for source in sources:
        source.prepare()
    engine_client = Engine.connect()
    try:
        if ref:
            # no catalog is needed to scan an image by reference, from any directory
            target_dir = out_dir or new_run_dir(ctx.output_dir_outside_catalog()).image_dir(ref_dir_name(ref))
            result = scan_ref(
                ref, engine_client, target_dir, options, scanner=scanner, db_limit=db_limit, sources=sources
            )
            _print_pending(target_dir, bool(sources))
            echo(summary_line(ref, result, target_dir / SCAN_FILE))
            return
        catalog = ctx.catalog
        specs = catalog.select(images)
        run = new_run_dir(catalog.output_dir)
        results = scan_images(
            specs,
            engine_client,
            run,
            options,
            output_dir=catalog.output_dir,
            scanner=scanner,
            db_limit=db_limit,
            sources=sources,
        )
        for spec, result in zip(specs, results, strict=True):
            _print_pending(run.image_dir(spec.name), bool(sources))
            echo(summary_line(spec.name, result, run.image_dir(spec.name) / SCAN_FILE))
    finally:
        engine_client.close()


def _age_limit(ctx: Context, *, catalog_images: bool, override: AgeLimit | None) -> AgeLimit:
    """``--max-db-age``, else the catalog's gate; an image outside any catalog has no gate."""
    if override is not None:
        return override
    if not catalog_images and not ctx.catalog_path.is_file():
        return NO_LIMIT
    from hardening.gate import load_gate

    catalog = ctx.catalog
    return load_gate(catalog.gate, catalog.root).age_limit()


def _print_pending(image_dir: Path, checked: bool) -> None:
    if not checked:
        return
    from hardening.pending.record import read_pending_record
    from hardening.pending.summary import pending_lines
    from hardening.run.store import PENDING_FILE

    record = image_dir / PENDING_FILE
    _image_id, checks = read_pending_record(record)
    # On stderr: the scan's own line stays the one line of stdout, as scripts read it.
    for line in pending_lines(checks):
        echo(f"{line} → {record}" if not line.startswith(" ") else line, err=True)
