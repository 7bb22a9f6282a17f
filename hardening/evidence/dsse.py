"""DSSE envelopes (Dead Simple Signing Envelope, v1), the wrapper cosign uses for attestations.

The signature covers the pre-authentication encoding (PAE) of the payload type and the payload, so
a signature over one payload type can never be replayed as another.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from hardening.evidence.keys import PublicKey, SigningKey

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


class EnvelopeError(ValueError):
    """Not a DSSE envelope we can read; the message says which part."""


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    def to_json(self) -> bytes:
        doc = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": "", "sig": base64.b64encode(s).decode("ascii")} for s in self.signatures
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode("utf-8")

    def verified_by(self, key: PublicKey) -> bool:
        message = pae(self.payload_type, self.payload)
        return any(key.verify(signature, message) for signature in self.signatures)


def sign(key: SigningKey, payload_type: str, payload: bytes) -> Envelope:
    return Envelope(payload_type, payload, (key.sign(pae(payload_type, payload)),))


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{field} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        # Some writers use the URL-safe alphabet; the DSSE spec allows either.
        standard = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
        try:
            return base64.b64decode(standard, validate=True)
        except (binascii.Error, ValueError):
            raise EnvelopeError(f"{field} is not valid base64") from None


def parse(data: bytes) -> Envelope:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EnvelopeError("not a JSON object")
    payload_type = doc.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise EnvelopeError("payloadType is missing")
    payload = _b64(doc.get("payload"), "payload")
    raw_signatures = doc.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise EnvelopeError("signatures is missing or empty")
    signatures = []
    for index, item in enumerate(raw_signatures):
        if not isinstance(item, dict):
            raise EnvelopeError(f"signatures[{index}] is not an object")
        signatures.append(_b64(item.get("sig"), f"signatures[{index}].sig"))
    return Envelope(payload_type, payload, tuple(signatures))
