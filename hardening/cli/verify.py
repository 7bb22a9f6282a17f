"""`harden verify`: check an image's signature, attestations and gate record in its registry."""

from __future__ import annotations

from pathlib import Path

import click

from hardening.cli.app import echo


@click.command()
@click.argument("ref", metavar="HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The release public key (PEM), e.g. release.pub.",
)
def verify(ref: str, key_path: Path) -> None:
    """Verify the signature and every attestation of REF, and that the gate passed that digest.

    Exit 0 verified, 1 not verified (each failing check is named), 2 bad reference or key,
    3 the registry failed.
    """
    from hardening.errors import NotVerified
    from hardening.evidence.keys import load_public_key
    from hardening.evidence.oci import OrasRegistry
    from hardening.evidence.verify import parse_reference
    from hardening.evidence.verify import verify as verify_image

    reference = parse_reference(ref)
    key = load_public_key(key_path)
    result = verify_image(OrasRegistry(reference.host), reference, key)
    echo(f"{result.reference}: {result.digest or 'not found'} (key {key.fingerprint})")
    for check in result.checks:
        echo(f"  {'ok' if check.ok else 'FAILED':<6} {check.subject:<12} {check.detail}")
    if not result.ok:
        failures = result.failures
        raise NotVerified(
            f"{result.reference}: {len(failures)} check(s) failed: {', '.join(c.subject for c in failures)}",
            details="\n".join(f"{check.subject}: {check.detail}" for check in failures),
            hint="do not use this image; if it is yours, run `harden release` for it again",
        )
    echo("verified: signed, every attestation signed and about this digest, and the gate passed it")
