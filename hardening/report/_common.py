"""Helpers shared by the report writers and readers: ordering, image names, strict JSON reading."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from hardening.errors import Location, ReportInputError
from hardening.findings import Finding, Severity

SEVERITIES_DESCENDING: tuple[Severity, ...] = tuple(sorted(Severity, reverse=True))


def usable_cvss(finding: Finding) -> float | None:
    """The CVSS score when it is a real score; scanners have been seen emitting 0-100 and NaN."""
    score = finding.cvss_score
    if score is None or not math.isfinite(score) or not 0.0 <= score <= 10.0:
        return None
    return score


def _order_head(finding: Finding) -> tuple[object, ...]:
    location = finding.location
    score = usable_cvss(finding)
    return (
        # open findings before suppressed ones: truncation must drop accepted risk first
        finding.suppressed_by is not None,
        -int(finding.severity),
        -(score if score is not None else -1.0),
        finding.origin.value,
        finding.rule_id,
        finding.package or "",
        finding.installed_version or "",
        finding.image_path or "",
        location.path if location else "",
        location.line if location else 0,
        finding.message,
        finding.fixed_version or "",
        finding.title,
        finding.suppressed_by or "",
    )


def order_key(finding: Finding) -> tuple[object, ...]:
    """Open before suppressed, most severe first, then content: output never depends on input order."""
    return (*_order_head(finding), repr(finding))


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    """``sorted(findings, key=order_key)``, without paying for ``repr`` of every finding.

    The repr only breaks ties of everything else, which are rare; it is computed for those alone.
    """
    keyed = sorted(((_order_head(f), f) for f in findings), key=itemgetter(0))
    ordered: list[Finding] = []
    for _head, group in groupby(keyed, key=itemgetter(0)):
        tied = [f for _, f in group]
        ordered.extend(sorted(tied, key=repr) if len(tied) > 1 else tied)
    return ordered


def image_name(image: str) -> str:
    """The repository part of an image reference, without tag or digest.

    Tags and digests change on every rebuild; anything that must stay stable across rebuilds
    (fingerprints, categories) is keyed on the name alone.
    """
    name = image.split("@", 1)[0]
    head, sep, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}{sep}{last}"


def kind_of(value: Any) -> str:
    """How a JSON value reads in an error message."""
    return "null" if value is None else type(value).__name__


class JsonReader:
    """Typed access into untrusted decoded JSON; every failure names the file and the field."""

    def __init__(self, source: str | Path, *, hint: str) -> None:
        self.source = source
        self.hint = hint

    def fail(self, field: str, message: str) -> ReportInputError:
        return ReportInputError(message, location=Location(self.source, None, field), hint=self.hint)

    def obj(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(field, f"expected an object, found {kind_of(value)}")
        return value

    def arr(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected an array, found {kind_of(value)}")
        return value

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise self.fail(field, f"expected a string, found {kind_of(value)}")
        return value

    def opt_text(self, mapping: Mapping[str, Any], key: str, field: str) -> str | None:
        value = mapping.get(key)
        return None if value is None else self.text(value, f"{field}.{key}")

    def integer(self, value: Any, field: str, minimum: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(field, f"expected an integer >= {minimum}, found {value!r}")
        return value

    def keys(self, mapping: Mapping[str, Any], allowed: frozenset[str], field: str) -> None:
        unknown = sorted(set(mapping) - allowed)
        if unknown:
            raise self.fail(f"{field}.{unknown[0]}" if field else unknown[0], "unknown field")
