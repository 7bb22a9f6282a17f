"""`harden release`: push promoted images to a registry, sign them and attach their evidence."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hardening.cli.app import Context, echo, pass_ctx
from hardening.errors import ExitCode

if TYPE_CHECKING:
    from hardening.release import Pushed


@click.command()
@click.argument("images", nargs=-1)
@click.option("--registry", required=True, metavar="HOST:PORT", help="Registry to push to.")
@click.option(
    "--key",
    "key_path",
    required=True,
    envvar="HARDENING_RELEASE_KEY",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The release private key (`harden keys generate`); its passphrase is read from "
    "$HARDENING_KEY_PASSPHRASE. Env: HARDENING_RELEASE_KEY.",
)
@click.option(
    "--record-history",
    is_flag=True,
    help="Note in scans/history/updates/ which pending updates each pushed image now carries.",
)
@pass_ctx
def release(
    ctx: Context, images: tuple[str, ...], registry: str, key_path: Path, record_history: bool
) -> None:
    """Push the images whose latest `harden run` passed the gate; push nothing for the others.

    Each pushed digest is signed and gets its attestations (SBOM, SLSA provenance, OpenVEX, gate
    record) as cosign's sha256-<digest>.sig and .att tags. Digests and evidence are recorded in
    the run directory (release.json). Exit 1 when an image had no passing run (nothing of it is
    pushed), 2 when the key or a run record is unusable (nothing is pushed), 3 when the registry
    fails.
    """
    from hardening.atomic import write_json
    from hardening.engine.client import Engine
    from hardening.errors import HardeningError
    from hardening.evidence.keys import load_signing_key, passphrase_from_env
    from hardening.evidence.oci import OrasRegistry
    from hardening.evidence.publish import prepare, publish
    from hardening.gate import load_gate
    from hardening.release import check_registry, release_refs
    from hardening.release import release as push_image
    from hardening.run.store import RELEASE_FILE, latest_decision

    check_registry(registry)
    key = load_signing_key(key_path, passphrase_from_env())
    catalog = ctx.catalog
    gate = load_gate(catalog.gate, catalog.root)
    specs = catalog.select(images)
    engine_client = Engine.connect()
    refused = 0
    try:
        plans = [(spec, latest_decision(catalog.output_dir, spec.name)) for spec in specs]
        # Every record the evidence is made from is read and checked before the first push.
        ready = []
        for spec, found in plans:
            if found is None or not found.passed:
                refused += 1
                why = "no gate decision" if found is None else "the gate failed"
                echo(f"{spec.name}: not released ({why} in the latest run); nothing pushed", err=True)
                continue
            ready.append((spec, found, prepare(catalog, spec, found.run.image_dir(spec.name), gate)))
        evidence_registry = OrasRegistry(registry)
        for spec, found, prepared in ready:
            pushed = push_image(engine_client, spec, found.image_id, registry)
            evidence = []
            for digest in sorted({item.digest for item in pushed}):
                try:
                    published = publish(evidence_registry, spec.repository, digest, prepared, key)
                except HardeningError as exc:
                    landed = ", ".join(item.ref for item in pushed if item.digest == digest)
                    exc.message = (
                        f"{spec.name}: pushed {landed} as {digest}, but its evidence was not attached: "
                        f"{exc.message}"
                    )
                    exc.hint = "run `harden release` again; the push is repeatable and replaces the evidence"
                    raise
                evidence.append(
                    {
                        "digest": digest,
                        "signature": f"{published.repository}:{published.signature_tag}",
                        "attestations": f"{published.repository}:{published.attestation_tag}",
                        "predicate_types": [kind.predicate_type for kind in published.attestations],
                        "kinds": [kind.value for kind in published.attestations],
                    }
                )
            record = {
                "registry": registry,
                "image_id": found.image_id,
                "pushed": release_refs(pushed),
                "evidence": evidence,
                "key": key.public.fingerprint,
            }
            write_json(found.run.image_dir(spec.name) / RELEASE_FILE, record)
            if record_history:
                _record_shipped(
                    catalog.output_dir / "history", spec.name, found.run.image_dir(spec.name), pushed
                )
            for item in pushed:
                echo(f"{spec.name}: pushed {item.ref}@{item.digest}")
            for entry in evidence:
                kinds = ", ".join(entry["kinds"])
                echo(
                    f"{spec.name}: signed {entry['signature']} and attested {entry['attestations']} ({kinds})"
                )
    finally:
        engine_client.close()
    if refused:
        sys.exit(ExitCode.GATE_FAILED)


def _record_shipped(history_dir: Path, image: str, image_dir: Path, pushed: Sequence[Pushed]) -> None:
    """The updates first seen missing from earlier releases that this one carries, with its time."""
    from datetime import UTC, datetime

    from hardening.pending.record import read_pending_record
    from hardening.pending.updates import record_released
    from hardening.run.store import PENDING_FILE

    pending = image_dir / PENDING_FILE
    if not pending.is_file():
        echo(
            f"{image}: the run has no {PENDING_FILE} (--no-pending): which pending updates this release "
            "carries is not recorded",
            err=True,
        )
        return
    _image_id, checks = read_pending_record(pending)
    installed: dict[str, str] = {}
    for check in checks:
        installed.update(check.installed)
    if not installed:
        echo(
            f"{image}: the archive check of this run saw no packages; no update is recorded as shipped",
            err=True,
        )
        return
    digest = sorted({item.digest for item in pushed})[0]
    shipped = record_released(
        history_dir,
        image,
        installed,
        released=datetime.now(UTC),
        digest=digest,
        refs=sorted(item.ref for item in pushed),
    )
    for event in shipped:
        echo(f"{image}: ships {event.source} {event.version} ({event.suite}), first seen missing earlier")
