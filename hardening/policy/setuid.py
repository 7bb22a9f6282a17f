"""setuid/setgid files are privilege escalation paths; only allowlisted ones may ship."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hardening.findings import Finding
from hardening.policy.interface import Check, CheckContext

SETUID = "HARDEN-SETUID"


def allowed(path: str, patterns: frozenset[str]) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in patterns)


class Setuid(Check):
    id = "setuid"
    rules = ((SETUID, "A setuid or setgid file that is not on the policy's allowlist."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.facts is None:
            return []
        findings: list[Finding] = []
        for special in ctx.facts.setuid_files:
            if allowed(special.path, ctx.config.allow):
                continue
            bits = " and ".join(
                name for name, on in (("setuid", special.setuid), ("setgid", special.setgid)) if on
            )
            where = ctx.locator.locate_path(special.path, special.layer) if ctx.locator else None
            findings.append(
                ctx.finding(
                    SETUID,
                    f"{special.path} is {bits} (mode {special.mode:04o}, owner {special.uid}:{special.gid}) "
                    "and not on the allowlist",
                    title="setuid/setgid file not on the allowlist",
                    where=where,
                    image_path=special.path,
                    layer=ctx.layer_digest(special.layer),
                )
            )
        return findings
