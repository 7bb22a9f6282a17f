"""`harden trend`: charts and tables of the scan history."""

from __future__ import annotations

from pathlib import Path

import click

from hardening.cli.app import Context, echo, pass_ctx


@click.command()
@click.option(
    "--history",
    "history_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of <image>.jsonl scan histories  [default: <output_dir>/history from the catalog]",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write trend-<image>.svg and trend-<image>.md  [default: <output_dir>/trend]",
)
@click.argument("images", nargs=-1)
@pass_ctx
def trend(ctx: Context, history_dir: Path | None, out_dir: Path | None, images: tuple[str, ...]) -> None:
    """Chart open vulnerabilities by severity over time, one SVG and one Markdown table per image;
    with an update history (<history>/updates/), the patch latency of released security updates.

    Images default to every image with a history. Exit 2 when the history is missing, empty or
    has a malformed line (the message names the file and line).
    """
    from hardening.history import load_history
    from hardening.latency import security_latencies, summary
    from hardening.pending.updates import known_sightings, latencies, load_updates
    from hardening.trend import write_trends

    # The catalog is read only for defaults, so a history copied elsewhere charts without one.
    if history_dir is None:
        history_dir = ctx.catalog.output_dir / "history"
    if out_dir is None:
        out_dir = ctx.catalog.output_dir / "trend"
    history = load_history(history_dir)
    # The update history beside it (<history>/updates/): first sightings and the releases that
    # shipped them, hence the patch latency of each image's security updates.
    updates = load_updates(history_dir)
    known = known_sightings([history_dir])
    delays = {image: latencies(events, known=known) for image, events in updates.items()}
    for files in write_trends(history, out_dir, images, source=history_dir, latencies=delays):
        echo(f"{files.image}: {files.records} scan(s) -> {files.svg}, {files.markdown}")
        released = security_latencies(delays.get(files.image, ()))
        if released:
            echo(f"  patch latency: {summary(released)}")
