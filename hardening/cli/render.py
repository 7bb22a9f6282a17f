"""`harden render`: templates to committed Dockerfiles, and the drift check."""

from __future__ import annotations

import sys

import click

from hardening.cli.app import Context, echo, pass_ctx
from hardening.errors import ExitCode


@click.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if a committed file drifted.")
@click.argument("images", nargs=-1)
@pass_ctx
def render(ctx: Context, check: bool, images: tuple[str, ...]) -> None:
    """Render dockerfiles/<image>/Dockerfile from its template and the catalog."""
    from hardening.render import check_drift, write_rendered
    from hardening.render import render as render_one

    catalog = ctx.catalog
    specs = catalog.select(images)
    rendered = [render_one(spec, catalog.root) for spec in specs]  # all validated before any write
    drifted = 0
    for item in rendered:
        if check:
            diff = check_drift(item, catalog.root)
            if diff:
                drifted += 1
                echo(diff)
                echo(f"{item.path}: drifted from {item.template}", err=True)
            else:
                echo(f"{item.path}: up to date")
        else:
            changed = write_rendered(item, catalog.root)
            echo(f"{item.path}: {'written' if changed else 'unchanged'}")
    if drifted:
        echo(f"{drifted} rendered Dockerfile(s) differ; run `harden render` and commit them.", err=True)
        sys.exit(ExitCode.GATE_FAILED)
