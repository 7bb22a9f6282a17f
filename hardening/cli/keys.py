"""`harden keys generate`: the release signing key pair."""

from __future__ import annotations

from pathlib import Path

import click

from hardening.cli.app import echo


@click.group()
def keys() -> None:
    """Release signing keys (ECDSA P-256, PEM)."""


@keys.command("generate")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory for release.key (encrypted, 0600) and release.pub.",
)
def generate(out_dir: Path) -> None:
    """Create a key pair; the private key is encrypted with $HARDENING_KEY_PASSPHRASE.

    Refuses to overwrite an existing key. Nothing secret is printed.
    """
    from hardening.evidence.keys import PASSPHRASE_ENV, generate, passphrase_from_env

    pair = generate(out_dir, passphrase_from_env())
    echo(f"private key: {pair.private} (encrypted with ${PASSPHRASE_ENV}; keep it secret)")
    echo(f"public key:  {pair.public} ({pair.fingerprint}); consumers verify with it")
