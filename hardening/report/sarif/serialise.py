"""sarif_om objects to JSON-ready dicts, and those to text and files.

Serialisation goes through sarif_om's attrs metadata (JSON names) and leaves out every value
equal to the object model's default, so output carries no ``-1`` indexes, ``"en-US"`` or
newline-sequence noise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attr
import sarif_om as om

from hardening.atomic import write_text_atomic
from hardening.report.sarif.vocabulary import SARIF_VERSION, SCHEMA_URI

# Values that must be written even when they equal the object model's default: a result's
# level would otherwise fall back to its rule's default level, and GitHub wants runs, results
# and rules present even when empty.
_ALWAYS_WRITTEN: frozenset[tuple[type, str]] = frozenset(
    {
        (om.Result, "level"),
        (om.SarifLog, "runs"),
        (om.Run, "results"),
        (om.ToolComponent, "rules"),
    }
)


# Per attrs class: (attribute, JSON name, always written, has a default, the default).
_Plan = tuple[tuple[str, str, bool, bool, Any], ...]
_PLANS: dict[type, _Plan | None] = {}


def _plan_of(cls: type) -> _Plan | None:
    """How to write instances of ``cls``; None when it is not an attrs class. Worked out once per
    class: a log of 5,000 results has hundreds of thousands of attrs objects and values."""
    try:
        return _PLANS[cls]
    except KeyError:
        pass
    plan: _Plan | None = None
    if attr.has(cls):
        plan = tuple(
            (
                item.name,
                item.metadata["schema_property_name"],
                (cls, item.name) in _ALWAYS_WRITTEN,
                item.default is not attr.NOTHING,
                _default_of(item),
            )
            for item in attr.fields(cls)
        )
    _PLANS[cls] = plan
    return plan


def _default_of(field: Any) -> Any:
    default = field.default
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        return default.factory()
    return default


_SCALARS = (str, int, float)


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    plan = _plan_of(type(value))
    if plan is not None:
        return _attrs_to_json(value, plan)
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _attrs_to_json(obj: Any, plan: _Plan | None = None) -> dict[str, Any]:
    if plan is None:
        plan = _plan_of(type(obj))
        if plan is None:
            raise TypeError(f"not a sarif_om object: {type(obj).__name__}")
    out: dict[str, Any] = {}
    for name, json_name, always, has_default, default in plan:
        value = getattr(obj, name)
        if value is None:
            continue
        if not always:
            if has_default and value == default:
                continue
            if isinstance(value, (list, tuple, dict)) and not value:
                continue
        out[json_name] = _to_json(value)
    extra = vars(obj)
    if len(extra) != len(plan):
        names = {entry[0] for entry in plan}
        for key, value in extra.items():
            if key not in names and value is not None:
                out[key] = _to_json(value)
    return out


def sarif_log_json(runs: Sequence[Any]) -> dict[str, Any]:
    log = om.SarifLog(runs=list(runs), version=SARIF_VERSION, schema_uri=SCHEMA_URI)
    body = _attrs_to_json(log)
    # $schema and version first: that is where people and sniffers look
    return {"$schema": body.pop("$schema"), "version": body.pop("version"), **body}


# Above this many results the file is for machines (GitHub), and Python's indenting encoder,
# which is pure Python, would take longer than building the log.
_INDENTED_RESULTS = 1000


def dumps(sarif: Mapping[str, Any]) -> str:
    runs = sarif.get("runs") or []
    results = sum(len(run.get("results") or []) for run in runs if isinstance(run, Mapping))
    if results > _INDENTED_RESULTS:
        return json.dumps(sarif, ensure_ascii=False, separators=(",", ":")) + "\n"
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"


def write_sarif(path: Path, sarif: dict[str, Any]) -> None:
    """Write atomically (temporary file in the same directory, then ``os.replace``)."""
    write_text_atomic(path, dumps(sarif))
