"""setuid/setgid files are privilege escalation paths; only allowlisted ones may ship."""

from __future__ import annotations

from hardening.findings import Finding, Severity
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import AllowPaths

SETUID = "HARDEN-SETUID"


class Setuid(ImageCheck[AllowPaths]):
    id = "setuid"
    rules = ((SETUID, "A setuid or setgid file that is not on the policy's allowlist."),)
    default_severity = Severity.MEDIUM
    options_type = AllowPaths

    def check_image(self, ctx: ImageContext[AllowPaths]) -> list[Finding]:
        findings: list[Finding] = []
        for special in ctx.facts.setuid_files:
            if ctx.options.allows(special.path):
                continue
            bits = " and ".join(
                name for name, on in (("setuid", special.setuid), ("setgid", special.setgid)) if on
            )
            findings.append(
                ctx.finding(
                    SETUID,
                    f"{special.path} is {bits} (mode {special.mode:04o}, owner {special.uid}:{special.gid}) "
                    "and not on the allowlist",
                    title="setuid/setgid file not on the allowlist",
                    where=ctx.locate_path(special.path, special.layer),
                    image_path=special.path,
                    layer=ctx.layer_digest(special.layer),
                )
            )
        return findings
