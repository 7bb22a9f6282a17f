"""`harden build`: candidate images with a live progress display."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable

import click

from hardening.cli.app import Context, echo, pass_ctx

# Bookkeeping lines of the classic builder that say nothing about progress.
_BUILDER_NOISE = (" ---> ", "Removing intermediate container")


class BuildDisplay:
    """Live one-line progress on a terminal, plain prefixed lines elsewhere (CI logs)."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.live = sys.stderr.isatty() and not verbose

    def sink(self, label: str) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            if not self.verbose and line.startswith(_BUILDER_NOISE):
                return
            if self.live:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                click.echo(f"\r\x1b[2K{label}: {line}"[: width + 6], nl=False, err=True)
            else:
                click.echo(f"{label}: {line}", err=True)

        return on_line

    def done(self) -> None:
        if self.live:
            click.echo("\r\x1b[2K", nl=False, err=True)


@click.command()
@click.argument("images", nargs=-1)
@pass_ctx
def build(ctx: Context, images: tuple[str, ...]) -> None:
    """Build candidate images (refuses when a committed rendering has drifted).

    Writes a build record to scans/runs/<run>/<image>/build.json.
    """
    from hardening.build.service import build_images
    from hardening.engine.client import Engine
    from hardening.render import render_checked
    from hardening.run.store import new_run_dir

    catalog = ctx.catalog
    specs = catalog.select(images)
    # bad input is reported before the engine is even asked
    rendered = {spec.name: render_checked(spec, catalog.root) for spec in specs}
    engine_client = Engine.connect()
    run = new_run_dir(catalog.output_dir)
    display = BuildDisplay(ctx.verbose)
    try:
        results = build_images(
            specs, rendered, engine_client, run, root=catalog.root, source=catalog.source, sink=display.sink
        )
    finally:
        display.done()
    for result in results:
        echo(
            f"{result.image}: built {result.candidate_ref} ({result.image_id[7:19]}), "
            f"{result.size / 1e6:.1f} MB, {result.layers} layers, {result.duration:.1f} s"
        )
    echo(f"build records: {run.path}")
