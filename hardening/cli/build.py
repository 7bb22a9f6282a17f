"""`harden build`: candidate images, with progress that suits where it is read."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

from hardening.cli.app import Context, echo, pass_ctx

# Bookkeeping lines of the classic builder that say nothing about progress.
_BUILDER_NOISE = (" ---> ", "Removing intermediate container")
# The lines that say what is being done: a Dockerfile step of the engine's build, a command or
# the import of the base build (every line the base build reports is one of those).
_STEP = re.compile(r"Step \d+/\d+ : |\$ |importing ")
# A step's text is the Dockerfile instruction: a long RUN says enough in its first words.
_STEP_CHARS = 160


class BuildDisplay:
    """How build progress is shown.

    On a terminal, one live line. Elsewhere (CI logs, a pipe), one line per step; what the steps
    printed (apt's "Reading database … 45%" and the like) is left out, because a failed step's
    error carries the log's last lines. With ``-v``, every line the engine sends.
    """

    def __init__(self, verbose: bool, *, live: bool | None = None) -> None:
        self.verbose = verbose
        self.live = (sys.stderr.isatty() if live is None else live) and not verbose

    def sink(self, label: str) -> Callable[[str], None]:
        def on_line(line: str) -> None:
            if self.verbose:
                click.echo(f"{label}: {line}", err=True)
            elif line.startswith(_BUILDER_NOISE):
                return
            elif self.live:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                click.echo(f"\r\x1b[2K{label}: {line}"[: width + 6], nl=False, err=True)
            elif _STEP.match(line):
                text = line if len(line) <= _STEP_CHARS else line[: _STEP_CHARS - 1] + "…"
                click.echo(f"{label}: {text}", err=True)

        return on_line

    def done(self) -> None:
        if self.live:
            click.echo("\r\x1b[2K", nl=False, err=True)


@click.command()
@click.argument("images", nargs=-1)
@click.option(
    "--no-cache", "nocache", is_flag=True, help="Run every step again, as with an empty build cache."
)
@pass_ctx
def build(ctx: Context, images: tuple[str, ...], nocache: bool) -> None:
    """Build candidate images (refuses when a committed rendering has drifted).

    Each image the engine builds is made canonical (sorted entries, times clamped to the last
    commit's, build logs and caches removed) and that image is the candidate. Writes a build
    record to scans/runs/<run>/<image>/build.json, with every input of the build.
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
            specs,
            rendered,
            engine_client,
            run,
            root=catalog.root,
            source=catalog.source,
            sink=display.sink,
            nocache=nocache,
        )
    finally:
        display.done()
    for result in results:
        echo(
            f"{result.image}: built {result.candidate_ref} ({result.image_id[7:19]}), "
            f"{result.size / 1e6:.1f} MB, {result.layers} layers, {result.duration:.1f} s"
            f"{_normalised(result.normalisation)}"
        )
    echo(f"build records: {run.path}")


def _normalised(summary: Mapping[str, Any]) -> str:
    if not summary:
        return ""
    if summary.get("cached"):
        return " (normalised before)"
    seconds = summary.get("seconds") or {}
    total = sum(float(v) for k, v in seconds.items() if k != "archive")
    removed = sum(int(v) for v in (summary.get("removed") or {}).values())
    return f" (normalised in {total:.1f} s, {removed} build-record files removed)"
