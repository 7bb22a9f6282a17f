"""The things that flow out of policy checks and scanners: findings and their severities."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from hardening import __version__


class Severity(enum.IntEnum):
    """Ordered so that ``a >= b`` means "at least as severe"."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class Origin(enum.Enum):
    POLICY = "policy"
    SCANNER = "scanner"
    # What the package archive has that the image lacks (a pending update): neither a policy
    # violation nor a vulnerability match, and the gate judges it by age, not by severity.
    ARCHIVE = "archive"


DB_SOURCES = ("pulled", "built", "merged", "unknown")


@dataclass(frozen=True)
class DbIdentity:
    """Which vulnerability data a scanner read, as every record and report names it.

    Every field is optional (a scanner without such data, or a record from before a field
    existed); ``to_json`` writes only the fields that are set. Where the data came from:
    ``source`` says pulled (``repository`` and ``manifest_digest`` of the artifact), built
    (``inputs``: what it was built from) or merged (both: the base DB's artifact and the inputs).
    """

    updated_at: str | None = None  # when the data was built (Trivy's metadata UpdatedAt)
    next_update: str | None = None  # when its publisher promises the next one
    digest: str | None = None  # content digest of the local copy, which identifies it exactly
    source: str | None = None  # one of DB_SOURCES
    repository: str | None = None  # where a pulled DB (or a merged DB's base) came from
    manifest_digest: str | None = None  # the pulled artifact's manifest digest
    inputs: tuple[str, ...] = ()  # what a built or merged DB holds, one line per input
    age_seconds: int | None = None  # how old the data was when the scan ran

    def to_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "updated_at": self.updated_at,
            "next_update": self.next_update,
            "digest": self.digest,
            "source": self.source,
            "repository": self.repository,
            "manifest_digest": self.manifest_digest,
            "inputs": list(self.inputs) or None,
            "age_seconds": self.age_seconds,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_json(cls, doc: object) -> DbIdentity:
        """The inverse of ``to_json``, strictly: ``ValueError("<field>: <problem>")`` otherwise."""
        if not isinstance(doc, dict):
            raise ValueError(": expected an object")
        unknown = sorted(set(doc) - _DB_FIELDS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field")
        for key in _DB_TEXT_FIELDS:
            if key in doc and not isinstance(doc[key], str):
                raise ValueError(f"{key}: expected a string")
        if "source" in doc and doc["source"] not in DB_SOURCES:
            raise ValueError(f"source: expected one of {', '.join(DB_SOURCES)}")
        inputs = doc.get("inputs", [])
        if not isinstance(inputs, list) or not all(isinstance(item, str) for item in inputs):
            raise ValueError("inputs: expected a list of strings")
        age = doc.get("age_seconds")
        if age is not None and (type(age) is not int or age < 0):
            raise ValueError("age_seconds: expected a whole number of seconds, not negative")
        return cls(
            **{key: doc[key] for key in _DB_TEXT_FIELDS if key in doc},
            inputs=tuple(inputs),
            age_seconds=age,
        )


_DB_TEXT_FIELDS = ("updated_at", "next_update", "digest", "source", "repository", "manifest_digest")
_DB_FIELDS = frozenset({*_DB_TEXT_FIELDS, "inputs", "age_seconds"})


@dataclass(frozen=True)
class ToolInfo:
    """The tool that produced findings: a scanner, or this tool's own policy checks.

    ``name`` is what SARIF shows as the run's driver, and what a ``Finding.tool`` refers to.
    """

    name: str
    version: str
    information_uri: str
    db: DbIdentity | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "information_uri": self.information_uri,
        }
        if self.db is not None:
            data["db"] = self.db.to_json()
        return data


# The tool behind policy findings: this one.
HARDENING_TOOL = ToolInfo("hardening", __version__, "https://github.com/hardening-dev/hardening")


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A line in a file of this repository (paths relative to the repository root)."""

    path: str
    line: int = 1
    end_line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Finding:
    """One problem found in one image, by a policy check or a scanner."""

    origin: Origin
    rule_id: str
    severity: Severity
    message: str
    image: str
    title: str = ""
    package: str | None = None
    installed_version: str | None = None
    fixed_version: str | None = None
    package_type: str | None = None  # "debian", "python-pkg", ...
    image_path: str | None = None  # path inside the image (file, site-packages dir, ...)
    layer: str | None = None
    cvss_score: float | None = None
    status: str | None = None  # scanner status: fixed, affected, will_not_fix ...
    primary_url: str | None = None
    references: tuple[str, ...] = ()
    description: str = ""
    location: SourceLocation | None = None  # rendered Dockerfile line responsible
    template_location: SourceLocation | None = None  # the template line behind it
    suppressed_by: str | None = None  # reason text of the suppression, when suppressed
    properties: tuple[tuple[str, str], ...] = field(default=())
    tool: str | None = None  # ToolInfo.name of the tool that found it; None in older records

    @property
    def fixable(self) -> bool:
        return bool(self.fixed_version)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """Identity of a finding across runs: independent of image ids, tags and times."""
        return (
            self.origin.value,
            self.rule_id,
            self.package or "",
            self.installed_version or "",
            self.image_path or "",
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "origin": self.origin.value,
            "rule_id": self.rule_id,
            "severity": self.severity.label,
            "title": self.title,
            "message": self.message,
            "image": self.image,
        }
        optional: dict[str, Any] = {
            "package": self.package,
            "installed_version": self.installed_version,
            "fixed_version": self.fixed_version,
            "package_type": self.package_type,
            "image_path": self.image_path,
            "layer": self.layer,
            "cvss_score": self.cvss_score,
            "status": self.status,
            "primary_url": self.primary_url,
            "description": self.description or None,
            "suppressed_by": self.suppressed_by,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        if self.references:
            data["references"] = list(self.references)
        if self.location:
            data["location"] = {"path": self.location.path, "line": self.location.line}
        if self.template_location:
            data["template_location"] = {
                "path": self.template_location.path,
                "line": self.template_location.line,
            }
        if self.properties:
            data["properties"] = dict(self.properties)
        if self.tool is not None:
            data["tool"] = self.tool
        return data


def with_tool(findings: Iterable[Finding], tool: str) -> tuple[Finding, ...]:
    """The findings, each marked as found by ``tool`` (a ``ToolInfo.name``)."""
    return tuple(finding if finding.tool == tool else replace(finding, tool=tool) for finding in findings)


class Acceptance(enum.Enum):
    """Why the gate does not count a finding: an accepted risk, recorded but not open."""

    SUPPRESSED = "suppressed"  # a suppression that has not expired matches it
    BASELINED = "baselined"  # its key is in the image's baseline


def acceptance(finding: Finding, baseline: Collection[tuple[str, ...]]) -> Acceptance | None:
    """What the gate made of ``finding``: suppressed first (as the gate checks), then baselined."""
    if finding.suppressed_by is not None:
        return Acceptance.SUPPRESSED
    if finding.key in baseline:
        return Acceptance.BASELINED
    return None
