"""SARIF's constants as we use them: versions, levels, severities, size caps, the tool record."""

from __future__ import annotations

import re
from collections.abc import Mapping

from hardening.findings import Origin, Severity
from hardening.findings import ToolInfo as ToolInfo  # the driver of a run, defined with findings
from hardening.report._common import image_name

SARIF_VERSION = "2.1.0"
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"

FALLBACK_SECURITY_SEVERITY: Mapping[Severity, float] = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.UNKNOWN: 0.0,
}

LEVEL_OF: Mapping[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}

# Scanner matches are by version range, which distro backports can fool; policy checks read
# the image directly; a pending update compares the image's dpkg versions with the signed archive.
PRECISION_OF: Mapping[Origin, str] = {
    Origin.SCANNER: "high",
    Origin.POLICY: "very-high",
    Origin.ARCHIVE: "very-high",
}

# GitHub documents no limit on message or help text; these keep one pathological finding from
# eating the 10 MB upload budget.
MAX_MESSAGE_CHARS = 4_000
MAX_HELP_CHARS = 16_000
MAX_HELP_PACKAGES = 50

TEMPLATE_LOCATION_ID = 1
# What the writer appends to a result's message when it has a template line; the reader strips it.
TEMPLATE_SUFFIX = re.compile(r"\n\nTemplate line: \[[^\]]*\]\(1\)\Z")


def default_category(image: str) -> str:
    return f"hardening/{image_name(image)}/"
