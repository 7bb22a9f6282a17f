"""Times as Trivy's DB writes them: UTC, RFC 3339, Go's zero time for "none"."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def go_time(moment: datetime) -> str:
    """RFC 3339 in UTC, as Go's time.Time marshals it."""
    value = utc(moment)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.year < 1000:
        text = f"{value.year:04d}" + text[text.index("-") :]
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"
