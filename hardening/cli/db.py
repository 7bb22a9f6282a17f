"""`harden db`: build, merge, pull, push and show Trivy's vulnerability DB (schema 2)."""

from __future__ import annotations

from pathlib import Path

import click

from hardening.cli.app import DEFAULT_TRIVY_CACHE, Context, echo, pass_ctx, progress_printer

cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_TRIVY_CACHE,
    envvar="HARDENING_TRIVY_CACHE",
    show_default=True,
    help="Trivy cache directory holding db/trivy.db and db/metadata.json (pass the same to scan).",
)


@click.group()
def db() -> None:
    """Trivy's vulnerability DB: pull the upstream one, build one offline, merge our own advisories."""


@db.command("build")
@click.argument("advisories", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Trivy cache directory to write db/trivy.db and db/metadata.json into (pass the same to scan).",
)
@click.option(
    "--base-db",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Merge the advisories into this DB (a cache directory from `harden db pull`, or its db/).",
)
@click.option(
    "--override",
    is_flag=True,
    help="Let our own record replace a published one (from an export or the base DB) for the same "
    "vulnerability and package instead of failing.",
)
def db_build(advisories: tuple[Path, ...], cache_dir: Path, base_db: Path | None, override: bool) -> None:
    """Write a Trivy DB from OSV advisories: JSON files, directories of *.json, OSV export zips.

    Without --base-db the DB holds only these advisories and its UpdatedAt is the newest
    `modified` among them. With it, they are added to the upstream DB. An advisory of our own
    files that an export or the base DB also defines is an error naming both (exit 2), unless
    --override. A changelog-derived advisory (`harden advisories`) yields instead: to the base
    DB's record and to a hand-written one for the same CVE and package.
    """
    from hardening.db.build import build_db

    info = build_db(list(advisories), cache_dir, base_db=base_db, override=override)
    echo(
        f"trivy db: {info.path} from {info.advisories} advisories, "
        f"{info.vulnerabilities} vulnerabilities, updated {info.updated_at.isoformat()}"
    )
    if info.withdrawn or info.out_of_scope or info.unusable:
        echo(
            f"  left out: {info.withdrawn} withdrawn, {info.out_of_scope} only for packages Trivy does "
            f"not look up, {len(info.unusable)} affected packages whose versions Trivy cannot compare"
        )
    if info.derived_set_aside:
        echo(
            f"  {info.derived_set_aside} changelog-derived advisories left out: the base DB or a "
            "hand-written record has them"
        )
    for reason in info.unusable[:5]:
        echo(f"    {reason}")
    if len(info.unusable) > 5:
        echo(f"    … and {len(info.unusable) - 5} more")
    if info.metadata is not None:
        for part in info.metadata.parts:
            echo(f"  {part.describe()}")


@db.command("pull")
@cache_dir_option
@click.option(
    "--repository",
    "repositories",
    multiple=True,
    metavar="REF",
    envvar="HARDENING_DB_REPOSITORIES",
    help="Where to pull from, in order (repeatable, or $HARDENING_DB_REPOSITORIES separated by spaces, "
    "e.g. an internal mirror first). Without either: the catalog's [db] repositories, else "
    "mirror.gcr.io/aquasec/trivy-db:2, then ghcr.io/aquasecurity/trivy-db:2.",
)
@pass_ctx
def db_pull(ctx: Context, cache_dir: Path, repositories: tuple[str, ...]) -> None:
    """Download Trivy's DB artifact, verify it and swap it into the cache.

    Repositories are tried in order; a rate limit, server error, unreachable host, missing or
    corrupt artifact moves on to the next, and every attempt is printed. The previous DB stays
    unless a new one is complete and valid. Exit 3 when no repository serves one.

    The list is the first of: --repository, $HARDENING_DB_REPOSITORIES, the catalog's
    [db] repositories, the defaults — taken whole, never merged.
    """
    from hardening.db.registry import DEFAULT_REPOSITORIES, pull_db

    chosen = list(repositories)
    if not chosen and ctx.catalog_path.is_file():
        chosen = list(ctx.catalog.db_repositories)
    result = pull_db(cache_dir, chosen or list(DEFAULT_REPOSITORIES), on_line=progress_printer())
    identity = result.identity
    state = "already current" if result.cache_hit else "pulled"
    echo(
        f"trivy db: {state} from {identity.repository}@{identity.manifest_digest}, "
        f"updated {identity.updated_at.isoformat()}, next update {identity.next_update.isoformat()}"
    )


@db.command("push")
@click.argument("ref")
@cache_dir_option
def db_push(ref: str, cache_dir: Path) -> None:
    """Publish the cache's DB (pulled or built) to REF as Trivy's DB artifact.

    The artifact is what Trivy itself downloads (`--db-repository REF`), so a site can mirror the
    upstream DB, or its own, into its registry.
    """
    from hardening.db.registry import push_db

    pushed = push_db(cache_dir, ref)
    echo(f"trivy db: pushed {pushed.layer_size} bytes to {ref}@{pushed.manifest_digest}")


@db.command("show")
@cache_dir_option
def db_show(cache_dir: Path) -> None:
    """Print which DB the cache holds: source, repository, digest, age and contents."""
    from hardening.db.identity import read_identity

    identity = read_identity(cache_dir)
    echo(f"source:      {identity.source.value}")
    if identity.repository:
        echo(f"repository:  {identity.repository}")
        echo(f"digest:      {identity.manifest_digest}")
    echo(f"updated:     {identity.updated_at.isoformat()}")
    echo(f"next update: {identity.next_update.isoformat()}")
    for line in identity.contents:
        echo(f"contains:    {line}")
