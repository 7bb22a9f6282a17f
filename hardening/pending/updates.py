"""The update history: when each pending update was first seen, and which release shipped it.

``<history>/updates/<image>.jsonl``, one event per line, committed with the scan history:

* ``seen`` — a check found the image lacking a newer version the archive carries: the pocket's
  suite, source package and version, whether it is a security update, its CVEs, and
  ``first_seen`` (the earliest ``Release`` date under which the archive was seen carrying it);
* ``released`` — a release of the image carries that version (or no longer has the package).

First sightings are read back from here by every check (``known_sightings``), so a fresh CI
machine with an empty archive cache does not take an old update for a new one. Patch latency
is ``released - first_seen`` (``harden trend``). Files only grow; reading is strict and names
the file and line, as the scan history's reader does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from debian.debian_support import Version
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from hardening.errors import Location, ReportInputError
from hardening.findings import Finding
from hardening.history import append_line
from hardening.pending.findings import is_pending, iso
from hardening.validation import dotted

UPDATES_DIR = "updates"
SUFFIX = ".jsonl"

_Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.+_-]{0,127}$")]
_DebVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.+~:-]{1,128}$")]
_Image = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
_Cve = Annotated[str, StringConstraints(pattern=r"^CVE-[0-9]{4}-[0-9]{4,}$")]
_Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Update(_Strict):
    image: _Image
    suite: _Name
    source: _Name
    version: _DebVersion


class _SeenModel(_Update):
    event: Literal["seen"]
    security: bool
    cves: list[_Cve]
    packages: list[_Name] = Field(min_length=1)
    first_seen: AwareDatetime
    recorded: AwareDatetime


class _ReleasedModel(_Update):
    event: Literal["released"]
    released: AwareDatetime
    digest: _Digest
    refs: list[Annotated[str, StringConstraints(min_length=1, max_length=512)]]
    installed: _DebVersion | None  # None: the release no longer has the package at all


_LINE: pydantic.TypeAdapter[_SeenModel | _ReleasedModel] = pydantic.TypeAdapter(
    Annotated[_SeenModel | _ReleasedModel, Field(discriminator="event")]
)


@dataclass(frozen=True)
class Seen:
    image: str
    suite: str
    source: str
    version: str
    security: bool
    cves: tuple[str, ...]
    packages: tuple[str, ...]
    first_seen: datetime
    recorded: datetime

    @property
    def key(self) -> str:
        return sighting(self.suite, self.source, self.version)


@dataclass(frozen=True)
class Released:
    image: str
    suite: str
    source: str
    version: str
    released: datetime
    digest: str
    refs: tuple[str, ...]
    installed: str | None

    @property
    def key(self) -> str:
        return sighting(self.suite, self.source, self.version)


Event = Seen | Released


def sighting(suite: str, source: str, version: str) -> str:
    """The archive's own key for a first sighting (``hardening.archive.outdated.sighting_key``)."""
    return f"{suite}/{source}/{version}"


def updates_path(history_dir: Path, image: str) -> Path:
    return history_dir / UPDATES_DIR / f"{image}{SUFFIX}"


def _to_line(event: Event) -> bytes:
    if isinstance(event, Seen):
        doc: dict[str, object] = {
            "event": "seen",
            "image": event.image,
            "suite": event.suite,
            "source": event.source,
            "version": event.version,
            "security": event.security,
            "cves": list(event.cves),
            "packages": list(event.packages),
            "first_seen": iso(event.first_seen),
            "recorded": iso(event.recorded),
        }
    else:
        doc = {
            "event": "released",
            "image": event.image,
            "suite": event.suite,
            "source": event.source,
            "version": event.version,
            "released": iso(event.released),
            "digest": event.digest,
            "refs": list(event.refs),
            "installed": event.installed,
        }
    line = json.dumps(doc, separators=(",", ":"), ensure_ascii=True)
    _LINE.validate_json(line)  # nothing the reader would refuse is ever written
    return (line + "\n").encode("ascii")


def load_updates(history_dir: Path) -> dict[str, list[Event]]:
    """Every image's events, in file order; an absent directory is an empty history."""
    folder = history_dir / UPDATES_DIR
    found: dict[str, list[Event]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if path.is_file():
            found[path.name.removesuffix(SUFFIX)] = load_file(path)
    return found


def load_file(path: Path) -> list[Event]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportInputError(f"cannot read the update history: {exc}", location=Location(path)) from exc
    image = path.name.removesuffix(SUFFIX)
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        raise _line_error(path, len(lines), "the line is incomplete (no newline at the end of the file)")
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        event = _parse(line, path, number)
        if event.image != image:
            raise _line_error(path, number, f"event of image {event.image!r} in the file of {image!r}")
        events.append(event)
    return events


def _parse(line: bytes, path: Path, number: int) -> Event:
    try:
        text = line.decode("utf-8")
        item = _LINE.validate_json(text) if text.strip() else None
    except UnicodeDecodeError:
        raise _line_error(path, number, "not UTF-8 text") from None
    except pydantic.ValidationError as exc:
        problem = exc.errors()[0]
        where = [p for p in problem["loc"] if isinstance(p, str | int)][1:]
        kind = problem.get("type", "")
        message = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(
            kind, str(problem.get("msg", "invalid value"))
        )
        raise _line_error(path, number, message, field=dotted(where) if where else None) from None
    if item is None:
        raise _line_error(path, number, "empty line")
    if isinstance(item, _SeenModel):
        return Seen(
            item.image,
            item.suite,
            item.source,
            item.version,
            item.security,
            tuple(item.cves),
            tuple(item.packages),
            item.first_seen.astimezone(UTC),
            item.recorded.astimezone(UTC),
        )
    return Released(
        item.image,
        item.suite,
        item.source,
        item.version,
        item.released.astimezone(UTC),
        item.digest,
        tuple(item.refs),
        item.installed,
    )


def _line_error(path: Path, number: int, message: str, *, field: str | None = None) -> ReportInputError:
    return ReportInputError(
        message,
        location=Location(path, number, field),
        hint="each line must be one event written by harden (seen or released); fix or remove this line",
    )


def known_sightings(history_dirs: Iterable[Path]) -> dict[str, str]:
    """The earliest recorded first sighting of every (suite, source, version), across images."""
    earliest: dict[str, datetime] = {}
    for directory in dict.fromkeys(history_dirs):
        for events in load_updates(directory).values():
            for event in events:
                if isinstance(event, Seen) and (
                    event.key not in earliest or event.first_seen < earliest[event.key]
                ):
                    earliest[event.key] = event.first_seen
    return {key: iso(moment) for key, moment in sorted(earliest.items())}


def _events_of(image: str, directories: Sequence[Path]) -> list[Event]:
    events: list[Event] = []
    for directory in dict.fromkeys(directories):
        path = updates_path(directory, image)
        if path.is_file():
            events.extend(load_file(path))
    return events


def record_seen(
    history_dir: Path, image: str, findings: Iterable[Finding], *, now: datetime, also_in: Sequence[Path] = ()
) -> list[Seen]:
    """A ``seen`` event for each pending update not yet recorded for ``image`` (in ``history_dir``
    or the histories ``also_in``, e.g. the committed one a CI job started from)."""
    recorded = {e.key for e in _events_of(image, [history_dir, *also_in]) if isinstance(e, Seen)}
    grouped: dict[str, Seen] = {}
    for finding in findings:
        if not is_pending(finding):
            continue
        props = dict(finding.properties)
        key = sighting(
            props.get("suite", ""), props.get("source", ""), props.get("candidate_source_version", "")
        )
        first_seen = datetime.fromisoformat(props.get("first_seen", iso(now)).replace("Z", "+00:00"))
        if key in recorded:
            continue
        previous = grouped.get(key)
        packages = tuple(sorted({*(previous.packages if previous else ()), finding.package or ""} - {""}))
        grouped[key] = Seen(
            image=image,
            suite=props.get("suite", ""),
            source=props.get("source", ""),
            version=props.get("candidate_source_version", ""),
            security=props.get("security") == "true",
            cves=tuple(props.get("cves", "").split()),
            packages=packages,
            first_seen=first_seen,
            recorded=now,
        )
    added = [grouped[key] for key in sorted(grouped)]
    for event in added:
        append_line(updates_path(history_dir, image), _to_line(event))
    return added


def record_released(
    history_dir: Path,
    image: str,
    installed: Mapping[str, str],
    *,
    released: datetime,
    digest: str,
    refs: Sequence[str],
    also_in: Sequence[Path] = (),
) -> list[Released]:
    """A ``released`` event for each update seen for ``image`` that this release now carries."""
    events = _events_of(image, [history_dir, *also_in])
    shipped = {e.key for e in events if isinstance(e, Released)}
    added: list[Released] = []
    for event in events:
        if not isinstance(event, Seen) or event.key in shipped:
            continue
        have = installed.get(event.source)
        if have is not None and not _at_least(have, event.version):
            continue
        shipped.add(event.key)
        added.append(
            Released(image, event.suite, event.source, event.version, released, digest, tuple(refs), have)
        )
    for item in added:
        append_line(updates_path(history_dir, image), _to_line(item))
    return added


def _at_least(have: str, wanted: str) -> bool:
    try:
        return Version(have) >= Version(wanted)
    except ValueError:
        return False


@dataclass(frozen=True)
class Latency:
    """One update from its first sighting in the archive to the release that carried it."""

    image: str
    suite: str
    source: str
    version: str
    security: bool
    cves: tuple[str, ...]
    first_seen: datetime
    released: datetime

    @property
    def hours(self) -> float:
        return max(0.0, (self.released - self.first_seen).total_seconds() / 3600)


def latencies(events: Sequence[Event], *, known: Mapping[str, str] | None = None) -> list[Latency]:
    """Every released update of one image's events, oldest release first.

    ``known`` (every image's earliest sightings, ``known_sightings``) may move a first sighting
    earlier: the archive carried the update from then, whichever image saw it first.
    """
    seen: dict[str, Seen] = {}
    for event in events:
        if isinstance(event, Seen) and (
            event.key not in seen or event.first_seen < seen[event.key].first_seen
        ):
            seen[event.key] = event
    found: list[Latency] = []
    done: set[str] = set()
    for event in events:
        if not isinstance(event, Released) or event.key in done or event.key not in seen:
            continue
        done.add(event.key)
        origin = seen[event.key]
        first = origin.first_seen
        other = (known or {}).get(event.key)
        if other is not None:
            first = min(first, datetime.fromisoformat(other.replace("Z", "+00:00")))
        found.append(
            Latency(
                event.image,
                event.suite,
                event.source,
                event.version,
                origin.security,
                origin.cves,
                first,
                event.released,
            )
        )
    found.sort(key=lambda item: (item.released, item.source))
    return found
