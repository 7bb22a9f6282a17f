"""``partialFingerprints.primaryLocationLineHash``: stable across rebuilds and line moves.

The hash covers rule id, package, installed version, path in the image, image name without tag
or digest, and the whitespace-normalised text of the responsible line; the caller appends
``:<occurrence>`` so findings equal in all of these stay distinct.
"""

from __future__ import annotations

import hashlib

from hardening.findings import Finding
from hardening.report._common import image_name

_FINGERPRINT_VERSION = "hardening-fp-1"


def fingerprint_base(finding: Finding, line_text: str | None) -> str:
    normalised_line = " ".join(line_text.split()) if line_text is not None else ""
    material = "\x1f".join(
        (
            _FINGERPRINT_VERSION,
            finding.rule_id,
            finding.package or "",
            finding.installed_version or "",
            finding.image_path or "",
            image_name(finding.image),
            normalised_line,
        )
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]
