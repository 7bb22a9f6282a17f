"""Odd entries in the image archive (``../`` paths, absolute names, devices …) are suspicious."""

from __future__ import annotations

from hardening.findings import Finding
from hardening.policy.interface import Check, CheckContext
from hardening.policy.setuid import allowed

ANOMALY = "HARDEN-IMAGE-ANOMALY"


class Anomalies(Check):
    id = "anomalies"
    rules = ((ANOMALY, "The image archive has a suspicious entry (path traversal, device file …)."),)

    def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.facts is None:
            return []
        findings: list[Finding] = []
        for anomaly in ctx.facts.anomalies:
            if allowed(anomaly.path, ctx.config.allow):
                continue
            where = ctx.locator.locate_path(anomaly.path, anomaly.layer) if ctx.locator else None
            in_layer = f" in layer {anomaly.layer}" if anomaly.layer is not None else " in the archive"
            detail = f": {anomaly.detail}" if anomaly.detail else ""
            findings.append(
                ctx.finding(
                    ANOMALY,
                    f"suspicious entry {anomaly.path!r}{in_layer} ({anomaly.kind.value}){detail}",
                    title=f"Suspicious image entry: {anomaly.kind.value}",
                    where=where,
                    image_path=anomaly.path,
                    layer=ctx.layer_digest(anomaly.layer),
                    properties=(("anomaly", anomaly.kind.value),),
                )
            )
        return findings
