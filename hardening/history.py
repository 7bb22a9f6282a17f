"""Scan history: one JSON line per scan of an image, in ``scans/history/<image>.jsonl``.

The history is committed by the scheduled workflow, so it is appended to by machines and read
back months later. Appends are one ``write(2)`` of a whole line on an ``O_APPEND`` descriptor,
then ``fsync``: a reader sees a line completely or not at all, and two writers cannot interleave
inside a line. Reading is strict: an unknown field, a wrong type or a torn line stops the reader
with the file and line, instead of quietly charting a wrong number.
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from hardening.errors import Location, OutputError, ReportInputError
from hardening.findings import Finding, Severity
from hardening.validation import dotted

SUFFIX = ".jsonl"

# The severities in the order a reader scans them: worst first.
SEVERITY_ORDER: tuple[Severity, ...] = tuple(sorted(Severity, reverse=True))

_ImageName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
# A local image id or a registry digest, optionally with the repository it was pulled as.
_Digest = Annotated[
    str, StringConstraints(pattern=r"^(?:[a-z0-9][a-z0-9._/:-]{0,254}@)?sha256:[0-9a-f]{64}$")
]
_Version = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")]
_Count = Annotated[int, Field(ge=0)]


class GateResult(enum.Enum):
    PASSED = "pass"
    FAILED = "fail"


@dataclass(frozen=True)
class SeverityCounts:
    """Open findings of one scan, by severity."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    unknown: int = 0

    def __post_init__(self) -> None:
        for severity in Severity:
            if self.of(severity) < 0:
                raise ValueError(f"a count cannot be negative ({severity.label}: {self.of(severity)})")

    def of(self, severity: Severity) -> int:
        value: int = getattr(self, severity.label)
        return value

    @property
    def total(self) -> int:
        return sum(self.of(severity) for severity in Severity)

    @classmethod
    def from_severities(cls, severities: Iterable[Severity]) -> SeverityCounts:
        tally = dict.fromkeys(Severity, 0)
        for severity in severities:
            tally[severity] += 1
        return cls.from_mapping(tally)

    @classmethod
    def from_findings(cls, findings: Iterable[Finding]) -> SeverityCounts:
        """Open findings only, as the JSON report counts them: a suppression is a decision."""
        return cls.from_severities(f.severity for f in findings if f.suppressed_by is None)

    @classmethod
    def from_mapping(cls, counts: Mapping[Severity, int]) -> SeverityCounts:
        return cls(**{severity.label: counts.get(severity, 0) for severity in Severity})


@dataclass(frozen=True)
class ScanTool:
    """Which scanner (``ToolInfo.name``) and version found the counts of a record."""

    name: str
    version: str


@dataclass(frozen=True)
class ScanDb:
    """The vulnerability data a record's scan read: where it came from and how old it was."""

    source: str  # pulled, built, merged or unknown
    repository: str | None = None  # a pulled DB's (or a merged DB's base) repository
    manifest_digest: str | None = None
    inputs: tuple[str, ...] = ()  # what a built or merged DB was made from
    next_update: datetime | None = None
    age_seconds: int | None = None  # the data's age when the scan ran

    def to_json(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "source": self.source,
            "repository": self.repository,
            "manifest_digest": self.manifest_digest,
            "inputs": list(self.inputs) or None,
            "next_update": _iso(self.next_update) if self.next_update is not None else None,
            "age_seconds": self.age_seconds,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class HistoryRecord:
    """What one scan of one image found, and with which tools."""

    date: datetime  # when the scan ran, timezone-aware UTC
    image: str  # catalog name
    digest: str  # image id or registry digest of what was scanned
    counts: SeverityCounts
    gate: GateResult | None  # None when the scan ran without a gate decision
    db_date: datetime | None  # when the vulnerability DB was built
    trivy_version: str | None  # the Trivy version, as records have said since the first
    tool: ScanTool | None = None  # the scanner whose findings were counted; absent in old records
    db: ScanDb | None = None  # the data it scanned against (its date is db_date); absent in old records

    def __post_init__(self) -> None:
        for name in ("date", "db_date"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware (UTC)")

    def to_json(self) -> dict[str, Any]:
        return {
            "date": _iso(self.date),
            "image": self.image,
            "digest": self.digest,
            "counts": {severity.label: self.counts.of(severity) for severity in SEVERITY_ORDER},
            "gate": self.gate.value if self.gate is not None else None,
            "db_date": _iso(self.db_date) if self.db_date is not None else None,
            "trivy_version": self.trivy_version,
            **({"tool": {"name": self.tool.name, "version": self.tool.version}} if self.tool else {}),
            **({"db": self.db.to_json()} if self.db else {}),
        }

    def to_line(self) -> str:
        """The record as one compact JSON line, newline included."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=True) + "\n"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _CountsModel(_Strict):
    critical: _Count
    high: _Count
    medium: _Count
    low: _Count
    unknown: _Count


class _ToolModel(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]
    version: _Version


# Printable text without control characters, as a repository reference or an input's description.
_Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,1024}$")]


class _DbModel(_Strict):
    source: Literal["pulled", "built", "merged", "unknown"]
    repository: _Text | None = None
    manifest_digest: Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")] | None = None
    inputs: Annotated[list[_Text], Field(max_length=64)] = Field(default_factory=list)
    next_update: AwareDatetime | None = None
    age_seconds: _Count | None = None


class _RecordModel(_Strict):
    date: AwareDatetime
    image: _ImageName
    digest: _Digest
    counts: _CountsModel
    # Required keys even when null: a record that forgot them is from a different writer.
    gate: Literal["pass", "fail"] | None
    db_date: AwareDatetime | None
    trivy_version: _Version | None
    tool: _ToolModel | None = None
    db: _DbModel | None = None


def history_path(history_dir: Path, image: str) -> Path:
    return history_dir / f"{image}{SUFFIX}"


def append_record(history_dir: Path, record: HistoryRecord) -> Path:
    """Append one line to ``<history_dir>/<image>.jsonl``; returns the file's path."""
    # Round-trip through the reader's model so that nothing the reader would reject is written.
    _parse_line(record.to_line(), Path(f"<record for {record.image}>"), 1)
    path = history_path(history_dir, record.image)
    append_line(path, record.to_line().encode("ascii"))
    return path


def append_line(path: Path, data: bytes) -> None:
    """Append one whole line (``data`` ends with a newline) to a history file, durably.

    One ``write(2)`` on an ``O_APPEND`` descriptor under an exclusive lock; a file whose last
    line is torn is refused rather than glued onto.
    """
    directory = path.parent
    # read-write: the torn-line check below reads the last byte
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot open {path} for appending: {exc}") from exc
    try:
        # Another writer's append can be half-visible between our size check and our read of
        # its last byte; holding the lock makes check and append one step for every writer.
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # Appending would glue the new record onto a torn one and hide both.
            raise ReportInputError(
                "the last line is incomplete (no newline at the end of the file)",
                location=Location(path, _count_lines(path)),
                hint="remove or repair the incomplete line, then scan again",
            )
        written = os.write(fd, data)
        if written != len(data):
            raise OutputError(
                f"short write to {path}: {written} of {len(data)} bytes; the last line is incomplete",
                hint="check free space, then remove the incomplete last line",
            )
        os.fsync(fd)
    except OSError as exc:
        raise OutputError(f"cannot append to {path}: {exc}", hint="check free space and permissions") from exc
    finally:
        os.close(fd)
    if size == 0:
        _fsync_dir(directory)  # a new file's directory entry must survive a crash too


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # best effort: some filesystems refuse to open directories
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def load_history(history_dir: Path) -> dict[str, list[HistoryRecord]]:
    """Every ``*.jsonl`` file in the directory, by image, each list in chronological order."""
    if not history_dir.is_dir():
        raise ReportInputError(
            "no scan history directory",
            location=Location(history_dir),
            hint="scan an image first (harden scan), or pass --history with the right directory",
        )
    history: dict[str, list[HistoryRecord]] = {}
    for path in sorted(history_dir.glob(f"*{SUFFIX}")):
        if path.is_file():
            history[path.name.removesuffix(SUFFIX)] = load_file(path)
    return history


def load_file(path: Path) -> list[HistoryRecord]:
    """The records of one history file, sorted by date (a stable sort keeps same-date order)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportInputError(f"cannot read the history file: {exc}", location=Location(path)) from exc
    image = path.name.removesuffix(SUFFIX)
    records: list[HistoryRecord] = []
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last record
    elif lines:
        raise _line_error(path, len(lines), "the line is incomplete (no newline at the end of the file)")
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _line_error(path, number, "not UTF-8 text") from None
        record = _parse_line(text, path, number)
        if record.image != image:
            raise _line_error(path, number, f"record for image {record.image!r} in the file of {image!r}")
        records.append(record)
    records.sort(key=lambda r: r.date)
    return records


def _parse_line(text: str, path: Path, number: int) -> HistoryRecord:
    if not text.strip():
        raise _line_error(path, number, "empty line")
    try:
        model = _RecordModel.model_validate_json(text)
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        field = dotted([p for p in problem["loc"] if isinstance(p, str | int)])
        kind = problem.get("type", "")
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = str(problem.get("msg", "invalid value"))
        more = len(exc.errors()) - 1
        raise _line_error(
            path,
            number,
            message + (f" (and {more} more)" if more else ""),
            field=None if kind == "json_invalid" else field,
        ) from None
    counts = model.counts
    return HistoryRecord(
        date=model.date.astimezone(UTC),
        image=model.image,
        digest=model.digest,
        counts=SeverityCounts(counts.critical, counts.high, counts.medium, counts.low, counts.unknown),
        gate=GateResult(model.gate) if model.gate is not None else None,
        db_date=model.db_date.astimezone(UTC) if model.db_date is not None else None,
        trivy_version=model.trivy_version,
        tool=ScanTool(model.tool.name, model.tool.version) if model.tool is not None else None,
        db=_db(model.db) if model.db is not None else None,
    )


def _db(model: _DbModel) -> ScanDb:
    return ScanDb(
        source=model.source,
        repository=model.repository,
        manifest_digest=model.manifest_digest,
        inputs=tuple(model.inputs),
        next_update=model.next_update.astimezone(UTC) if model.next_update is not None else None,
        age_seconds=model.age_seconds,
    )


def _line_error(path: Path, number: int, message: str, *, field: str | None = None) -> ReportInputError:
    return ReportInputError(
        message,
        location=Location(path, number, field),
        hint="each line must be one record written by `harden scan`; fix or remove this line",
    )
