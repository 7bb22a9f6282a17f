"""`harden db build`: a Trivy vulnerability DB (schema 2) from OSV advisory files."""

from __future__ import annotations

from pathlib import Path

import click

from hardening.cli.app import echo


@click.group()
def db() -> None:
    """Build Trivy's vulnerability DB ourselves, for air-gapped use and for tests."""


@db.command("build")
@click.argument("advisories", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Trivy cache directory to write db/trivy.db and db/metadata.json into (pass the same to scan).",
)
def db_build(advisories: tuple[Path, ...], cache_dir: Path) -> None:
    """Write a Trivy DB from OSV JSON advisories (files or directories of *.json)."""
    from hardening.scan.trivydb import build_db

    info = build_db(list(advisories), cache_dir)
    echo(
        f"trivy db: {info.path} from {info.advisories} advisories, "
        f"{info.vulnerabilities} vulnerabilities, updated {info.updated_at.isoformat()}"
    )
