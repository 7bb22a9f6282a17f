"""``harden db build``: a Trivy DB from OSV inputs, alone or merged into an upstream DB.

Built alone, the DB holds the inputs' records and its ``UpdatedAt`` is the newest ``modified``
among them. Merged (``base_db``), the upstream DB is streamed page by page into a new file with
the organisation's records added; a key both define is an error naming both sources unless
``override`` is given, in which case the organisation's record wins. Either way the new DB is
staged and swapped in whole (``hardening.db.cache``), so a failure leaves the previous DB as it
was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hardening.db import bbolt
from hardening.db.bboltread import BoltFile, BucketView
from hardening.db.cache import staged_db
from hardening.db.convert import DATA_SOURCE_BUCKET, VULNERABILITY_BUCKET, Converted
from hardening.db.metadata import (
    DB_NAME,
    METADATA_NAME,
    ZERO_TIME,
    Metadata,
    Part,
    built_metadata,
    read_metadata,
    write_metadata,
)
from hardening.db.osv import Origin, read_records
from hardening.db.times import utc
from hardening.errors import AdvisoryError, DatabaseError, DatabaseInvalid, Location

_MAX_LISTED_CONFLICTS = 20


@dataclass(frozen=True)
class DbInfo:
    """What ``build_db`` wrote."""

    path: Path
    advisories: int  # records used
    vulnerabilities: int  # vulnerability ids they define
    updated_at: datetime
    withdrawn: int = 0
    out_of_scope: int = 0
    unusable: tuple[str, ...] = ()
    size: int = 0
    metadata: Metadata | None = None
    derived_set_aside: int = 0  # changelog-derived advisories another source had (it wins)


@dataclass(frozen=True)
class BaseDb:
    """An existing DB to merge into: its files and how to name it in messages and metadata."""

    db_file: Path
    metadata: Metadata
    name: str

    @classmethod
    def open(cls, directory: Path) -> BaseDb:
        """``directory`` is a Trivy cache (holding ``db/``) or a ``db/`` directory itself."""
        db_dir = directory / "db" if (directory / "db" / DB_NAME).is_file() else directory
        db_file = db_dir / DB_NAME
        if not db_file.is_file():
            raise DatabaseInvalid(
                f"no {DB_NAME} in {directory} or {directory / 'db'}",
                location=Location(directory),
                hint="give the cache directory `harden db pull` wrote (or its db/ directory)",
            )
        metadata = read_metadata(db_dir / METADATA_NAME)
        return cls(db_file, metadata, _base_name(db_dir))


def build_db(
    advisory_paths: Sequence[Path],
    cache_dir: Path,
    *,
    now: datetime | None = None,
    base_db: Path | None = None,
    override: bool = False,
) -> DbInfo:
    """Write ``cache_dir/db/trivy.db`` and ``metadata.json`` from OSV inputs (and a base DB).

    ``advisory_paths`` are OSV JSON files, directories searched for ``*.json``, or export zips.
    A naive ``now`` is taken as UTC; it decides which withdrawals are in effect. Raises
    ``AdvisoryError`` for a bad advisory or a conflict with the base DB (with file and field),
    ``DatabaseInvalid`` for an unusable base DB and ``DatabaseError`` when nothing can be written.
    """
    moment = utc(now or datetime.now(UTC))
    converted = Converted(override=override)
    parts: list[Part] = []
    newest = ZERO_TIME
    for path in advisory_paths:
        before = converted.used
        newest_here: datetime | None = None
        for origin, record in read_records([path]):
            # An export is taken as its publisher wrote it; our own files are checked strictly.
            converted.add(origin, record, now=moment, lenient=origin.member is not None)
            modified = utc(record.modified)
            newest_here = modified if newest_here is None or modified > newest_here else newest_here
        if newest_here is not None:
            newest = max(newest, newest_here)
        parts.append(Part("osv", str(path), newest_here or ZERO_TIME, converted.used - before))
    if base_db is None:
        metadata = built_metadata(now=moment, updated_at=newest, source="built", parts=tuple(parts))
        with staged_db(cache_dir) as stage:
            size = bbolt.write(stage / DB_NAME, converted.tree())
            write_metadata(stage, now=moment, metadata=metadata)
        return _info(cache_dir, converted, metadata, size)
    base = BaseDb.open(base_db)
    with BoltFile(base.db_file) as bolt:
        # Changelog-derived advisories (`harden advisories`) yield to the upstream DB's: they only
        # fill what it lacks. Any other record of ours that it also has is a conflict.
        converted.set_aside_derived(
            lambda path: bool(find_conflicts(bolt.root, {path: Origin(base.db_file)}))
        )
        ours = converted.tree()
        conflicts = find_conflicts(bolt.root, converted.origins())
        if conflicts and not override:
            raise _conflict_error(conflicts, base)
        # The merged DB is as fresh as the upstream data it carries.
        metadata = Metadata(
            base.metadata.version,
            base.metadata.next_update,
            base.metadata.updated_at,
            base.metadata.downloaded_at,
            "merged",
            (Part("base", base.name, base.metadata.updated_at), *parts),
        )
        with staged_db(cache_dir) as stage:
            size = bbolt.write(stage / DB_NAME, merge(bolt.root, ours, override=override))
            write_metadata(stage, now=moment, metadata=metadata)
    return _info(cache_dir, converted, metadata, size)


def find_conflicts(
    base: BucketView, origins: Mapping[tuple[str, str, str], Origin]
) -> list[tuple[str, Origin]]:
    """Every advisory (bucket, package, id) ours define that the base DB defines too, with our origin."""
    found: list[tuple[str, Origin]] = []
    for path, origin in sorted(origins.items()):
        view: BucketView | None = base
        for part in path[:-1]:
            view = view.bucket(part.encode()) if view is not None else None
        if view is not None and isinstance(view.get(path[-1].encode()), bytes):
            found.append(("/".join(path), origin))
    return found


def merge(base: Any, ours: Any, *, override: bool = False) -> Iterator[tuple[bytes, Any]]:
    """The top-level buckets of ``base`` (a ``BucketView``) and ``ours`` (a mapping), merged.

    Advisories: ours are added (one the base also has was refused before, unless ``override``
    lets ours replace it). ``vulnerability``: the upstream description of a vulnerability both
    name is kept — our record adds a package it affects — unless ``override``. ``data-source``:
    the upstream DB's description of its own buckets is kept.
    """
    for key, value in _merged(base, ours, prefer_base=False, depth=0):
        if isinstance(value, _Pending):
            keep = key == DATA_SOURCE_BUCKET.encode() or (
                key == VULNERABILITY_BUCKET.encode() and not override
            )
            value = _merged(value.base, value.ours, prefer_base=keep, depth=1)
        yield key, value


@dataclass(frozen=True)
class _Pending:
    base: BucketView
    ours: Mapping[bytes, Any]


def _merged(base: Any, ours: Any, *, prefer_base: bool, depth: int) -> Iterator[tuple[bytes, Any]]:
    mine = sorted(ours.items())
    index = 0
    for key, value in base:
        while index < len(mine) and mine[index][0] < key:
            yield mine[index]
            index += 1
        if index < len(mine) and mine[index][0] == key:
            other = mine[index][1]
            index += 1
            yield key, _merge_value(key, value, other, prefer_base, depth)
        else:
            yield key, value
    yield from mine[index:]


def _merge_value(key: bytes, value: Any, other: Any, prefer_base: bool, depth: int) -> Any:
    if isinstance(value, BucketView) and isinstance(other, Mapping):
        if depth == 0:
            return _Pending(value, other)
        return _merged(value, other, prefer_base=prefer_base, depth=depth + 1)
    if isinstance(value, bytes) and isinstance(other, bytes):
        return value if prefer_base else other
    raise DatabaseError(
        f"{key.decode('utf-8', 'replace')!r} is a bucket on one side and a value on the other",
        hint="the base DB is not laid out as a Trivy DB of schema 2",
    )


def _conflict_error(conflicts: list[tuple[str, Origin]], base: BaseDb) -> AdvisoryError:
    listed = [
        f"{key}: {origin} and the base DB {base.name}" for key, origin in conflicts[:_MAX_LISTED_CONFLICTS]
    ]
    if len(conflicts) > _MAX_LISTED_CONFLICTS:
        listed.append(f"… and {len(conflicts) - _MAX_LISTED_CONFLICTS} more")
    first_key, first_origin = conflicts[0]
    return AdvisoryError(
        f"{len(conflicts)} advisory(ies) are defined both by our records and by the base DB "
        f"{base.name} ({base.db_file}); first: {first_key}",
        location=first_origin.at(),
        details="\n".join(listed),
        hint="give the organisation's record another id, drop it, or pass --override to let it "
        "replace the upstream record",
    )


def _base_name(db_dir: Path) -> str:
    """The pulled artifact (repository@digest) when a pull record says so, else the directory."""
    from hardening.db.identity import read_pull_record

    with contextlib.suppress(DatabaseInvalid):
        record = read_pull_record(db_dir)
        if record is not None:
            return f"{record.repository}@{record.manifest_digest}"
    return str(db_dir)


def _info(cache_dir: Path, converted: Converted, metadata: Metadata, size: int) -> DbInfo:
    return DbInfo(
        path=cache_dir / "db" / DB_NAME,
        advisories=converted.used,
        vulnerabilities=len(converted.details),
        updated_at=metadata.updated_at,
        withdrawn=converted.withdrawn,
        out_of_scope=converted.out_of_scope,
        unusable=tuple(converted.unusable),
        size=size,
        metadata=metadata,
        derived_set_aside=converted.derived_set_aside,
    )
