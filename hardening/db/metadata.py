"""``metadata.json`` beside ``trivy.db``: the schema version, the data's age, and what the DB holds.

Trivy reads ``Version`` (it must be exactly 2 for Trivy 0.76), ``NextUpdate``, ``UpdatedAt`` and
``DownloadedAt`` and ignores any other field; a DB we build or merge adds ``Hardening``, saying
what it was made from, so the file that travels with the DB (in the cache, in a pushed artifact)
answers "what is in this DB?".

``UpdatedAt`` is how old the data is, never when a file was written: a DB built from an OSV export
carries the newest ``modified`` of its records, a merged DB the upstream DB's own ``UpdatedAt``
(private advisories do not make an old upstream DB fresh).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from hardening.atomic import write_text_atomic
from hardening.db.times import go_time, utc
from hardening.errors import DatabaseError, DatabaseInvalid, Location

SCHEMA_VERSION = 2
METADATA_NAME = "metadata.json"
DB_NAME = "trivy.db"
# Go's zero time, what Trivy writes for a time it does not have.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
# When a Trivy client that downloaded a DB we built (from a site's registry, after `harden db
# push`) looks for a newer one: a day after the build, the upstream DB's own promise. Further
# ahead, clients keep the first copy they got; our own scans pass --skip-db-update and never ask.
NEXT_UPDATE_AFTER = timedelta(days=1)

_GO_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")

Kind = Literal["osv", "base"]


@dataclass(frozen=True)
class Part:
    """One input of a built or merged DB."""

    kind: Kind
    name: str  # the path as given, or the base DB's repository@digest (or its directory)
    updated_at: datetime  # newest record's ``modified``, or the base DB's UpdatedAt
    records: int | None = None  # records used, for OSV inputs

    def describe(self) -> str:
        if self.kind == "base":
            return f"base DB {self.name} (updated {go_time(self.updated_at)})"
        return f"{self.records} OSV records from {self.name} (newest {go_time(self.updated_at)})"


@dataclass(frozen=True)
class Metadata:
    version: int
    next_update: datetime
    updated_at: datetime
    downloaded_at: datetime
    source: str | None = None  # "built" or "merged" when we made the DB
    parts: tuple[Part, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "Version": self.version,
            "NextUpdate": go_time(self.next_update),
            "UpdatedAt": go_time(self.updated_at),
            "DownloadedAt": go_time(self.downloaded_at),
        }
        if self.source is not None:
            contents: list[dict[str, Any]] = []
            for part in self.parts:
                item: dict[str, Any] = {
                    "Kind": part.kind,
                    "Name": part.name,
                    "UpdatedAt": go_time(part.updated_at),
                }
                if part.records is not None:
                    item["Records"] = part.records
                contents.append(item)
            data["Hardening"] = {"Source": self.source, "Contents": contents}
        return data


def built_metadata(
    *, now: datetime, updated_at: datetime, source: str | None = None, parts: tuple[Part, ...] = ()
) -> Metadata:
    moment = utc(now)
    return Metadata(SCHEMA_VERSION, moment + NEXT_UPDATE_AFTER, utc(updated_at), moment, source, parts)


def write_metadata(
    db_dir: Path,
    *,
    now: datetime,
    version: int = SCHEMA_VERSION,
    updated_at: datetime | None = None,
    metadata: Metadata | None = None,
) -> Path:
    """Write ``metadata.json``; by default a built DB's, data dated ``now``."""
    if metadata is None:
        moment = utc(now)
        metadata = Metadata(version, moment + NEXT_UPDATE_AFTER, utc(updated_at or moment), moment)
    path = db_dir / METADATA_NAME
    write_text_atomic(
        path,
        json.dumps(metadata.to_json(), indent=2) + "\n",
        error=DatabaseError,
        hint="check free space and permissions of the cache directory",
    )
    return path


def read_metadata(path: Path) -> Metadata:
    """Parse ``metadata.json``; ``DatabaseInvalid`` names the file and field."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatabaseInvalid(f"cannot read: {error.strerror or error}", location=Location(path)) from error
    return parse_metadata(data, path)


def parse_metadata(data: bytes, where: Path | str) -> Metadata:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise DatabaseInvalid(f"not valid JSON: {error}", location=Location(where)) from error
    if not isinstance(raw, dict):
        raise DatabaseInvalid("expected a JSON object", location=Location(where))
    version = raw.get("Version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DatabaseInvalid(
            f"DB schema Version {version!r}; Trivy 0.76 reads only Version {SCHEMA_VERSION}",
            location=Location(where, None, "Version"),
            hint="use a DB of schema 2 (the trivy-db:2 artifact)",
        )
    times = {key: _time(raw, key, where) for key in ("NextUpdate", "UpdatedAt")}
    downloaded = _time(raw, "DownloadedAt", where) if "DownloadedAt" in raw else ZERO_TIME
    source, parts = _contents(raw.get("Hardening"), where)
    return Metadata(version, times["NextUpdate"], times["UpdatedAt"], downloaded, source, parts)


def parse_go_time(text: str) -> datetime:
    """RFC 3339 as Go writes it (up to nanoseconds); ``ValueError`` when it is not."""
    match = _GO_TIME.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    micro = int((match.group(7) or "0").ljust(6, "0")[:6])
    zone = match.group(8)
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        moment -= sign * offset
    return moment


def _time(raw: dict[str, Any], key: str, where: Path | str) -> datetime:
    value = raw.get(key)
    if not isinstance(value, str):
        raise DatabaseInvalid(f"{key} is missing or not a string", location=Location(where, None, key))
    try:
        return parse_go_time(value)
    except ValueError as error:
        raise DatabaseInvalid(str(error), location=Location(where, None, key)) from error


def _contents(block: object, where: Path | str) -> tuple[str | None, tuple[Part, ...]]:
    if block is None:
        return None, ()
    bad = DatabaseInvalid(
        "Hardening is not what harden db build writes", location=Location(where, None, "Hardening")
    )
    if not isinstance(block, dict) or block.get("Source") not in ("built", "merged"):
        raise bad
    items = block.get("Contents")
    if not isinstance(items, list):
        raise bad
    parts: list[Part] = []
    for item in items:
        if (
            not isinstance(item, dict)
            or item.get("Kind") not in ("osv", "base")
            or not isinstance(item.get("Name"), str)
        ):
            raise bad
        records = item.get("Records")
        if records is not None and type(records) is not int:
            raise bad
        parts.append(Part(item["Kind"], item["Name"], _time(item, "UpdatedAt", where), records))
    return str(block["Source"]), tuple(parts)
