"""`harden run`: the whole pipeline, and the gate that decides what is promoted."""

from __future__ import annotations

import sys
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
    scanner_option,
    trivy_cache_option,
    trivy_option,
)
from hardening.cli.build import BuildDisplay
from hardening.errors import ExitCode
from hardening.freshness import AgeLimit


@click.command()
@click.argument("images", nargs=-1)
@scanner_option
@trivy_option
@trivy_cache_option
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True, help="Scan timeout, s."
)
@click.option(
    "--record-history",
    is_flag=True,
    help="Append each image's counts to scans/history/ and its pending updates to scans/history/updates/.",
)
@max_db_age_option
@pending_option
@pass_ctx
def run(
    ctx: Context,
    images: tuple[str, ...],
    scanner_names: tuple[str, ...],
    trivy: Path | None,
    cache_dir: Path,
    timeout: float,
    record_history: bool,
    max_db_age: AgeLimit | None,
    no_pending: bool,
) -> None:
    """Render check, build, check, scan, report, gate and promote the catalog's images.

    Writes scans/runs/<run>/<image>/{build,check,findings,gate}.json, results.sarif (for code
    scanning: suppressed and baselined results left out), results.full.sarif (every result) and
    sbom.cdx.json, and scans/runs/<run>/summary.md. Release tags move only for images that
    pass the gate. Exit 0 when every image passed, 1 when any failed.
    """
    from hardening.engine.client import Engine
    from hardening.pending.summary import pending_lines
    from hardening.run.orchestrator import RunContext, execute
    from hardening.run.plan import plan_run
    from hardening.run.store import new_run_dir
    from hardening.scan.interface import ScanOptions

    # Every input and every tool is checked before the engine is even asked.
    plan = plan_run(
        ctx.catalog,
        images,
        scanners=make_scanners(ctx, scanner_names, trivy),
        options=ScanOptions(cache_dir=cache_dir.expanduser(), timeout=timeout),
        record_history=record_history,
        max_db_age=max_db_age,
        sources=make_sources(ctx, enabled=not no_pending),
    )
    engine_client = Engine.connect()
    run_dir = new_run_dir(plan.output_dir)
    display = BuildDisplay(ctx.verbose)
    try:
        outcome = execute(RunContext(plan, engine_client, run_dir, sink=display.sink))
    finally:
        display.done()
        engine_client.close()
    for image in outcome.images:
        decision = image.decision
        verdict = "PASS" if decision.passed else "FAIL"
        promoted = f" → {', '.join(image.promotion.refs)}" if image.promotion else " (release tags untouched)"
        cached = " (scan cached)" if image.scans_cached else ""
        echo(
            f"{image.image.name}: {verdict}: {image.vulnerabilities} vulnerabilities{cached}, "
            f"{len(image.check.findings)} policy findings, {decision.suppressed} suppressed, "
            f"{decision.baselined} baselined{promoted}"
        )
        for line in pending_lines(image.checks):
            echo(f"  {line}")
        for reason in decision.reasons:
            echo(f"  {reason}")
    echo(f"reports: {run_dir.path}")
    if not outcome.passed:
        sys.exit(ExitCode.GATE_FAILED)
