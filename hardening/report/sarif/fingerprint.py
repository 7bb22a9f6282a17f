"""``partialFingerprints.primaryLocationLineHash``: stable across rebuilds and line moves.

The hash covers rule id, package, installed version, path in the image, image name without tag
or digest, and the whitespace-normalised text of the responsible line; the caller appends
``:<occurrence>`` so findings equal in all of these stay distinct.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from hardening.findings import Finding
from hardening.report._common import image_name

_FINGERPRINT_VERSION = "hardening-fp-1"
# every finding of a log names the same image or two
_image_name = lru_cache(maxsize=64)(image_name)


def fingerprint_base(finding: Finding, line_text: str | None) -> str:
    normalised_line = " ".join(line_text.split()) if line_text is not None else ""
    material = "\x1f".join(
        (
            _FINGERPRINT_VERSION,
            finding.rule_id,
            finding.package or "",
            finding.installed_version or "",
            finding.image_path or "",
            _image_name(finding.image),
            normalised_line,
        )
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]
