"""The gate record: what the gate decided for exactly this digest, and on what data.

Decision, reasons and counts come from the run's gate decision and findings record; the scanner
and the vulnerability DB from the scan record — every ``db_*`` field the scan records carry, plus
the DB's age when the image was scanned, so a consumer can refuse a verdict made on stale data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def _moment(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def db_age_seconds(scan: Mapping[str, Any]) -> int | None:
    updated, scanned = _moment(scan.get("db_updated_at")), _moment(scan.get("scanned_at"))
    if updated is None or scanned is None:
        return None
    return max(0, int((scanned - updated).total_seconds()))


def gate_record(
    *,
    gate: Mapping[str, Any],
    scan: Mapping[str, Any],
    counts: Mapping[str, int],
    image: str,
    image_id: str,
    repository: str,
    digest: str,
    run_id: str,
) -> dict[str, Any]:
    database = {
        key.removeprefix("db_"): value for key, value in sorted(scan.items()) if key.startswith("db_")
    }
    database["age_seconds_at_scan"] = db_age_seconds(scan)
    return {
        "image": {"name": image, "repository": repository, "digest": digest, "id": image_id},
        "decision": gate.get("decision"),
        "passed": gate.get("passed") is True,
        "reasons": list(gate.get("reasons") or []),
        "counts": {
            "counted": gate.get("counted"),
            "suppressed": gate.get("suppressed"),
            "baselined": gate.get("baselined"),
            "findings": dict(counts),
        },
        "scanner": {
            "name": scan.get("scanner", "trivy"),
            "version": scan.get("trivy_version"),
            "scanned_at": scan.get("scanned_at"),
            "offline": scan.get("offline"),
        },
        "database": database,
        "run": run_id,
    }
