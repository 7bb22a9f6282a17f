"""`harden build-diff`: which recorded input changed between two builds of an image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hardening.cli.app import echo


def _record(path: Path) -> dict[str, Any]:
    from hardening.errors import Location, ReportInputError
    from hardening.repro.inputs import require_record
    from hardening.run.store import BUILD_FILE
    from hardening.userfile import read_user_text

    file = path / BUILD_FILE if path.is_dir() else path
    text = read_user_text(
        file,
        error=ReportInputError,
        what="the build record",
        missing="cannot read the build record: it does not exist",
        hint="pass a build.json of a run, or the image's directory of a run (scans/runs/<run>/<image>)",
    )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"not valid JSON: {exc.msg}", location=Location(file, exc.lineno)) from None
    return dict(require_record(doc, str(file)))


@click.command("build-diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
def build_diff(old: Path, new: Path) -> None:
    """Compare two build records (build.json, or an image's directory of a run).

    Names every input that changed: source revision, files, variables, base image, archive
    state, Debian packages, Python packages, wheels, builder. Exit 0 when the images are the same
    or the difference is explained by a changed input; 1 when the images differ but no recorded
    input did (a reproducibility bug); 2 when a record is missing or malformed.
    """
    from hardening.errors import NotVerified
    from hardening.repro.inputs import compare_records

    comparison = compare_records(_record(old), _record(new))
    if comparison.same_image:
        echo(f"same image {comparison.new_image}")
        if comparison.changes:
            echo(f"  {len(comparison.changes)} recorded input(s) changed without changing the image:")
    else:
        echo(f"different images: {comparison.old_image} → {comparison.new_image}")
    for change in comparison.changes:
        echo(f"  {change}")
    if comparison.unexplained:
        raise NotVerified(
            "the images differ but no recorded input did: the build is not reproducible",
            hint="rebuild with `harden build --no-cache` and compare the layers; "
            "report both build records with the first differing file",
        )
    if not comparison.same_image:
        echo(f"explained by {len(comparison.changes)} changed input(s)")
