"""Which vulnerability DB a Trivy cache holds: where it came from, how old its data is, what is in it.

Reports carry this so a reader can tell a scan against yesterday's upstream DB from one against
eleven sample advisories. It is read from two small files in ``CACHE/db``:

* ``metadata.json`` — Trivy's own (``UpdatedAt``, ``NextUpdate``) plus, for a DB we built or
  merged, what it was made from (``hardening.db.metadata``);
* ``pull.json`` — written by ``harden db pull``: the repository and manifest digest it pulled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from hardening.atomic import write_text_atomic
from hardening.db.metadata import DB_NAME, METADATA_NAME, Part, parse_go_time, read_metadata
from hardening.db.times import go_time
from hardening.errors import DatabaseError, DatabaseInvalid, Location

PULL_RECORD_NAME = "pull.json"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class DbSource(StrEnum):
    PULLED = "pulled"  # downloaded from a registry by `harden db pull`
    BUILT = "built"  # built from OSV inputs by `harden db build`
    MERGED = "merged"  # an upstream DB plus the organisation's advisories
    UNKNOWN = "unknown"  # a DB nobody recorded (e.g. one Trivy downloaded itself)


@dataclass(frozen=True)
class PullRecord:
    repository: str  # e.g. ghcr.io/aquasecurity/trivy-db:2
    manifest_digest: str
    layer_digest: str
    layer_size: int
    db_size: int  # bytes of trivy.db as unpacked, checked on a cache hit
    pulled_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "Repository": self.repository,
            "ManifestDigest": self.manifest_digest,
            "LayerDigest": self.layer_digest,
            "LayerSize": self.layer_size,
            "DbSize": self.db_size,
            "PulledAt": go_time(self.pulled_at),
        }


@dataclass(frozen=True)
class DbIdentity:
    """The DB a scan used, as reports name it."""

    source: DbSource
    repository: str | None
    manifest_digest: str | None
    updated_at: datetime
    next_update: datetime
    parts: tuple[Part, ...]

    @property
    def contents(self) -> tuple[str, ...]:
        """What the DB holds, one line per input (empty when nobody recorded it)."""
        return tuple(part.describe() for part in self.parts)


def read_identity(cache_dir: Path) -> DbIdentity:
    """The identity of the DB in ``cache_dir/db``; ``DatabaseInvalid`` when there is none."""
    db_dir = cache_dir / "db"
    if not (db_dir / DB_NAME).is_file():
        raise DatabaseInvalid(
            f"no vulnerability DB in {cache_dir}",
            location=Location(db_dir / DB_NAME),
            hint=f"run `harden db pull --cache-dir {cache_dir}` "
            f"or `harden db build ADVISORIES… --cache-dir {cache_dir}`",
        )
    metadata = read_metadata(db_dir / METADATA_NAME)
    pulled = read_pull_record(db_dir)
    if pulled is not None and _size(db_dir / DB_NAME) != pulled.db_size:
        # Not the DB that was pulled: something else (Trivy's own downloader, an online scan)
        # has replaced it since, and left the pull record behind.
        pulled = None
    repository = manifest_digest = None
    if pulled is not None:
        source = DbSource.PULLED
        repository, manifest_digest = pulled.repository, pulled.manifest_digest
    elif metadata.source is not None:
        source = DbSource(metadata.source)
        base = next((p for p in metadata.parts if p.kind == "base"), None)
        if base is not None and "@" in base.name:
            repository, _, manifest_digest = base.name.rpartition("@")
    else:
        source = DbSource.UNKNOWN
    return DbIdentity(
        source, repository, manifest_digest, metadata.updated_at, metadata.next_update, metadata.parts
    )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def read_pull_record(db_dir: Path) -> PullRecord | None:
    """What `harden db pull` recorded in ``db_dir``; None when it did not pull this DB."""
    path = db_dir / PULL_RECORD_NAME
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise DatabaseInvalid(f"cannot read the pull record: {error}", location=Location(path)) from error
    try:
        record = PullRecord(
            repository=_text(raw, "Repository"),
            manifest_digest=_text(raw, "ManifestDigest"),
            layer_digest=_text(raw, "LayerDigest"),
            layer_size=_int(raw, "LayerSize"),
            db_size=_int(raw, "DbSize"),
            pulled_at=parse_go_time(_text(raw, "PulledAt")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DatabaseInvalid(f"not a pull record: {error}", location=Location(path)) from error
    for digest in (record.manifest_digest, record.layer_digest):
        if not _DIGEST.match(digest):
            raise DatabaseInvalid(f"not a sha256 digest: {digest!r}", location=Location(path))
    return record


def write_pull_record(db_dir: Path, record: PullRecord) -> None:
    write_text_atomic(
        db_dir / PULL_RECORD_NAME,
        json.dumps(record.to_json(), indent=2) + "\n",
        error=DatabaseError,
        hint="check free space and permissions of the cache directory",
    )


def _text(raw: object, key: str) -> str:
    if not isinstance(raw, dict) or not isinstance(raw[key], str):
        raise TypeError(f"{key} is not a string")
    value: str = raw[key]
    return value


def _int(raw: object, key: str) -> int:
    if not isinstance(raw, dict) or type(raw[key]) is not int:
        raise TypeError(f"{key} is not an integer")
    value: int = raw[key]
    return value
