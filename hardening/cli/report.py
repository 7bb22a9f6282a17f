"""`harden diff`, `harden sarif` and `harden baseline`: reading and comparing results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hardening.cli.app import Context, echo, max_db_age_option, pass_ctx
from hardening.errors import UsageError
from hardening.freshness import AgeLimit
from hardening.report.registry import ReportFormat


@click.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--pair",
    "pairs",
    multiple=True,
    metavar="OLD_IMAGE=NEW_IMAGE",
    help="Compare two differently named images, e.g. a naive image with its hardened replacement "
    "(repeatable). Other images are compared by name.",
)
@click.option(
    "--json", "json_out", type=click.Path(path_type=Path, dir_okay=False), help="Also write JSON here."
)
@click.option(
    "--markdown", "md_out", type=click.Path(path_type=Path, dir_okay=False), help="Also write Markdown."
)
def diff(old: Path, new: Path, pairs: tuple[str, ...], json_out: Path | None, md_out: Path | None) -> None:
    """Fixed, new and unchanged findings between two run directories or two SARIF files.

    Only images both sides looked at are compared; the others are listed as added or removed.
    """
    from hardening.atomic import write_json, write_text_atomic
    from hardening.diff import diff_findings, diff_json, diff_markdown, load_side, parse_pair

    paired = [parse_pair(text) for text in pairs]
    result = diff_findings(load_side(old), load_side(new), pairs=paired)
    text = diff_markdown(result, str(old), str(new))
    if json_out:
        write_json(json_out, diff_json(result, str(old), str(new)), sort_keys=False)
    if md_out:
        write_text_atomic(md_out, text)
    echo(text.rstrip())


@click.command()
@click.option(
    "--from-trivy",
    "report",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="A Trivy JSON report (`trivy image --format json`), ours or not.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option(
    "--dockerfile",
    default="Dockerfile",
    show_default=True,
    help="Repository path every result points at (the Dockerfile that built the image).",
)
@click.option("--category", help="runAutomationDetails.id (default: hardening/<image>/).")
def sarif(report: Path, output: Path, dockerfile: str, category: str | None) -> None:
    """Convert any Trivy JSON report into SARIF that GitHub code scanning accepts."""
    from hardening.errors import Location, ReportInputError, ScannerError
    from hardening.findings import Origin, SourceLocation
    from hardening.report.sarif import build_sarif, write_sarif
    from hardening.scan.trivy import parse_report
    from hardening.scan.trivy.scanner import tool_info

    try:
        parsed = parse_report(report.read_bytes(), image=None, artifact_name=None, image_id=None)
    except ScannerError as exc:
        # A report handed to us is input, not a scan we ran: its faults are bad input (exit 2).
        raise ReportInputError(
            f"not a Trivy JSON report: {exc.message}",
            location=Location(report),
            hint="pass the JSON of `trivy image --format json` (or fs/rootfs), unmodified",
        ) from None
    image = parsed.artifact or report.stem
    findings = parsed.findings
    # Findings without a location point at --dockerfile through the fallback location.
    doc = build_sarif(
        image,
        findings,
        tools={Origin.SCANNER: tool_info(parsed.trivy_version or "unknown", None)},
        fallback_location=SourceLocation(dockerfile, 1),
        category=category,
    )
    write_sarif(output, doc)
    echo(f"{output}: {len(findings)} results from {report}")


@click.command()
@click.argument("images", nargs=-1)
@pass_ctx
def baseline(ctx: Context, images: tuple[str, ...]) -> None:
    """Accept the latest run's findings: only findings not in the baseline fail the gate later."""
    from hardening.gate import load_gate, write_baseline
    from hardening.report.jsonreport import load_report
    from hardening.run.store import FINDINGS_FILE, latest_run

    catalog = ctx.catalog
    gate = load_gate(catalog.gate, catalog.root)
    if gate.baseline_dir is None:
        raise UsageError(
            f"{catalog.gate} sets no baseline_dir", hint="add `baseline_dir: scans/baselines` to it"
        )
    latest = latest_run(catalog.output_dir)
    for spec in catalog.select(images):
        findings_file = latest / spec.name / FINDINGS_FILE
        if not findings_file.is_file():
            raise UsageError(f"no findings for {spec.name} in {latest}; run `harden run {spec.name}` first")
        _image, findings = load_report(findings_file)
        count = write_baseline(gate.baseline_dir / f"{spec.name}.json", spec.name, findings)
        echo(f"{spec.name}: {count} findings accepted in {gate.baseline_dir / (spec.name + '.json')}")


def _dest(fmt: ReportFormat) -> str:
    return "out_" + fmt.value.replace("-", "_")


def _format_options(command: Callable[..., None]) -> Callable[..., None]:
    """A ``--<format> FILE`` option per registered report format, in registry order."""
    for fmt in reversed(ReportFormat):
        spec = fmt.spec
        command = click.option(
            f"--{fmt.value}",
            _dest(fmt),
            type=click.Path(path_type=Path, dir_okay=False),
            required=spec.required,
            help=spec.help,
        )(command)
    return command


@click.command()
@click.argument("image")
@click.option(
    "--scan-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Where `harden scan --image REF --out DIR` wrote scan.json (and check.json, if any).",
)
@_format_options
@click.option(
    "--history-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Append this scan's counts and gate decision to <dir>/<image>.jsonl.",
)
@max_db_age_option
@pass_ctx
def report(
    ctx: Context,
    /,
    image: str,
    scan_dir: Path,
    history_dir: Path | None,
    max_db_age: AgeLimit | None,
    **outputs: Path | None,
) -> None:
    """Reports (SARIF, and any other format asked for) and a gate decision for a scan of IMAGE
    made by `harden scan --out`.

    Every output is written before the exit code is decided: exit 1 when the gate fails. A scan
    made with a DB older than the gate's max_db_age is refused (exit 3), nothing written.
    """
    import sys

    from hardening.errors import ExitCode
    from hardening.run.report import plan_report, report_scan

    paths = {fmt: path for fmt in ReportFormat if (path := outputs.get(_dest(fmt))) is not None}
    plan = plan_report(
        ctx.catalog, image, scan_dir, outputs=paths, history_dir=history_dir, max_db_age=max_db_age
    )
    outcome = report_scan(plan)
    verdict = "PASS" if outcome.decision.passed else "FAIL"
    echo(f"{image}: {verdict}; SARIF {paths[ReportFormat.SARIF]}")
    for reason in outcome.decision.reasons:
        echo(f"  {reason}")
    if not outcome.decision.passed:
        sys.exit(ExitCode.GATE_FAILED)
