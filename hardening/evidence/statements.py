"""In-toto statements, the kinds of attestation we attach, and cosign's simple-signing payload.

Every attestation is an in-toto Statement v1 whose one subject is the pushed manifest digest.
The predicate types are the ones `cosign verify-attestation --type` knows (cyclonedx,
slsaprovenance1, openvex); the gate record has a type of its own.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# Statements written by cosign 2.x itself still say v0.1; we read both.
STATEMENT_TYPES = frozenset({STATEMENT_TYPE, "https://in-toto.io/Statement/v0.1"})
PROJECT_URI = "https://github.com/hardening-dev/hardening"

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
# cosign's layer annotations: the base64 signature (empty on attestations, whose signature is in
# the DSSE envelope) and the predicate type, so a reader can pick an attestation without opening it.
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"


class Attestation(enum.Enum):
    """What `harden release` attests about every pushed digest; all of them are required."""

    SBOM = "sbom"
    PROVENANCE = "provenance"
    VEX = "openvex"
    GATE = "gate"

    @property
    def predicate_type(self) -> str:
        match self:
            case Attestation.SBOM:
                return "https://cyclonedx.org/bom"
            case Attestation.PROVENANCE:
                return "https://slsa.dev/provenance/v1"
            case Attestation.VEX:
                return "https://openvex.dev/ns"
            case Attestation.GATE:
                return f"{PROJECT_URI}/attestations/gate/v1"
            case _:
                assert_never(self)

    @property
    def cosign_type(self) -> str:
        """The value of `cosign verify-attestation --type` that selects this attestation."""
        match self:
            case Attestation.SBOM:
                return "cyclonedx"
            case Attestation.PROVENANCE:
                return "slsaprovenance1"
            case Attestation.VEX:
                return "openvex"
            case Attestation.GATE:
                return self.predicate_type
            case _:
                assert_never(self)

    @classmethod
    def by_predicate_type(cls, predicate_type: str) -> Attestation | None:
        return next((kind for kind in cls if kind.predicate_type == predicate_type), None)


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces: the same document always gives the same bytes and digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def hex_of(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return value


def signature_tag(digest: str) -> str:
    """cosign's tag for the signatures of ``digest``, in the image's own repository."""
    return f"sha256-{hex_of(digest)}.sig"


def attestation_tag(digest: str) -> str:
    return f"sha256-{hex_of(digest)}.att"


def statement(subject_name: str, digest: str, kind: Attestation, predicate: Mapping[str, Any]) -> bytes:
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": hex_of(digest)}}],
        "predicateType": kind.predicate_type,
        "predicate": predicate,
    }
    return canonical_json(doc)


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    subject_digests: tuple[str, ...]  # "sha256:<hex>" of every subject
    predicate: Mapping[str, Any]


def parse_statement(payload: bytes) -> Statement:
    """Read an in-toto statement; ValueError names what is wrong."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the payload is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
        raise ValueError("the payload is not an in-toto statement")
    predicate_type = doc.get("predicateType")
    predicate = doc.get("predicate")
    subjects = doc.get("subject")
    if not isinstance(predicate_type, str) or not isinstance(predicate, dict):
        raise ValueError("the statement has no predicateType or predicate")
    if not isinstance(subjects, list) or not subjects:
        raise ValueError("the statement has no subject")
    digests = []
    for subject in subjects:
        value = subject.get("digest", {}).get("sha256") if isinstance(subject, dict) else None
        if not isinstance(value, str):
            raise ValueError("a subject of the statement has no sha256 digest")
        digests.append(f"sha256:{value}")
    return Statement(predicate_type, tuple(digests), predicate)


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """cosign's payload for an image signature: the signed claim is the manifest digest."""
    hex_of(digest)
    doc = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": None,
    }
    return canonical_json(doc)


def signed_digest(payload: bytes) -> str:
    """The manifest digest a simple-signing payload claims; ValueError when it is not one."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the signed payload is not JSON: {exc}") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != SIMPLE_SIGNING_TYPE:
        raise ValueError("the signed payload is not a cosign image signature")
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str):
        raise ValueError("the signed payload names no manifest digest")
    return digest
