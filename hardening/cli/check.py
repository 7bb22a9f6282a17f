"""`harden check`: policy checks on built candidates, on any local image, or on a Dockerfile."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from hardening.cli.app import Context, echo, pass_ctx
from hardening.errors import ExitCode, UsageError


def _print_report(report: object) -> None:
    from hardening.policy.service import CheckReport

    assert isinstance(report, CheckReport)  # noqa: S101 # nosec B101 - narrows a type; typed boundary for a lazy import
    counts = ", ".join(f"{count} {label}" for label, count in report.counts().items() if count)
    verdict = "FAIL" if report.failed else "pass"
    echo(f"{report.image}: {verdict} ({counts or 'no findings'}; fails at {report.fail_level.label})")
    # Every finding, most severe first; those at or above the fail level are marked FAIL, so a
    # passing image still shows what it carries (11 setuid files from the base, say).
    ordered = sorted(
        report.findings,
        key=lambda f: (
            -int(f.severity),
            f.rule_id,
            (f.location.path, f.location.line) if f.location else ("", 0),
            f.image_path or "",
            f.message,
        ),
    )
    for finding in ordered:
        mark = "FAIL" if finding.severity >= report.fail_level else "    "
        where = str(finding.location) if finding.location else (finding.image_path or "-")
        template = f" [{finding.template_location}]" if finding.template_location else ""
        echo(f"  {mark} {finding.rule_id} {finding.severity.label} {where}{template} {finding.message}")


@click.command()
@click.argument("images", nargs=-1)
@click.option("--image", "refs", multiple=True, metavar="REF", help="Check a local image by reference.")
@click.option(
    "--dockerfile",
    "dockerfiles",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Static checks of a Dockerfile only.",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Policy file (repeatable, merged in order). Default: the catalog's for catalog images, "
    "policies/default.yaml otherwise (the catalog's directory's, else this directory's, else the one "
    "harden ships).",
)
@pass_ctx
def check(
    ctx: Context,
    images: tuple[str, ...],
    refs: tuple[str, ...],
    dockerfiles: tuple[Path, ...],
    policies: tuple[Path, ...],
) -> None:
    """Check built images against policies/*.yaml (non-root, package floors, gosu, secrets …).

    Without arguments every catalog image's latest candidate is checked and
    scans/runs/<run>/<image>/check.json is written. Exit 1 when a finding reaches the policy's
    fail_level.
    """
    from hardening.policy import service

    if images and policies:
        raise UsageError("--policy applies to --image and --dockerfile; catalog images use their own")
    reports: list[service.CheckReport] = []
    standalone = refs or dockerfiles
    default = (_default_policy(ctx),)
    if dockerfiles:
        catalog = ctx.catalog if ctx.catalog_path.is_file() else None
        for path in dockerfiles:
            rendered = None
            chosen = policies
            if catalog is not None:
                spec = next(
                    (s for s in catalog.images if (catalog.root / s.dockerfile).resolve() == path.resolve()),
                    None,
                )
                if spec is not None:
                    from hardening.render import render_checked

                    rendered = render_checked(spec, catalog.root)
                    chosen = policies or tuple(catalog.root / p for p in spec.policies)
            reports.append(service.check_dockerfile(path, chosen or default, rendered=rendered))
    if refs:
        from hardening.engine.client import Engine

        engine = Engine.connect()
        try:
            for ref in refs:
                reports.append(service.check_ref(ref, engine, policies or default))
        finally:
            engine.close()
    if images or not standalone:
        from hardening.engine.client import Engine

        catalog = ctx.catalog
        specs = catalog.select(images)
        engine = Engine.connect()
        try:
            reports.extend(
                service.check_images(specs, engine, root=catalog.root, output_dir=catalog.output_dir)
            )
        finally:
            engine.close()
    for report in reports:
        _print_report(report)
    if any(report.failed for report in reports):
        sys.exit(ExitCode.GATE_FAILED)


def _default_policy(ctx: Context) -> Path:
    """The default policy for images and Dockerfiles outside the catalog: the repository's when
    there is a catalog or this directory has one, else the one beside the installed package, so
    that checking any Dockerfile works from any directory."""
    relative = Path("policies/default.yaml")
    candidates = []
    if ctx.catalog_path.is_file():
        candidates.append(ctx.catalog_path.resolve().parent / relative)
    candidates += [relative, Path(__file__).resolve().parents[2] / relative]
    return next((path for path in candidates if path.is_file()), relative)
