"""Odd entries in the image archive (``../`` paths, absolute names, devices …) are suspicious."""

from __future__ import annotations

from hardening.findings import Finding, Severity
from hardening.policy.interface import ImageCheck, ImageContext
from hardening.policy.options import AllowPaths

ANOMALY = "HARDEN-IMAGE-ANOMALY"


class Anomalies(ImageCheck[AllowPaths]):
    id = "anomalies"
    rules = ((ANOMALY, "The image archive has a suspicious entry (path traversal, device file …)."),)
    default_severity = Severity.HIGH
    options_type = AllowPaths

    def check_image(self, ctx: ImageContext[AllowPaths]) -> list[Finding]:
        findings: list[Finding] = []
        for anomaly in ctx.facts.anomalies:
            if ctx.options.allows(anomaly.path):
                continue
            in_layer = f" in layer {anomaly.layer}" if anomaly.layer is not None else " in the archive"
            detail = f": {anomaly.detail}" if anomaly.detail else ""
            findings.append(
                ctx.finding(
                    ANOMALY,
                    f"suspicious entry {anomaly.path!r}{in_layer} ({anomaly.kind.value}){detail}",
                    title=f"Suspicious image entry: {anomaly.kind.value}",
                    where=ctx.locate_path(anomaly.path, anomaly.layer),
                    image_path=anomaly.path,
                    layer=ctx.layer_digest(anomaly.layer),
                    properties=(("anomaly", anomaly.kind.value),),
                )
            )
        return findings
