"""Reading OSV advisories: single JSON files, directories of them, and export zips.

An export zip is the layout osv.dev publishes per ecosystem: one flat zip, one ``<id>.json``
record per member. Zips are read in memory, member by member; nothing is unpacked to disk, and
a member that declares more than ``MAX_MEMBER_BYTES`` is refused from the central directory
before a byte of it is inflated (a zip bomb never gets to allocate its gigabytes).

Every record carries its ``Origin`` (the file, or the zip and its member), so an error in the
middle of a 4,000-record export names the exact member.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    model_validator,
)

from hardening.errors import AdvisoryError, Location

# The largest record in the Go and PyPA exports is about 20 KB; 8 MiB leaves room for any
# real advisory and still refuses a member that would inflate to gigabytes.
MAX_MEMBER_BYTES = 8 << 20
# A whole export is tens of MB inflated; more than this is not an advisory export.
MAX_EXPORT_BYTES = 2 << 30
MAX_EXPORT_MEMBERS = 1_000_000

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


# --- the OSV boundary -----------------------------------------------------------------------


class _Osv(BaseModel):
    # OSV has many optional fields we do not use; the ones we do use are typed strictly.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OsvEvent(_Osv):
    introduced: StrictStr | None = None
    fixed: StrictStr | None = None
    last_affected: StrictStr | None = None
    limit: StrictStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> OsvEvent:
        present = [v for v in (self.introduced, self.fixed, self.last_affected, self.limit) if v is not None]
        if len(present) != 1:
            raise ValueError("an event has exactly one of introduced, fixed, last_affected, limit")
        if not present[0]:
            raise ValueError("an event's version is empty")
        return self


class OsvRange(_Osv):
    type: Literal["ECOSYSTEM", "SEMVER", "GIT"]
    events: list[OsvEvent] = Field(min_length=1)


class OsvPackage(_Osv):
    ecosystem: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)


class OsvSeverity(_Osv):
    type: StrictStr
    score: StrictStr


class OsvReference(_Osv):
    type: StrictStr
    url: StrictStr = Field(min_length=1)


class OsvAffected(_Osv):
    package: OsvPackage
    ranges: list[OsvRange] = []
    versions: list[StrictStr] = []
    severity: list[OsvSeverity] = []
    ecosystem_specific: dict[str, Any] | None = None
    database_specific: dict[str, Any] | None = None


class OsvRecord(_Osv):
    id: StrictStr = Field(pattern=_ID_PATTERN)
    modified: AwareDatetime
    published: AwareDatetime | None = None
    withdrawn: AwareDatetime | None = None
    aliases: list[StrictStr] = []
    upstream: list[StrictStr] = []
    summary: StrictStr = ""
    details: StrictStr = ""
    severity: list[OsvSeverity] = []
    affected: list[OsvAffected] = Field(min_length=1)
    references: list[OsvReference] = []
    database_specific: dict[str, Any] | None = None


# --- where a record came from ---------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Origin:
    """A record's file, or the export zip and the member inside it."""

    path: Path
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}!/{self.member}" if self.member else str(self.path)

    def at(self, line: int | None = None, field: str | None = None) -> Location:
        return Location(str(self), line, field)


# --- reading --------------------------------------------------------------------------------


def load_record(path: Path) -> OsvRecord:
    """Parse and validate one OSV file; ``AdvisoryError`` names the file, line and field."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AdvisoryError(f"cannot read advisory: {error}", location=Location(path)) from error
    return parse_record(data, Origin(path))


def parse_record(data: bytes, origin: Origin) -> OsvRecord:
    """Parse and validate one OSV document; ``AdvisoryError`` names ``origin``, line and field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AdvisoryError(f"cannot read advisory: {error}", location=origin.at()) from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise AdvisoryError(
            f"not valid JSON: {error.msg}",
            location=origin.at(error.lineno),
            hint="advisories are OSV JSON documents, one per file",
        ) from error
    try:
        return OsvRecord.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        details = "\n".join(f"{_loc(e['loc'])}: {e['msg']}" for e in error.errors())
        raise AdvisoryError(
            f"not a valid OSV record: {first['msg']}",
            location=origin.at(None, _loc(first["loc"])),
            details=details,
            hint="see https://ossf.github.io/osv-schema/ for the fields",
        ) from error


def read_records(paths: Sequence[Path]) -> Iterator[tuple[Origin, OsvRecord]]:
    """Every record of ``paths``: OSV JSON files, directories searched for ``*.json``, export zips.

    A file is an export when it is a zip archive; one named ``*.zip`` that is not one is refused.
    Directories are searched for ``*.json`` only, so an export kept beside the organisation's own
    advisories is used only when named.
    """
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*.json") if p.is_file()):
                yield Origin(file), load_record(file)
        elif path.is_file():
            if zipfile.is_zipfile(path):
                yield from _read_export(path)
            elif path.suffix.lower() == ".zip":
                raise AdvisoryError(
                    "not a zip archive",
                    location=Location(path),
                    hint="an OSV export is the zip osv.dev publishes per ecosystem (all.zip); "
                    "download it again",
                )
            else:
                yield Origin(path), load_record(path)
        else:
            raise AdvisoryError("advisory path does not exist", location=Location(path))


def _read_export(path: Path) -> Iterator[tuple[Origin, OsvRecord]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise AdvisoryError(f"not a readable zip archive: {error}", location=Location(path)) from error
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        _check_declared_sizes(path, members)
        for info in sorted(members, key=lambda i: i.filename):
            if not info.filename.endswith(".json"):
                continue
            origin = Origin(path, info.filename)
            try:
                with archive.open(info) as handle:
                    # zipfile stops at the declared size, which was checked above.
                    data = handle.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error) as error:
                raise AdvisoryError(
                    f"cannot read the member: {error}",
                    location=origin.at(),
                    hint="the export is damaged; download it again",
                ) from error
            except OSError as error:
                raise AdvisoryError(f"cannot read the member: {error}", location=origin.at()) from error
            yield origin, parse_record(data, origin)


def _check_declared_sizes(path: Path, members: list[zipfile.ZipInfo]) -> None:
    hint = "an OSV export holds one small JSON record per member; this is not one"
    if len(members) > MAX_EXPORT_MEMBERS:
        raise AdvisoryError(
            f"{len(members)} members, more than {MAX_EXPORT_MEMBERS}", location=Location(path), hint=hint
        )
    total = 0
    for info in members:
        if info.file_size > MAX_MEMBER_BYTES:
            raise AdvisoryError(
                f"member {info.filename} declares {info.file_size} bytes inflated, "
                f"more than {MAX_MEMBER_BYTES}; refused without unpacking",
                location=Location(path),
                hint=hint,
            )
        total += info.file_size
    if total > MAX_EXPORT_BYTES:
        raise AdvisoryError(
            f"members declare {total} bytes inflated, more than {MAX_EXPORT_BYTES}; "
            "refused without unpacking",
            location=Location(path),
            hint=hint,
        )


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<document>"
