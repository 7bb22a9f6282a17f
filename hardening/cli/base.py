"""`harden base`: the local Debian base image."""

from __future__ import annotations

import click

from hardening.cli.app import Context, echo, pass_ctx, progress_printer


@click.command()
@click.option("--force", is_flag=True, help="Rebuild even if an image with matching labels exists.")
@click.option("--suite", help="Debian suite (overrides the catalog).")
@click.option("--mirror", help="Debian archive mirror URL (default: from the machine's apt configuration).")
@click.argument("names", nargs=-1)
@pass_ctx
def base(ctx: Context, force: bool, suite: str | None, mirror: str | None, names: tuple[str, ...]) -> None:
    """Build the local Debian base image(s) named in the catalog's [base.*] tables."""
    from dataclasses import replace

    from hardening.base import ensure_base
    from hardening.build.identity import source_identity
    from hardening.engine.client import Engine

    selected = ctx.catalog.select_bases(names)  # an unknown name is bad input, like an unknown image
    client = Engine.connect()
    identity = source_identity(ctx.catalog.root)
    for spec in selected:
        if suite:
            spec = replace(spec, suite=suite)
        if mirror:
            spec = replace(spec, mirror=mirror)
        result = ensure_base(
            client,
            spec,
            force=force,
            on_line=progress_printer("  ") if ctx.verbose else None,
            identity=identity,
        )
        state = "built" if result.rebuilt else "up to date"
        echo(
            f"base {result.ref}: {state}, {result.size / 1e6:.1f} MB, "
            f"{result.packages} packages, {result.setuid_cleared} setuid/setgid files cleared, "
            f"mirror {result.mirror}"
        )
