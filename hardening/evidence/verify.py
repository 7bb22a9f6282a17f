"""`harden verify`: is this image ours, signed, fully attested and passed by the gate?

Checks, for the manifest digest the reference names (a tag is resolved to it first):

- the signature (``sha256-<digest>.sig``): a simple-signing payload claiming exactly this digest,
  signed by the key;
- every attestation (``sha256-<digest>.att``): its blob is there and matches its digest, the DSSE
  signature verifies with the key, the in-toto statement's subject is this digest;
- one attestation of every kind is present (SBOM, provenance, OpenVEX, gate record), and the gate
  record says pass for exactly this digest.

A check that fails is a definite "no" (exit 1); a registry that cannot answer is a fault (exit 3,
``RegistryError`` raised by the registry client).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from hardening.errors import UsageError
from hardening.evidence import dsse
from hardening.evidence.keys import PublicKey
from hardening.evidence.oci import Registry, sha256_digest
from hardening.evidence.statements import (
    PREDICATE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    Attestation,
    attestation_tag,
    parse_statement,
    signature_tag,
    signed_digest,
)

_REFERENCE = re.compile(
    r"^(?P<host>(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?)/"
    r"(?P<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True)
class ImageRef:
    host: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> ImageRef:
    match = _REFERENCE.match(text)
    if match is None or (
        "." not in match["host"] and ":" not in match["host"] and match["host"] != "localhost"
    ):
        raise UsageError(
            f"{text!r} is not HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]",
            hint="name the registry too, e.g. 127.0.0.1:5000/hardening/python-secure:3.11",
        )
    return ImageRef(match["host"], match["repository"], match["tag"], match["digest"])


@dataclass(frozen=True)
class Check:
    subject: str  # "image", "signature", or an attestation kind
    ok: bool
    detail: str


@dataclass(frozen=True)
class Verification:
    reference: str
    digest: str
    checks: tuple[Check, ...]
    # The predicate of every attestation whose checks passed, by kind (a rebuild reads the
    # provenance from here: signed, and about this digest).
    predicates: Mapping[Attestation, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _layers(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    layers = manifest.get("layers")
    return [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []


def _fetch(
    registry: Registry, repository: str, layer: Mapping[str, Any], what: str
) -> tuple[bytes | None, str]:
    digest = layer.get("digest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        return None, f"{what}: the manifest names no sha256 blob"
    data = registry.blob(repository, digest)
    if data is None:
        return (
            None,
            f"{what}: blob {digest} is missing from the registry (the tag is there, its content is not)",
        )
    if sha256_digest(data) != digest:
        return None, f"{what}: blob {digest} does not match its digest (it is {sha256_digest(data)})"
    return data, ""


def _signature_check(registry: Registry, ref: ImageRef, digest: str, key: PublicKey) -> Check:
    tag = signature_tag(digest)
    manifest = registry.manifest(ref.repository, tag)
    if manifest is None:
        return Check("signature", False, f"no signature: tag {tag} is not in {ref.host}/{ref.repository}")
    doc = _json(manifest.data)
    layers = [layer for layer in _layers(doc or {}) if layer.get("mediaType") == SIMPLE_SIGNING_MEDIA_TYPE]
    if not layers:
        return Check("signature", False, f"{tag} holds no cosign signature layer")
    problems = []
    for index, layer in enumerate(layers):
        what = f"{tag} layer {index}"
        payload, problem = _fetch(registry, ref.repository, layer, what)
        if payload is None:
            problems.append(problem)
            continue
        encoded = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        try:
            signature = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"{what}: the signature annotation is not base64")
            continue
        if not key.verify(signature, payload):
            problems.append(f"{what}: the signature does not verify with key {key.fingerprint}")
            continue
        try:
            claimed = signed_digest(payload)
        except ValueError as exc:
            problems.append(f"{what}: {exc}")
            continue
        if claimed != digest:
            problems.append(f"{what}: the signature is for {claimed}, not {digest}")
            continue
        return Check("signature", True, f"signed by key {key.fingerprint} ({tag})")
    return Check("signature", False, "; ".join(problems))


def _summary(kind: Attestation, predicate: Mapping[str, Any], digest: str) -> tuple[bool, str]:
    match kind:
        case Attestation.SBOM:
            components = predicate.get("components")
            count = len(components) if isinstance(components, list) else 0
            return True, f"CycloneDX {predicate.get('specVersion', '?')}, {count} components"
        case Attestation.PROVENANCE:
            run = predicate.get("runDetails") or {}
            builder = (run.get("builder") or {}).get("version") or {}
            meta = run.get("metadata") or {}
            revision = (
                (predicate.get("buildDefinition") or {}).get("externalParameters", {}).get("source", {})
            )
            rev = str(revision.get("revision", "?"))[:12] if isinstance(revision, dict) else "?"
            return True, (
                f"built by harden {builder.get('harden', '?')} from revision {rev}, "
                f"{meta.get('startedOn', '?')} to {meta.get('finishedOn', '?')}"
            )
        case Attestation.VEX:
            statements = predicate.get("statements")
            statuses = (
                Counter(str(s.get("status")) for s in statements if isinstance(s, dict))
                if isinstance(statements, list)
                else Counter()
            )
            text = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "none"
            return True, f"{sum(statuses.values())} statements ({text})"
        case Attestation.GATE:
            image = predicate.get("image") or {}
            counts = predicate.get("counts") or {}
            database = predicate.get("database") or {}
            age = database.get("age_seconds_at_scan")
            age_text = f", {int(age) // 3600} h old at scan" if isinstance(age, int) else ""
            text = (
                f"{predicate.get('decision')}: {counts.get('counted')} counted, {counts.get('suppressed')} "
                f"suppressed, {counts.get('baselined')} baselined; DB updated "
                f"{database.get('updated_at', 'unknown')}{age_text}"
            )
            if image.get("digest") != digest:
                return False, f"the gate record is for {image.get('digest')}, not {digest}"
            if predicate.get("passed") is not True or predicate.get("decision") != "pass":
                return False, f"the gate did not pass: {text}"
            return True, text
        case _:
            assert_never(kind)


def _attestation_checks(
    registry: Registry,
    ref: ImageRef,
    digest: str,
    key: PublicKey,
    predicates: dict[Attestation, Mapping[str, Any]],
) -> list[Check]:
    tag = attestation_tag(digest)
    manifest = registry.manifest(ref.repository, tag)
    if manifest is None:
        return [
            Check("attestations", False, f"no attestations: tag {tag} is not in {ref.host}/{ref.repository}")
        ]
    checks: list[Check] = []
    seen: set[Attestation] = set()
    for index, layer in enumerate(_layers(_json(manifest.data) or {})):
        declared = str((layer.get("annotations") or {}).get(PREDICATE_ANNOTATION, ""))
        kind = Attestation.by_predicate_type(declared)
        subject = kind.value if kind else f"attestation {index}"
        what = f"{tag} layer {index} ({declared or 'no predicateType'})"
        data, problem = _fetch(registry, ref.repository, layer, what)
        if data is None:
            checks.append(Check(subject, False, problem))
            continue
        try:
            envelope = dsse.parse(data)
        except dsse.EnvelopeError as exc:
            checks.append(Check(subject, False, f"{what}: not a DSSE envelope: {exc}"))
            continue
        if not envelope.verified_by(key):
            checks.append(
                Check(subject, False, f"{what}: the signature does not verify with key {key.fingerprint}")
            )
            continue
        try:
            statement = parse_statement(envelope.payload)
        except ValueError as exc:
            checks.append(Check(subject, False, f"{what}: {exc}"))
            continue
        if digest not in statement.subject_digests:
            others = ", ".join(statement.subject_digests)
            checks.append(Check(subject, False, f"{what}: the statement is about {others}, not {digest}"))
            continue
        if declared and statement.predicate_type != declared:
            checks.append(
                Check(subject, False, f"{what}: the statement's predicateType is {statement.predicate_type}")
            )
            continue
        kind = Attestation.by_predicate_type(statement.predicate_type)
        if kind is None:
            checks.append(
                Check(subject, True, f"signed, but of a type we do not check ({statement.predicate_type})")
            )
            continue
        ok, detail = _summary(kind, statement.predicate, digest)
        checks.append(Check(kind.value, ok, detail))
        seen.add(kind)
        if ok:
            predicates[kind] = statement.predicate
    for kind in Attestation:
        if kind not in seen and not any(check.subject == kind.value for check in checks):
            checks.append(Check(kind.value, False, f"no {kind.predicate_type} attestation for {digest}"))
    return checks


def verify(registry: Registry, ref: ImageRef, key: PublicKey) -> Verification:
    reference = str(ref)
    manifest = registry.manifest(ref.repository, ref.digest or ref.tag or "latest")
    if manifest is None:
        return Verification(
            reference, "", (Check("image", False, f"no manifest {reference} in the registry"),)
        )
    digest = manifest.digest
    if ref.digest and ref.digest != digest:
        return Verification(
            reference, digest, (Check("image", False, f"the registry served {digest} for {ref.digest}"),)
        )
    predicates: dict[Attestation, Mapping[str, Any]] = {}
    checks = [
        Check("image", True, f"{manifest.media_type or 'manifest'} {digest}"),
        _signature_check(registry, ref, digest, key),
        *_attestation_checks(registry, ref, digest, key, predicates),
    ]
    return Verification(reference, digest, tuple(checks), predicates)
