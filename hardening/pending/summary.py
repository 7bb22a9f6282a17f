"""Lines for people: what the update sources found, as `harden run` and `harden scan` print it."""

from __future__ import annotations

from collections.abc import Sequence

from hardening.pending.findings import facts_of, is_pending, is_unknown
from hardening.pending.interface import CheckState, PendingCheck

SHOWN = 10


def pending_lines(checks: Sequence[PendingCheck]) -> list[str]:
    lines: list[str] = []
    for check in checks:
        if check.state is CheckState.UNAVAILABLE:
            lines.append(f"pending updates: unknown ({check.source}): {check.unavailable}")
            continue
        pending = [f for f in check.findings if is_pending(f)]
        security = [f for f in pending if facts_of(f).security]
        unknown = [f for f in check.findings if is_unknown(f)]
        cves = {c for f in security for c in dict(f.properties).get("cves", "").split()}
        cached = ", unchanged archive" if check.cached else ""
        head = f"pending updates ({check.suite}, {check.source}{cached}): "
        if not pending and not unknown:
            lines.append(head + "none")
            continue
        gaps = f", {len(unknown)} packages not compared" if unknown else ""
        lines.append(head + f"{len(pending)} ({len(security)} security, {len(cves)} CVEs){gaps}")
        for finding in security[:SHOWN]:
            props = dict(finding.properties)
            named = props.get("cves") or "no CVE named"
            lines.append(
                f"  {finding.package} {finding.installed_version} → {finding.fixed_version} "
                f"{props.get('suite', '')}: {named}; first seen {props.get('first_seen', '?')}"
            )
        if len(security) > SHOWN:
            lines.append(f"  … and {len(security) - SHOWN} more security updates")
        for finding in unknown[:SHOWN]:
            lines.append(f"  not compared: {finding.message}")
    return lines
