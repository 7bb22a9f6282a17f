"""`harden base`: the local Debian base image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from hardening.cli.app import Context, echo, pass_ctx, progress_printer
from hardening.errors import ArchiveError

if TYPE_CHECKING:
    from hardening.basespec import BaseSpec
    from hardening.engine.client import Engine


@click.command()
@click.option("--force", is_flag=True, help="Rebuild even if an image with matching labels exists.")
@click.option(
    "--if-outdated",
    is_flag=True,
    help="Also rebuild an existing base when <suite>-security has updates for its packages (checked "
    "against the archive's signed indexes; a base that cannot be checked is kept, and said so).",
)
@click.option("--suite", help="Debian suite (overrides the catalog).")
@click.option("--mirror", help="Debian archive mirror URL (default: from the machine's apt configuration).")
@click.argument("names", nargs=-1)
@pass_ctx
def base(
    ctx: Context,
    force: bool,
    if_outdated: bool,
    suite: str | None,
    mirror: str | None,
    names: tuple[str, ...],
) -> None:
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
        rebuild = force or (if_outdated and _outdated(client, spec))
        result = ensure_base(
            client,
            spec,
            force=rebuild,
            on_line=progress_printer("  ") if ctx.verbose else None,
            identity=identity,
        )
        state = "built" if result.rebuilt else "up to date"
        echo(
            f"base {result.ref}: {state}, {result.size / 1e6:.1f} MB, "
            f"{result.packages} packages, {result.setuid_cleared} setuid/setgid files cleared, "
            f"mirror {result.mirror}"
        )


def _outdated(client: Engine, spec: BaseSpec) -> bool:
    """Whether an existing, current base lacks security updates the archive now has."""
    from hardening.archive.basecheck import check_base
    from hardening.base import is_current, resolve_mirrors

    existing = client.image(spec.ref)
    if existing is None or not is_current(dict(existing.labels), spec, resolve_mirrors(spec)[0]):
        return False  # built anyway
    try:
        freshness = check_base(client, spec)
    except ArchiveError as exc:
        echo(f"base {spec.ref}: kept, the archive could not be checked: {exc.message}")
        return False
    echo(f"base {spec.ref}: {freshness.describe()}")
    return freshness.outdated
