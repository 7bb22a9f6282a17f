"""Debian security tracker records → Trivy's ``debian <major>`` advisory values.

Debian's unfixed states are not part of OSV; records carry them the way the security tracker
names them, in ``affected[].ecosystem_specific``: ``{"urgency": "low", "status": "no-dsa"}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hardening.db.osv import Origin, OsvAffected
from hardening.db.ranges import check_debian_version
from hardening.errors import AdvisoryError

ECOSYSTEM = re.compile(r"^Debian:(\d+)(?:\.\d+)*$")
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")

URGENCY = {
    "unimportant": 1,
    "low": 1,
    "medium": 2,
    "high": 3,
    "not yet assigned": 0,
    "end-of-life": 0,
}
# Status numbers are trivy-db's types.Status; names are the security tracker's.
_STATUS = {"unfixed": 2, "no-dsa": 2, "ignored": 5, "postponed": 6, "end-of-life": 7}
_STATUS_AFFECTED = 2


def debian_advisory(affected: OsvAffected, origin: Origin, where: str) -> tuple[dict[str, Any], str | None]:
    """``{"FixedVersion"}`` or, unfixed, ``{"Status", "Severity"}``; and the record's urgency."""
    fixed: list[str] = []
    for r_index, osv_range in enumerate(affected.ranges):
        range_where = f"{where}.ranges[{r_index}]"
        if osv_range.type != "ECOSYSTEM":
            raise AdvisoryError(
                f"range type {osv_range.type} does not apply to Debian",
                location=origin.at(None, f"{range_where}.type"),
            )
        for e_index, event in enumerate(osv_range.events):
            event_where = f"{range_where}.events[{e_index}]"
            if event.fixed is not None:
                check_debian_version(event.fixed, origin, f"{event_where}.fixed")
                fixed.append(event.fixed)
            elif event.introduced is not None:
                if event.introduced != "0":
                    check_debian_version(event.introduced, origin, f"{event_where}.introduced")
            else:
                raise AdvisoryError(
                    "Debian advisories take only introduced and fixed events",
                    location=origin.at(None, event_where),
                )
    if len(fixed) > 1:
        raise AdvisoryError(
            "more than one fixed version for one Debian release",
            location=origin.at(None, f"{where}.ranges"),
            hint="Trivy holds one FixedVersion per release and source package",
        )
    specific = affected.ecosystem_specific or {}
    urgency = _optional_str(specific, "urgency", origin, f"{where}.ecosystem_specific.urgency")
    if urgency is not None and urgency not in URGENCY:
        raise AdvisoryError(
            f"unknown Debian urgency {urgency!r}",
            location=origin.at(None, f"{where}.ecosystem_specific.urgency"),
            hint="one of " + ", ".join(sorted(URGENCY)),
        )
    status = _optional_str(specific, "status", origin, f"{where}.ecosystem_specific.status")
    if status is not None and status not in _STATUS:
        raise AdvisoryError(
            f"unknown Debian status {status!r}",
            location=origin.at(None, f"{where}.ecosystem_specific.status"),
            hint="one of " + ", ".join(sorted(_STATUS)),
        )
    severity = URGENCY.get(urgency or "", 0)
    value: dict[str, Any] = {}
    if fixed:
        value["FixedVersion"] = fixed[0]
    else:
        value["Status"] = _STATUS.get(status or "", _STATUS_AFFECTED)
    if severity:
        value["Severity"] = severity
    return value, urgency


def _optional_str(specific: Mapping[str, Any], key: str, origin: Origin, where: str) -> str | None:
    value = specific.get(key)
    if value is None or isinstance(value, str):
        return value
    raise AdvisoryError("expected a string", location=origin.at(None, where))
