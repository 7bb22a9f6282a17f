"""`harden verify`: check an image's signature, attestations and gate record in its registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hardening.cli.app import echo, progress_printer

if TYPE_CHECKING:
    from hardening.evidence.oci import OrasRegistry
    from hardening.evidence.verify import ImageRef, Verification


@click.command()
@click.argument("ref", metavar="HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The release public key (PEM), e.g. release.pub.",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Also build the image again from its provenance and compare image ids.",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(),
    show_default=True,
    help="With --rebuild: the git repository holding the revision the provenance names.",
)
@click.option("-v", "--verbose", is_flag=True, help="With --rebuild: print the engine's build output.")
def verify(ref: str, key_path: Path, rebuild: bool, repo: Path, verbose: bool) -> None:
    """Verify the signature and every attestation of REF, and that the gate passed that digest.

    With --rebuild, the revision the provenance names is checked out into a temporary worktree
    and the image built again with an empty cache, on the recorded base, and compared with the
    released image. Exit 0 verified (and, with --rebuild, the same image id); 1 not verified, or
    the rebuilt image differs (the first differing layer and file are named); 2 bad reference or
    key; 3 the registry failed, or an input of the build can no longer be had (a package
    version the mirror no longer serves, the revision, the base image).
    """
    from hardening.errors import NotVerified
    from hardening.evidence.keys import load_public_key
    from hardening.evidence.oci import OrasRegistry
    from hardening.evidence.verify import parse_reference
    from hardening.evidence.verify import verify as verify_image

    reference = parse_reference(ref)
    key = load_public_key(key_path)
    registry = OrasRegistry(reference.host)
    result = verify_image(registry, reference, key)
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
    if rebuild:
        _rebuild(registry, reference, result, repo, verbose)


def _rebuild(
    registry: OrasRegistry, reference: ImageRef, result: Verification, repo: Path, verbose: bool
) -> None:
    from hardening.engine.client import Engine
    from hardening.errors import NotVerified
    from hardening.evidence.statements import Attestation
    from hardening.repro.rebuild import (
        check_packages_served,
        compare,
        plan_from_provenance,
        rebuild,
        released_image,
    )

    plan = plan_from_provenance(result.predicates[Attestation.PROVENANCE])
    released = released_image(registry, reference.repository, result.digest, plan)
    echo(
        f"rebuild: {plan.image} at revision {plan.revision[:12]}, SOURCE_DATE_EPOCH {plan.epoch}, "
        f"base {plan.base_id[:19]}, {len(plan.packages)} Debian packages"
    )
    check_packages_served(plan)
    echo(f"  ok     inputs       every recorded package version is still served by {plan.mirror}")
    engine = Engine.connect()
    rebuilt = rebuild(engine, plan, repo=repo, on_line=progress_printer("  ") if verbose else None)
    difference = compare(
        released.plan,
        rebuilt.image_id,
        rebuilt.diff_ids,
        released=released.layer,
        rebuilt=rebuilt.layers.__getitem__,
    )
    if difference:
        echo(f"  FAILED rebuild      {rebuilt.image_id} is not {plan.image_id}")
        raise NotVerified(
            f"{reference}: the rebuilt image differs from the released one: {difference}",
            hint="compare the build records with `harden build-diff`; an input the records do not "
            "name, or a file the build writes differently each time, makes the difference",
        )
    echo(f"  ok     rebuild      same image id {rebuilt.image_id}")
    echo("reproduced: the image built again from its recorded inputs is the released image")
