"""CVSS v3.0/v3.1 base scores, computed from the vector as the specification defines them.

OSV records carry a CVSS vector but not its score; Trivy's DB holds both, and derives a
severity from the score when the source gives no severity name.
"""

from __future__ import annotations

import math


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of ``vector``; ``ValueError`` if it is not one."""
    parts = vector.strip().rstrip("/").split("/")
    version = parts[0]
    if version not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, value = part.partition(":")
        if not sep or name in metrics:
            raise ValueError(f"malformed metric {part!r} in {vector!r}")
        metrics[name] = value
    try:
        scope_changed = {"U": False, "C": True}[metrics["S"]]
        av = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}[metrics["AV"]]
        ac = {"L": 0.77, "H": 0.44}[metrics["AC"]]
        pr = {"N": 0.85, "L": 0.68 if scope_changed else 0.62, "H": 0.5 if scope_changed else 0.27}[
            metrics["PR"]
        ]
        ui = {"N": 0.85, "R": 0.62}[metrics["UI"]]
        cia = [{"H": 0.56, "L": 0.22, "N": 0.0}[metrics[m]] for m in ("C", "I", "A")]
    except KeyError as error:
        raise ValueError(f"missing or unknown base metric {error} in {vector!r}") from error
    iss = 1 - (1 - cia[0]) * (1 - cia[1]) * (1 - cia[2])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if scope_changed else impact + exploitability
    roundup = _roundup31 if version == "CVSS:3.1" else _roundup30
    return roundup(min(total, 10.0))


def _roundup31(value: float) -> float:
    # CVSS 3.1 Appendix A: round up to one decimal without floating-point surprises.
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


def _roundup30(value: float) -> float:
    return math.ceil(value * 10) / 10
