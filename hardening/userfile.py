"""Reading a file a user gave us: every failure is the caller's bad-input error naming the file.

A missing file, a directory where a file was expected, a permission problem, bytes that are not
UTF-8 or text that is not JSON all end as one error class chosen by the caller (a catalog is a
``ConfigError``, a policy a ``PolicyError``, a report a ``ReportInputError``) with the file in
its location — never a traceback, and never a different exit code for the same condition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardening.errors import HardeningError, Location


def read_user_text(
    path: Path,
    *,
    error: type[HardeningError],
    what: str,
    shown: Path | str | None = None,
    missing: str | None = None,
    missing_hint: str | None = None,
    hint: str | None = None,
) -> str:
    """The UTF-8 text of ``path``; ``what`` names it in messages ("the catalog")."""
    where = Location(shown if shown is not None else path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(missing or f"{what} not found", location=where, hint=missing_hint or hint) from None
    except (OSError, UnicodeDecodeError) as exc:  # not UTF-8 is bad input, not a crash
        raise error(f"cannot read {what}: {exc}", location=where, hint=hint) from None


def read_user_json(
    path: Path,
    *,
    error: type[HardeningError],
    what: str,
    shown: Path | str | None = None,
    missing: str | None = None,
    missing_hint: str | None = None,
    hint: str | None = None,
) -> Any:
    """The decoded JSON of ``path``; invalid JSON names the line."""
    text = read_user_text(
        path, error=error, what=what, shown=shown, missing=missing, missing_hint=missing_hint, hint=hint
    )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} is not valid JSON: {exc.msg} (column {exc.colno})",
            location=Location(shown if shown is not None else path, exc.lineno),
            hint=hint,
        ) from None
