"""How old a scan's vulnerability data is, and the gate's limit on it (``max_db_age``).

A scan against stale data finds nothing new, and a green report made with it reads exactly like
a clean one. So the gate may set ``max_db_age``; `harden scan`, `run` and `report` then refuse
(exit 3) to scan with, or report on, a DB whose data is older. The age is the data's age —
``UpdatedAt``, which for a DB we build is the newest ``modified`` of its inputs — never the
age of the file on disk: a DB built today from last year's exports is a year old.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hardening.errors import DatabaseStale
from hardening.findings import DbIdentity, ToolInfo

# A whole number of days or hours: "2d", "36h". Nothing else, so that "2" or "2 days" or "1.5d"
# is an error at the line that says it, not a guess.
_AGE = re.compile(r"([1-9][0-9]{0,4})([dh])")
_UNIT = {"d": timedelta(days=1), "h": timedelta(hours=1)}
# What lifts the limit on the command line (an offline demo with vendored data).
NO_LIMIT_WORD = "none"
AGE_SYNTAX = f"a whole number of days or hours, e.g. 2d or 36h (or {NO_LIMIT_WORD} on the command line)"


def parse_age(text: str) -> timedelta:
    """``"2d"`` → two days; ``ValueError`` naming the syntax for anything else."""
    match = _AGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age: expected {AGE_SYNTAX}")
    return int(match.group(1)) * _UNIT[match.group(2)]


def format_age_limit(limit: timedelta) -> str:
    """The limit as written in the gate: ``2d``, ``36h``."""
    hours = int(limit.total_seconds()) // 3600
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def describe_age(age: timedelta) -> str:
    """For people: whole days from two days on, hours below that, minutes below an hour."""
    seconds = max(0, int(age.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = seconds // 60
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True)
class AgeLimit:
    """The limit in force, and who set it, for messages and the summary."""

    limit: timedelta | None  # None: no limit
    origin: str = ""  # "policies/gate.yaml:18", "--max-db-age", or "" when nobody set one

    @property
    def describe(self) -> str:
        if self.limit is None:
            return f"no limit, lifted by {self.origin}" if self.origin else "the gate sets no max_db_age"
        return f"max_db_age {format_age_limit(self.limit)}, {self.origin}"


NO_LIMIT = AgeLimit(None)


def updated_at(db: DbIdentity) -> datetime | None:
    """The data's ``UpdatedAt`` as a time; None when it is missing or not a time."""
    if not db.updated_at:
        return None
    from hardening.db.metadata import parse_go_time

    try:
        return parse_go_time(db.updated_at)
    except ValueError:
        return None


def with_age(db: DbIdentity, now: datetime) -> DbIdentity:
    """``db`` with its ``age_seconds`` at ``now`` (unchanged when its date is unknown)."""
    moment = updated_at(db)
    if moment is None:
        return db
    return replace(db, age_seconds=max(0, int((now.astimezone(UTC) - moment).total_seconds())))


def age_of(db: DbIdentity, now: datetime | None) -> timedelta | None:
    """The data's age: the one recorded at scan time, else the age at ``now`` (if given)."""
    if db.age_seconds is not None:
        return timedelta(seconds=db.age_seconds)
    moment = updated_at(db)
    if moment is None or now is None:
        return None
    return now.astimezone(UTC) - moment


def require_fresh(
    tools: Iterable[ToolInfo],
    limit: AgeLimit,
    *,
    now: datetime | None,
    what: str = "",
    cache_dir: str | None = None,
) -> None:
    """Raise ``DatabaseStale`` when any tool's data is older than ``limit``, or of unknown age.

    ``now`` measures a DB about to be used; None takes each identity's recorded age at scan
    time (`harden report` judges the scan it reports on). Tools without a DB identity read no
    vulnerability data (a policy check, a secret scanner) and are not judged.
    """
    if limit.limit is None:
        return
    where = f" --cache-dir {cache_dir}" if cache_dir else ""
    for tool in tools:
        if tool.db is None:
            continue
        age = age_of(tool.db, now)
        if age is None:
            raise DatabaseStale(
                f"the age of {tool.name}'s vulnerability DB{what} is unknown (no UpdatedAt in its "
                f"metadata or record); the gate allows {limit.describe}",
                hint=f"run `harden db pull{where}` for a DB that says when its data was made",
            )
        if age > limit.limit:
            raise DatabaseStale(
                f"the vulnerability DB{what} is {describe_age(age)} old (updated {tool.db.updated_at}), "
                f"older than the gate allows ({limit.describe}); run harden db pull",
                hint=f"run `harden db pull{where}` (then `harden db build advisories --base-db … "
                f"--cache-dir …` to merge the organisation's advisories) and scan again; an offline "
                f"demo on vendored data may lift the limit with --max-db-age {NO_LIMIT_WORD}",
            )
