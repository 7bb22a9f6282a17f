"""`harden release`: push promoted images to a registry, recording their digests."""

from __future__ import annotations

import sys

import click

from hardening.cli.app import Context, echo, pass_ctx
from hardening.errors import ExitCode


@click.command()
@click.argument("images", nargs=-1)
@click.option("--registry", required=True, metavar="HOST:PORT", help="Registry to push to.")
@pass_ctx
def release(ctx: Context, images: tuple[str, ...], registry: str) -> None:
    """Push the images whose latest `harden run` passed the gate; push nothing for the others.

    Digests are recorded in the run directory (release.json). Exit 1 when an image had no
    passing run (nothing of it is pushed), 3 when the registry fails.
    """
    from hardening.atomic import write_json
    from hardening.engine.client import Engine
    from hardening.release import check_registry, release_refs
    from hardening.release import release as push_image
    from hardening.run.store import RELEASE_FILE, latest_decision

    check_registry(registry)
    catalog = ctx.catalog
    specs = catalog.select(images)
    engine_client = Engine.connect()
    refused = 0
    try:
        plans = [(spec, latest_decision(catalog.output_dir, spec.name)) for spec in specs]
        for spec, found in plans:
            if found is None or not found.passed:
                refused += 1
                why = "no gate decision" if found is None else "the gate failed"
                echo(f"{spec.name}: not released ({why} in the latest run); nothing pushed", err=True)
                continue
            pushed = push_image(engine_client, spec, found.image_id, registry)
            record = {"registry": registry, "image_id": found.image_id, "pushed": release_refs(pushed)}
            write_json(found.run.image_dir(spec.name) / RELEASE_FILE, record)
            for item in pushed:
                echo(f"{spec.name}: pushed {item.ref}@{item.digest}")
    finally:
        engine_client.close()
    if refused:
        sys.exit(ExitCode.GATE_FAILED)
