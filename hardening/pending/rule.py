"""The gate's rule for pending updates: ``max_pending_security_days``.

Pending updates are not vulnerabilities a scanner matched, so ``fail_on`` and ``max`` do not
count them (the same CVE often appears as both; counting it twice would be wrong). With
``max_pending_security_days: N`` the gate fails when

* a security update has been pending longer than N days — counted from the first time the
  archive was seen carrying it, to when this image was compared with the archive (an update
  whose first sighting is unknown counts as overdue);
* whether anything is pending is unknown: the archive could not be read or did not verify, a
  package could not be compared (``HARDEN-REBUILD-UNKNOWN``), or no check ran at all.

Suppressions and the baseline apply to these findings as to any other. Without the setting,
pending updates and gaps are reported and the gate does not act on them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hardening.findings import Finding
from hardening.pending.findings import facts_of, is_pending, is_unknown


def pending_reasons(
    open_findings: Sequence[Finding],
    *,
    checked: bool,
    max_days: int | None,
    max_listed: int = 20,
) -> list[str]:
    """The gate's reasons to fail over pending updates; ``open_findings`` are neither suppressed
    nor baselined."""
    if max_days is None:
        return []
    setting = f"max_pending_security_days: {max_days}"
    if not checked:
        return [
            f"pending updates were not checked, and the gate depends on them ({setting}): run with "
            "the archive reachable, without --no-pending (`harden report`: a scan directory with "
            "pending.json from `harden scan`)"
        ]
    reasons: list[str] = []
    unknown = [f for f in open_findings if is_unknown(f)]
    if unknown:
        reasons.append(
            f"{len(unknown)} gap{'s leave' if len(unknown) != 1 else ' leaves'} pending security "
            f"updates unknown, and the gate depends on them ({setting})"
        )
        reasons.extend(f"  {_line(f)}" for f in unknown[:max_listed])
        if len(unknown) > max_listed:
            reasons.append(f"  … and {len(unknown) - max_listed} more")
    overdue: list[tuple[Finding, float | None]] = []
    for finding in open_findings:
        if not is_pending(finding):
            continue
        facts = facts_of(finding)
        age = facts.age_days()
        if facts.security and (age is None or age > max_days):
            overdue.append((finding, age))
    if overdue:
        overdue.sort(
            key=lambda item: (-(item[1] if item[1] is not None else float("inf")), item[0].package or "")
        )
        reasons.append(
            f"{len(overdue)} security update{'s' if len(overdue) != 1 else ''} pending for more than "
            f"{max_days} day{'s' if max_days != 1 else ''} since the archive first carried "
            f"{'them' if len(overdue) != 1 else 'it'} ({setting}): rebuild"
        )
        for finding, age in overdue[:max_listed]:
            since = facts_of(finding).first_seen
            when = f"first seen {since.strftime('%Y-%m-%d %H:%M')} UTC" if since else "first sighting unknown"
            days = f", {age:.1f} days" if age is not None else ""
            reasons.append(f"  {_line(finding)}, {when}{days}")
        if len(overdue) > max_listed:
            reasons.append(f"  … and {len(overdue) - max_listed} more")
    return reasons


def _line(finding: Finding) -> str:
    what = finding.rule_id
    if finding.package:
        what += f" in {finding.package} {finding.installed_version or ''}".rstrip()
    if finding.fixed_version:
        what += f" (newer: {finding.fixed_version})"
    elif finding.title:
        what += f" ({finding.title})"
    where = f" at {finding.location}" if finding.location else ""
    return f"{finding.severity.label} {what}{where}"
