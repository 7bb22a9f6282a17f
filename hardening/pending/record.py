"""``pending.json``: what every update source found for one image, beside its scan records.

`harden run` and `harden scan` write it; `harden report` reads it (the daily scan of released
images) and `harden release` reads the installed versions from it to tell which pending updates
a release shipped. Reading is strict: a record this version cannot read is bad input (exit 2),
never "nothing pending".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hardening.atomic import write_json
from hardening.errors import Location, ReportInputError
from hardening.findings import DbIdentity, ToolInfo
from hardening.pending.findings import iso, parse_iso
from hardening.pending.interface import CheckState, PendingCheck
from hardening.report.jsonreport import parse_findings
from hardening.userfile import read_user_json

SCHEMA_VERSION = 1
_CHECK_KEYS = frozenset(
    {
        "source",
        "tool",
        "state",
        "checked_at",
        "suite",
        "unavailable",
        "cached",
        "installed",
        "findings",
        "record",
    }
)
_HINT = "check again with this version of harden (`harden scan` or `harden run`)"


def write_pending_record(
    path: Path, *, image: str, ref: str, image_id: str, checks: Sequence[PendingCheck]
) -> None:
    document = {
        "schema_version": SCHEMA_VERSION,
        "image": image,
        "ref": ref,
        "image_id": image_id,
        "checks": [_check_json(check) for check in checks],
    }
    write_json(path, document, sort_keys=False, ensure_ascii=False)


def _check_json(check: PendingCheck) -> dict[str, Any]:
    return {
        "source": check.source,
        "tool": check.tool.to_json(),
        "state": check.state.value,
        "checked_at": iso(check.checked_at),
        "suite": check.suite,
        "unavailable": check.unavailable,
        "cached": check.cached,
        "installed": dict(check.installed),
        "findings": [finding.to_json() for finding in check.findings],
        "record": dict(check.record),
    }


def read_pending_record(path: Path) -> tuple[str, tuple[PendingCheck, ...]]:
    """The image id and the checks of a ``pending.json``."""
    doc = read_user_json(
        path, error=ReportInputError, what="the pending-update record", missing="no such file"
    )
    if not isinstance(doc, dict):
        raise _fail(path, "$", "expected a JSON object")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise _fail(path, "schema_version", f"expected {SCHEMA_VERSION}, found {doc.get('schema_version')!r}")
    image_id = doc.get("image_id")
    if not isinstance(image_id, str):
        raise _fail(path, "image_id", "expected a string")
    items = doc.get("checks")
    if not isinstance(items, list):
        raise _fail(path, "checks", "expected an array")
    return image_id, tuple(_check(path, item, f"checks[{index}]") for index, item in enumerate(items))


def _check(path: Path, item: Any, field: str) -> PendingCheck:
    if not isinstance(item, dict):
        raise _fail(path, field, "expected an object")
    unknown = sorted(set(item) - _CHECK_KEYS)
    if unknown:
        raise _fail(path, f"{field}.{unknown[0]}", "unknown field")
    source = _text(path, item, "source", field)
    try:
        state = CheckState(_text(path, item, "state", field))
    except ValueError:
        raise _fail(
            path, f"{field}.state", f"expected one of {', '.join(s.value for s in CheckState)}"
        ) from None
    checked_at = parse_iso(_text(path, item, "checked_at", field))
    if checked_at is None:
        raise _fail(path, f"{field}.checked_at", "expected an ISO 8601 time")
    tool_doc = item.get("tool")
    if not isinstance(tool_doc, dict) or not all(
        isinstance(tool_doc.get(k), str) for k in ("name", "version", "information_uri")
    ):
        raise _fail(path, f"{field}.tool", "expected an object with name, version and information_uri")
    db = tool_doc.get("db")
    tool = ToolInfo(
        tool_doc["name"],
        tool_doc["version"],
        tool_doc["information_uri"],
        DbIdentity(**db) if isinstance(db, dict) else None,
    )
    installed = item.get("installed", {})
    if not isinstance(installed, dict) or not all(isinstance(v, str) for v in installed.values()):
        raise _fail(path, f"{field}.installed", "expected an object of strings")
    findings = parse_findings(item.get("findings"), source=path, field=f"{field}.findings")
    foreign = sorted({f.tool or "(none)" for f in findings} - {tool.name})
    if foreign:
        raise _fail(path, f"{field}.findings", f"findings of tool {foreign[0]} in the check of {tool.name}")
    record = item.get("record", {})
    if not isinstance(record, dict):
        raise _fail(path, f"{field}.record", "expected an object")
    suite = item.get("suite")
    reason = item.get("unavailable")
    return PendingCheck(
        source=source,
        tool=tool,
        state=state,
        checked_at=checked_at,
        findings=tuple(findings),
        suite=suite if isinstance(suite, str) else None,
        unavailable=reason if isinstance(reason, str) else None,
        installed={str(k): v for k, v in installed.items()},
        record=record,
        cached=item.get("cached") is True,
    )


def _text(path: Path, item: dict[str, Any], key: str, field: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise _fail(path, f"{field}.{key}", "expected a non-empty string")
    return value


def _fail(path: Path, field: str, message: str) -> ReportInputError:
    return ReportInputError(message, location=Location(path, None, field), hint=_HINT)
