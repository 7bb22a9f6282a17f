"""`harden matrix`: the catalog as a GitHub Actions job matrix."""

from __future__ import annotations

import click

from hardening.cli.app import Context, echo, pass_ctx


@click.command()
@click.argument("images", nargs=-1)
@pass_ctx
def matrix(ctx: Context, images: tuple[str, ...]) -> None:
    """Print the JSON that `strategy.matrix: ${{ fromJSON(...) }}` takes: one job per image.

    Each include entry has image, template, repository, tags (space-separated) and category
    (the code scanning category, hardening/<image>).
    """
    from hardening.matrix import matrix_entries, matrix_json

    echo(matrix_json(matrix_entries(ctx.catalog, images)))
