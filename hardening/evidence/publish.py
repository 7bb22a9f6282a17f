"""Attach the signature and the attestations to a pushed manifest digest, in cosign's tag scheme.

Order matters, because a registry cannot take several manifests at once:

1. everything is read and checked before the image is pushed (``prepare``): a run record that
   is missing or disagrees stops the release before anything reaches the registry;
2. the image's manifest must be in the registry under the digest before any evidence names it;
3. every blob is uploaded before any evidence manifest refers to it;
4. the ``.att`` manifest goes first, the ``.sig`` manifest last: `harden verify` (and cosign)
   require both, so evidence cut off half-way never verifies as complete. The manifests this
   attempt stored are deleted again when a later step fails, where the registry still answers.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from hardening import __version__
from hardening.catalog import Catalog, ImageSpec
from hardening.errors import HardeningError, RegistryError
from hardening.evidence import dsse
from hardening.evidence.gaterecord import gate_record
from hardening.evidence.inputs import RunRecords, load_run_records
from hardening.evidence.keys import SigningKey
from hardening.evidence.oci import OCI_CONFIG, OCI_MANIFEST, Registry, sha256_digest
from hardening.evidence.provenance import provenance
from hardening.evidence.statements import (
    PREDICATE_ANNOTATION,
    PROJECT_URI,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Attestation,
    attestation_tag,
    canonical_json,
    signature_tag,
    simple_signing_payload,
    statement,
)
from hardening.evidence.vex import VexEntry, openvex_document, vex_entries
from hardening.gate import GatePolicy, load_baseline
from hardening.run.store import FINDINGS_FILE


@dataclass(frozen=True)
class Prepared:
    """Everything the evidence of one image is made from, checked; only the digest is missing."""

    records: RunRecords
    vex: tuple[VexEntry, ...]
    author: str

    def predicates(self, repository: str, digest: str) -> dict[Attestation, Mapping[str, Any]]:
        records = self.records
        timestamp = str(records.scan.get("scanned_at") or records.build.get("finished_at"))
        result: dict[Attestation, Mapping[str, Any]] = {}
        for kind in Attestation:
            match kind:
                case Attestation.SBOM:
                    result[kind] = records.sbom
                case Attestation.PROVENANCE:
                    result[kind] = provenance(
                        records.build, run_id=records.run_id, fallback_version=__version__
                    )
                case Attestation.VEX:
                    result[kind] = openvex_document(
                        self.vex,
                        repository=repository,
                        digest=digest,
                        author=self.author,
                        timestamp=timestamp,
                        tooling=f"harden {__version__}",
                    )
                case Attestation.GATE:
                    result[kind] = gate_record(
                        gate=records.gate,
                        scan=records.scan,
                        counts=records.counts,
                        image=records.image,
                        image_id=records.image_id,
                        repository=repository,
                        digest=digest,
                        run_id=records.run_id,
                    )
                case _:
                    assert_never(kind)
        return result


def prepare(catalog: Catalog, spec: ImageSpec, image_dir: Path, gate: GatePolicy) -> Prepared:
    records = load_run_records(image_dir, spec.name)
    baseline_file = gate.baseline_dir / f"{spec.name}.json" if gate.baseline_dir else None
    baseline = load_baseline(baseline_file) if baseline_file else frozenset()
    entries = vex_entries(
        spec.name,
        records.findings,
        records.sbom,
        gate.suppressions,
        baseline,
        findings_file=image_dir / FINDINGS_FILE,
        baseline_file=baseline_file.relative_to(catalog.root) if baseline_file else None,
    )
    return Prepared(records, entries, catalog.source or PROJECT_URI)


@dataclass(frozen=True)
class Published:
    repository: str  # HOST/REPOSITORY
    digest: str
    signature_tag: str
    attestation_tag: str
    attestations: tuple[Attestation, ...]


def _layer(media_type: str, data: bytes, annotations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "size": len(data),
        "digest": sha256_digest(data),
        "annotations": dict(annotations),
    }


def _config(layers: list[dict[str, Any]]) -> bytes:
    """An image config naming the layers, as cosign writes it (the registry wants a config blob)."""
    epoch = "0001-01-01T00:00:00Z"
    return canonical_json(
        {
            "architecture": "",
            "config": {},
            "created": epoch,
            "history": [{"created": epoch} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        }
    )


def _manifest(config: bytes, layers: list[dict[str, Any]]) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256_digest(config)},
            "layers": layers,
        }
    )


def publish(
    registry: Registry, repository: str, digest: str, prepared: Prepared, key: SigningKey
) -> Published:
    """Sign ``digest`` and attach the attestations; RegistryError (exit 3) says what landed."""
    reference = f"{registry.host}/{repository}"
    found = registry.manifest(repository, digest)
    if found is None or found.digest != digest:
        raise RegistryError(
            f"{reference}@{digest} is not in the registry; no evidence was attached to it",
            hint="run `harden release` again",
        )
    blobs: list[bytes] = []
    att_layers: list[dict[str, Any]] = []
    predicates = prepared.predicates(reference, digest)
    for kind, predicate in predicates.items():
        envelope = dsse.sign(key, dsse.INTOTO_PAYLOAD_TYPE, statement(reference, digest, kind, predicate))
        data = envelope.to_json()
        blobs.append(data)
        att_layers.append(
            _layer(
                dsse.MEDIA_TYPE, data, {SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: kind.predicate_type}
            )
        )
    payload = simple_signing_payload(reference, digest)
    signature = base64.b64encode(key.sign(payload)).decode("ascii")
    sig_layers = [_layer(SIMPLE_SIGNING_MEDIA_TYPE, payload, {SIGNATURE_ANNOTATION: signature})]
    att_config, sig_config = _config(att_layers), _config(sig_layers)
    blobs += [payload, att_config, sig_config]

    for blob in blobs:
        registry.put_blob(repository, blob)
    att_tag, sig_tag = attestation_tag(digest), signature_tag(digest)
    att_digest = registry.put_manifest(repository, att_tag, _manifest(att_config, att_layers), OCI_MANIFEST)
    try:
        registry.put_manifest(repository, sig_tag, _manifest(sig_config, sig_layers), OCI_MANIFEST)
    except HardeningError as exc:
        # Attestations without a signature would be half the evidence; take them back if we can.
        removed = True
        try:
            registry.delete_manifest(repository, att_digest)
        except HardeningError:
            removed = False
        exc.details = f"{reference}:{att_tag} was stored and then " + (
            "deleted again"
            if removed
            else "could NOT be deleted; `harden verify` rejects it without a signature"
        )
        raise
    return Published(reference, digest, sig_tag, att_tag, tuple(predicates))
