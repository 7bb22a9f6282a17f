"""Pending updates and gaps as findings: ``HARDEN-REBUILD-PENDING`` and ``HARDEN-REBUILD-UNKNOWN``.

Severity: an update the security pocket carries is **high** — Debian issues security uploads
for the fixes it judges worth an advisory, and the image lacks one that is published — and any
other newer version (a point release, ``-updates``) is **low**. Severity is what SARIF, the
Markdown summary and GitHub's alert list show; the gate judges pending updates by *age*
(``max_pending_security_days``), not by ``fail_on``: a security update is a reason to rebuild
now, and becomes a reason to block once it has waited too long.

A gap that leaves a pending update possible — the archive or the image could not be read, a
package no pocket carries, a version that is not Debian's — is ``HARDEN-REBUILD-UNKNOWN`` at
**medium**, so "not known" is a visible result rather than an absent one. A gap that only
leaves the CVE list of a pending update unknown is told in that update's own message.

The facts the gate needs (security or not, first sighting, when the archive was read) ride in
the finding's ``properties``, so a finding read back from a record is judged the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hardening.findings import Finding, Origin, Severity

if TYPE_CHECKING:  # the gate reads these findings; it need not load the archive reader
    from hardening.archive.model import Gap, PendingUpdate

PENDING_RULE = "HARDEN-REBUILD-PENDING"
UNKNOWN_RULE = "HARDEN-REBUILD-UNKNOWN"
RULES = frozenset({PENDING_RULE, UNKNOWN_RULE})
_TRACKER = "https://security-tracker.debian.org/tracker/"
_HINT = "rebuild the image on a fresh base (`harden base --force`, then `harden run`)"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def pending_finding(
    update: PendingUpdate,
    *,
    image: str,
    tool: str,
    checked_at: datetime,
    layer: str | None,
    cve_gap: Gap | None,
) -> Finding:
    """One package with a newer version in the archive."""
    kind = "security update" if update.security else "update"
    if update.cves:
        fixes = "it fixes " + ", ".join(update.cves)
        if cve_gap is not None:
            fixes += f" (perhaps more: {cve_gap.kind.meaning})"
    elif cve_gap is not None:
        fixes = f"CVEs unknown ({cve_gap.kind.value}: {cve_gap.detail})"
    elif update.cves_known:
        fixes = "its changelog names no CVE"
    else:
        fixes = "its changelog was not read"
    message = (
        f"{update.suite} has {update.package} {update.candidate_version} (source "
        f"{update.source} {update.candidate_source_version}); the image has "
        f"{update.installed_version}; {fixes}. First seen in the archive {update.first_seen}"
        + (f", uploaded {update.uploaded}" if update.uploaded else "")
        + f". To pick it up: {_HINT}."
    )
    properties = {
        "security": "true" if update.security else "false",
        "pocket": update.pocket,
        "suite": update.suite,
        "source": update.source,
        "candidate_source_version": update.candidate_source_version,
        "installed_source_version": update.installed_source_version,
        "cves": " ".join(update.cves),
        "cves_known": "true" if update.cves_known else "false",
        "first_seen": update.first_seen,
        "checked_at": iso(checked_at),
        **({"uploaded": update.uploaded} if update.uploaded else {}),
        **({"cve_gap": cve_gap.kind.value} if cve_gap is not None else {}),
    }
    return Finding(
        origin=Origin.ARCHIVE,
        rule_id=PENDING_RULE,
        severity=Severity.HIGH if update.security else Severity.LOW,
        title=f"{kind} pending: {update.package} {update.installed_version} → {update.candidate_version}",
        message=message,
        image=image,
        package=update.package,
        installed_version=update.installed_version,
        fixed_version=update.candidate_version,
        package_type="debian",
        layer=layer,
        status="pending",
        primary_url=_TRACKER + "source-package/" + update.source,
        references=tuple(_TRACKER + cve for cve in update.cves),
        description=(
            "The Debian archive the image was built from carries a newer version of this package "
            "than the image has. A security update is judged by how long it has been pending "
            "(max_pending_security_days in the gate), counted from the first time the archive was "
            "seen carrying it."
        ),
        properties=tuple(sorted(properties.items())),
        tool=tool,
    )


def gap_finding(
    gap: Gap, *, image: str, tool: str, checked_at: datetime, package: str | None, version: str | None
) -> Finding:
    """A package whose pending updates could not be told."""
    return _unknown(
        image=image,
        tool=tool,
        checked_at=checked_at,
        title=f"not compared with the archive: {gap.subject}",
        message=f"{gap.subject}: {gap.detail} ({gap.kind.meaning}); a pending update cannot be ruled out.",
        kind=gap.kind.value,
        package=package,
        version=version,
    )


def unavailable_finding(
    reason: str, kind: str, *, image: str, tool: str, checked_at: datetime, what: str
) -> Finding:
    """The whole image: the archive (or the image's package state) could not be read."""
    return _unknown(
        image=image,
        tool=tool,
        checked_at=checked_at,
        title=f"pending updates unknown: {what}",
        message=f"Pending updates are unknown, not none: {reason}",
        kind=kind,
        package=None,
        version=None,
    )


def _unknown(
    *,
    image: str,
    tool: str,
    checked_at: datetime,
    title: str,
    message: str,
    kind: str,
    package: str | None,
    version: str | None,
) -> Finding:
    return Finding(
        origin=Origin.ARCHIVE,
        rule_id=UNKNOWN_RULE,
        severity=Severity.MEDIUM,
        title=title,
        message=message,
        image=image,
        package=package,
        installed_version=version,
        package_type="debian" if package else None,
        description=(
            "Whether the archive has a newer version could not be established. Pending updates "
            "are unknown, not none; a gate that sets max_pending_security_days fails on this."
        ),
        properties=(("checked_at", iso(checked_at)), ("gap", kind)),
        tool=tool,
    )


@dataclass(frozen=True)
class PendingFacts:
    """What the gate reads from a ``HARDEN-REBUILD-PENDING`` finding."""

    security: bool
    first_seen: datetime | None
    checked_at: datetime | None

    def age_days(self) -> float | None:
        if self.first_seen is None or self.checked_at is None:
            return None
        return (self.checked_at - self.first_seen).total_seconds() / 86400


def facts_of(finding: Finding) -> PendingFacts:
    props: Mapping[str, str] = dict(finding.properties)
    return PendingFacts(
        security=props.get("security") == "true",
        first_seen=parse_iso(props.get("first_seen", "")),
        checked_at=parse_iso(props.get("checked_at", "")),
    )


def is_pending(finding: Finding) -> bool:
    return finding.origin is Origin.ARCHIVE and finding.rule_id == PENDING_RULE


def is_unknown(finding: Finding) -> bool:
    return finding.origin is Origin.ARCHIVE and finding.rule_id == UNKNOWN_RULE


def security_pending(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if is_pending(f) and facts_of(f).security]
