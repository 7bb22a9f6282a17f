"""Build a Trivy vulnerability DB (schema 2) from OSV advisory files, without any network.

Trivy cannot download its DB on air-gapped machines, so ``harden db build`` writes one from the
OSV records we keep in ``advisories/``. The layout follows what trivy-db produces and what
Trivy 0.76 reads:

* ``pip::GitHub Security Advisory pip`` → package (lower case, ``_`` as ``-``) → vuln id →
  ``{"VendorIDs", "VulnerableVersions", "PatchedVersions"}`` (the GHSA data source);
* ``debian <major>`` → *source* package → vuln id → ``{"FixedVersion"}`` or, unfixed,
  ``{"Status", "Severity"}`` (the Debian security tracker data source);
* ``data-source`` → advisory bucket name → ``{"ID", "Name", "URL"}``;
* ``vulnerability`` → vuln id → title, description, severities, CVSS, references, dates.

A record's key is its CVE id when it has one (among ``id``, ``aliases`` and ``upstream``),
otherwise its own id; the other ids become VendorIDs. That is trivy-db's rule, and it is what
makes a GHSA record and a Debian record for the same CVE meet under one vulnerability entry.

Debian's unfixed states are not part of OSV; records carry them the way the security tracker
names them, in ``affected[].ecosystem_specific``: ``{"urgency": "low", "status": "no-dsa"}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    model_validator,
)

from hardening.errors import AdvisoryError, DatabaseError, Location
from hardening.scan import bbolt

SCHEMA_VERSION = 2

PIP_BUCKET = "pip::GitHub Security Advisory pip"
VULNERABILITY_BUCKET = "vulnerability"
DATA_SOURCE_BUCKET = "data-source"

GHSA = "ghsa"
DEBIAN = "debian"

_DATA_SOURCES: dict[str, dict[str, str]] = {
    GHSA: {
        "ID": GHSA,
        "Name": "GitHub Security Advisory pip",
        "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Apip",
    },
    DEBIAN: {
        "ID": DEBIAN,
        "Name": "Debian Security Tracker",
        "URL": "https://salsa.debian.org/security-tracker-team/security-tracker",
    },
}

# trivy-db picks titles, descriptions and the legacy Severity field by this source precedence
# (its AllSourceIDs order, restricted to the sources we can hold).
_SOURCE_PRECEDENCE = ("nvd", DEBIAN, GHSA)

SEVERITY_NAMES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_GHSA_SEVERITY = {"LOW": 1, "MODERATE": 2, "HIGH": 3, "CRITICAL": 4}
_DEBIAN_URGENCY = {
    "unimportant": 1,
    "low": 1,
    "medium": 2,
    "high": 3,
    "not yet assigned": 0,
    "end-of-life": 0,
}
# Status numbers are trivy-db's types.Status; names are the security tracker's.
_DEBIAN_STATUS = {"unfixed": 2, "no-dsa": 2, "ignored": 5, "postponed": 6, "end-of-life": 7}
_STATUS_AFFECTED = 2

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
_DEBIAN_ECOSYSTEM = re.compile(r"^Debian:(\d+)(?:\.\d+)*$")
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?\d[A-Za-z0-9.+~-]*$")

_NEXT_UPDATE_AFTER = timedelta(days=3650)


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


# --- what the DB holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class DbInfo:
    """What ``build_db`` wrote."""

    path: Path
    advisories: int
    vulnerabilities: int
    updated_at: datetime


@dataclass(frozen=True)
class Cvss:
    vector: str
    score: float


@dataclass(frozen=True)
class _Detail:
    """What one data source says about one vulnerability."""

    title: str
    description: str
    severity: int
    cvss: Cvss | None
    cwe_ids: tuple[str, ...]
    references: tuple[str, ...]
    published: datetime | None
    modified: datetime | None


@dataclass
class _Entry:
    """One advisory value under bucket → package → vuln id, and the file it came from."""

    origin: Path
    value: dict[str, Any]


@dataclass
class _Db:
    advisories: dict[str, dict[str, dict[str, _Entry]]] = field(default_factory=dict)
    details: dict[str, dict[str, _Detail]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


# --- public API -----------------------------------------------------------------------------


def build_db(advisory_paths: Sequence[Path], cache_dir: Path, *, now: datetime | None = None) -> DbInfo:
    """Write ``cache_dir/db/trivy.db`` and ``cache_dir/db/metadata.json`` from OSV files.

    ``advisory_paths`` are OSV JSON files or directories searched for ``*.json``. A naive
    ``now`` is taken as UTC. Raises ``AdvisoryError`` for a bad advisory (with file and field)
    and ``DatabaseError`` when the files cannot be written.
    """
    moment = _utc(now or datetime.now(UTC))
    db = _Db()
    used = 0
    for path in _advisory_files(advisory_paths):
        record = load_record(path)
        if record.withdrawn is not None and record.withdrawn <= moment:
            continue
        _add_record(db, record, path)
        used += 1
    tree = _tree(db)
    db_dir = cache_dir / "db"
    db_path = db_dir / "trivy.db"
    bbolt.write(db_path, tree)
    write_metadata(db_dir, now=moment)
    return DbInfo(path=db_path, advisories=used, vulnerabilities=len(db.details), updated_at=moment)


def write_metadata(db_dir: Path, *, now: datetime, version: int = SCHEMA_VERSION) -> Path:
    """Write ``metadata.json`` so that Trivy uses the local DB and never downloads one.

    Trivy accepts ``--skip-db-update`` only for schema ``Version`` 2; a future ``NextUpdate``
    and a recent ``DownloadedAt`` also stop it from downloading when the flag is forgotten.
    """
    moment = _utc(now)
    metadata = {
        "Version": version,
        "NextUpdate": _go_time(moment + _NEXT_UPDATE_AFTER),
        "UpdatedAt": _go_time(moment),
        "DownloadedAt": _go_time(moment),
    }
    path = db_dir / "metadata.json"
    temp = db_dir / ".metadata.json.tmp"
    try:
        db_dir.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        temp.replace(path)
    except OSError as error:
        raise DatabaseError(
            f"cannot write {path}: {error.strerror}",
            location=Location(path),
            hint="check free space and permissions of the cache directory",
        ) from error
    return path


def load_record(path: Path) -> OsvRecord:
    """Parse and validate one OSV file; ``AdvisoryError`` names the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AdvisoryError(f"cannot read advisory: {error}", location=Location(path)) from error
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise AdvisoryError(
            f"not valid JSON: {error.msg}",
            location=Location(path, error.lineno),
            hint="advisories are OSV JSON documents, one per file",
        ) from error
    try:
        return OsvRecord.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        details = "\n".join(f"{_loc(e['loc'])}: {e['msg']}" for e in error.errors())
        raise AdvisoryError(
            f"not a valid OSV record: {first['msg']}",
            location=Location(path, None, _loc(first["loc"])),
            details=details,
            hint="see https://ossf.github.io/osv-schema/ for the fields",
        ) from error


def normalize_pip_name(name: str) -> str:
    """The package key Trivy looks PyPI advisories up by: lower case, ``_`` read as ``-``."""
    return name.lower().replace("_", "-")


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of ``vector``; ``ValueError`` if it is not one."""
    parts = vector.strip().rstrip("/").split("/")
    version = parts[0]
    if version not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, value = part.partition(":")
        if not sep or name in metrics:
            raise ValueError(f"malformed metric {part!r} in {vector!r}")
        metrics[name] = value
    try:
        scope_changed = {"U": False, "C": True}[metrics["S"]]
        av = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}[metrics["AV"]]
        ac = {"L": 0.77, "H": 0.44}[metrics["AC"]]
        pr = {"N": 0.85, "L": 0.68 if scope_changed else 0.62, "H": 0.5 if scope_changed else 0.27}[
            metrics["PR"]
        ]
        ui = {"N": 0.85, "R": 0.62}[metrics["UI"]]
        cia = [{"H": 0.56, "L": 0.22, "N": 0.0}[metrics[m]] for m in ("C", "I", "A")]
    except KeyError as error:
        raise ValueError(f"missing or unknown base metric {error} in {vector!r}") from error
    iss = 1 - (1 - cia[0]) * (1 - cia[1]) * (1 - cia[2])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if scope_changed else 6.42 * iss
    exploitability = 8.22 * av * ac * pr * ui
    if impact <= 0:
        return 0.0
    total = 1.08 * (impact + exploitability) if scope_changed else impact + exploitability
    roundup = _roundup31 if version == "CVSS:3.1" else _roundup30
    return roundup(min(total, 10.0))


# --- conversion -----------------------------------------------------------------------------


def _advisory_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise AdvisoryError("advisory path does not exist", location=Location(path))
    return files


def _add_record(db: _Db, record: OsvRecord, path: Path) -> None:
    vuln_ids, vendor_ids = _group_ids(record)
    severity_v3 = _cvss(record.severity, path, "severity")
    for index, affected in enumerate(record.affected):
        where = f"affected[{index}]"
        ecosystem = affected.package.ecosystem
        affected_cvss = _cvss(affected.severity, path, f"{where}.severity") or severity_v3
        if ecosystem == "PyPI":
            bucket, source = PIP_BUCKET, GHSA
            package = normalize_pip_name(affected.package.name)
            value = _pip_advisory(affected, path, where)
            detail = _ghsa_detail(record, affected_cvss, path)
            ids = vendor_ids
        elif match := _DEBIAN_ECOSYSTEM.match(ecosystem):
            bucket, source = f"debian {match.group(1)}", DEBIAN
            package = affected.package.name
            if not _DEBIAN_PACKAGE.match(package):
                raise AdvisoryError(
                    f"{package!r} is not a Debian source package name",
                    location=Location(path, None, f"{where}.package.name"),
                )
            value, urgency = _debian_advisory(affected, path, where)
            detail = _debian_detail(record, urgency, affected_cvss)
            # Debian's own per-CVE record ids (DEBIAN-CVE-…) say nothing the CVE id does not;
            # trivy-db keeps only DSA/DLA ids as Debian VendorIDs.
            ids = [i for i in vendor_ids if not i.startswith("DEBIAN-CVE-")]
        else:
            raise AdvisoryError(
                f"ecosystem {ecosystem!r} is not supported",
                location=Location(path, None, f"{where}.package.ecosystem"),
                hint='use "PyPI" or "Debian:<major version>"',
            )
        if ids:
            value = {"VendorIDs": ids, **value}
        db.sources[bucket] = source
        packages = db.advisories.setdefault(bucket, {}).setdefault(package, {})
        for vuln_id in vuln_ids:
            previous = packages.get(vuln_id)
            if previous is not None and previous.origin != path:
                raise AdvisoryError(
                    f"{vuln_id} for {package} in {bucket!r} is also defined by {previous.origin}",
                    location=Location(path, None, f"{where}.package"),
                    hint="keep one advisory per vulnerability and package",
                )
            if previous is not None:
                # The same package listed twice in one record: merge the ranges, as trivy-db does.
                for key in ("VulnerableVersions", "PatchedVersions"):
                    merged = previous.value.get(key, []) + value.get(key, [])
                    if merged:
                        previous.value[key] = merged
                continue
            packages[vuln_id] = _Entry(path, dict(value))
            db.details.setdefault(vuln_id, {})[source] = _merge_detail(
                db.details.get(vuln_id, {}).get(source), detail
            )


def _group_ids(record: OsvRecord) -> tuple[list[str], list[str]]:
    others = list(dict.fromkeys([*record.aliases, *record.upstream]))
    every = [*others, record.id]
    cves = list(dict.fromkeys(i for i in every if i.startswith("CVE-")))
    if not cves:
        return [record.id], [i for i in others if i != record.id]
    return cves, list(dict.fromkeys(i for i in every if not i.startswith("CVE-")))


def _pip_advisory(affected: OsvAffected, path: Path, where: str) -> dict[str, Any]:
    vulnerable: list[str] = []
    patched: list[str] = []
    specifiers: list[SpecifierSet] = []
    for r_index, osv_range in enumerate(affected.ranges):
        range_where = f"{where}.ranges[{r_index}]"
        if osv_range.type == "GIT":
            continue
        if osv_range.type != "ECOSYSTEM":
            raise AdvisoryError(
                f"range type {osv_range.type} does not apply to PyPI",
                location=Location(path, None, f"{range_where}.type"),
            )
        for constraint, fixed in _ranges(osv_range, path, range_where, _check_pep440):
            vulnerable.append(constraint)
            if fixed is not None:
                patched.append(fixed)
            specifiers.append(_specifier(constraint))
    for v_index, version in enumerate(affected.versions):
        _check_pep440(version, path, f"{where}.versions[{v_index}]")
        # Versions already inside a range add nothing; trivy-db drops them too.
        if not any(spec.contains(version, prereleases=True) for spec in specifiers):
            vulnerable.append(f"={version}")
    vulnerable = _apply_last_known_range(vulnerable, affected.database_specific, path, where)
    if not vulnerable and not patched:
        raise AdvisoryError(
            "the advisory names no affected PyPI versions",
            location=Location(path, None, where),
            hint="give ranges with introduced/fixed events or a versions list",
        )
    value: dict[str, Any] = {}
    if vulnerable:
        value["VulnerableVersions"] = vulnerable
    if patched:
        value["PatchedVersions"] = patched
    return value


def _ranges(
    osv_range: OsvRange, path: Path, where: str, check: Callable[[str, Path, str], None]
) -> Iterable[tuple[str, str | None]]:
    """(constraint, fixed version) per introduced event, in trivy-db's constraint syntax."""
    start: str | None = None
    for e_index, event in enumerate(osv_range.events):
        event_where = f"{where}.events[{e_index}]"
        if event.introduced is not None:
            if start is not None:
                yield _constraint(start, None, False), None
            if event.introduced != "0":
                check(event.introduced, path, f"{event_where}.introduced")
            start = event.introduced
        elif start is None:
            raise AdvisoryError(
                "an event comes before any introduced event",
                location=Location(path, None, event_where),
            )
        elif event.fixed is not None:
            check(event.fixed, path, f"{event_where}.fixed")
            yield _constraint(start, event.fixed, False), event.fixed
            start = None
        elif event.last_affected is not None:
            check(event.last_affected, path, f"{event_where}.last_affected")
            yield _constraint(start, event.last_affected, True), None
            start = None
        else:
            raise AdvisoryError(
                "limit events are not supported",
                location=Location(path, None, f"{event_where}.limit"),
            )
    if start is not None:
        yield _constraint(start, None, False), None


def _constraint(start: str, end: str | None, inclusive: bool) -> str:
    if end is not None and inclusive and start == end:
        return f"={start}"
    if end is None:
        return f">={start}"
    upper = f"<={end}" if inclusive else f"<{end}"
    # ">=0" is implied; trivy-db leaves it out.
    return upper if start == "0" else f">={start}, {upper}"


def _specifier(constraint: str) -> SpecifierSet:
    # trivy-db writes an exact version as "=1.2"; PEP 440 spells it "==1.2".
    parts = [c.strip() for c in constraint.split(",")]
    return SpecifierSet(",".join(f"={c}" if c.startswith("=") else c for c in parts))


def _check_pep440(version: str, path: Path, where: str) -> None:
    try:
        Version(version)
    except InvalidVersion as error:
        raise AdvisoryError(
            f"{version!r} is not a PEP 440 version", location=Location(path, None, where)
        ) from error


def _check_debian_version(version: str, path: Path, where: str) -> None:
    if not _DEBIAN_VERSION.match(version):
        raise AdvisoryError(f"{version!r} is not a Debian version", location=Location(path, None, where))


def _apply_last_known_range(
    vulnerable: list[str], specific: Mapping[str, Any] | None, path: Path, where: str
) -> list[str]:
    """GHSA's ``last_known_affected_version_range`` bounds open ranges, as in trivy-db."""
    if not specific or "last_known_affected_version_range" not in specific:
        return vulnerable
    bound = specific["last_known_affected_version_range"]
    if not isinstance(bound, str) or not re.match(r"^<=?\s*\S+$", bound.strip()):
        raise AdvisoryError(
            "expected '< version' or '<= version'",
            location=Location(path, None, f"{where}.database_specific.last_known_affected_version_range"),
        )
    compact = bound.replace(" ", "")
    return [v if "<" in v or v.startswith("=") else f"{v}, {compact}" for v in vulnerable]


def _debian_advisory(affected: OsvAffected, path: Path, where: str) -> tuple[dict[str, Any], str | None]:
    fixed: list[str] = []
    for r_index, osv_range in enumerate(affected.ranges):
        range_where = f"{where}.ranges[{r_index}]"
        if osv_range.type != "ECOSYSTEM":
            raise AdvisoryError(
                f"range type {osv_range.type} does not apply to Debian",
                location=Location(path, None, f"{range_where}.type"),
            )
        for e_index, event in enumerate(osv_range.events):
            event_where = f"{range_where}.events[{e_index}]"
            if event.fixed is not None:
                _check_debian_version(event.fixed, path, f"{event_where}.fixed")
                fixed.append(event.fixed)
            elif event.introduced is not None:
                if event.introduced != "0":
                    _check_debian_version(event.introduced, path, f"{event_where}.introduced")
            else:
                raise AdvisoryError(
                    "Debian advisories take only introduced and fixed events",
                    location=Location(path, None, event_where),
                )
    if len(fixed) > 1:
        raise AdvisoryError(
            "more than one fixed version for one Debian release",
            location=Location(path, None, f"{where}.ranges"),
            hint="Trivy holds one FixedVersion per release and source package",
        )
    specific = affected.ecosystem_specific or {}
    urgency = _optional_str(specific, "urgency", path, f"{where}.ecosystem_specific.urgency")
    if urgency is not None and urgency not in _DEBIAN_URGENCY:
        raise AdvisoryError(
            f"unknown Debian urgency {urgency!r}",
            location=Location(path, None, f"{where}.ecosystem_specific.urgency"),
            hint="one of " + ", ".join(sorted(_DEBIAN_URGENCY)),
        )
    status = _optional_str(specific, "status", path, f"{where}.ecosystem_specific.status")
    if status is not None and status not in _DEBIAN_STATUS:
        raise AdvisoryError(
            f"unknown Debian status {status!r}",
            location=Location(path, None, f"{where}.ecosystem_specific.status"),
            hint="one of " + ", ".join(sorted(_DEBIAN_STATUS)),
        )
    severity = _DEBIAN_URGENCY.get(urgency or "", 0)
    value: dict[str, Any] = {}
    if fixed:
        value["FixedVersion"] = fixed[0]
    else:
        value["Status"] = _DEBIAN_STATUS.get(status or "", _STATUS_AFFECTED)
    if severity:
        value["Severity"] = severity
    return value, urgency


def _optional_str(specific: Mapping[str, Any], key: str, path: Path, where: str) -> str | None:
    value = specific.get(key)
    if value is None or isinstance(value, str):
        return value
    raise AdvisoryError("expected a string", location=Location(path, None, where))


def _cvss(severities: Sequence[OsvSeverity], path: Path, where: str) -> Cvss | None:
    found: Cvss | None = None
    for index, severity in enumerate(severities):
        if severity.type != "CVSS_V3":
            # CVSS v2 and v4 scores are not computed here; Trivy shows the vendor severity.
            continue
        vector = severity.score.strip().rstrip("/")
        try:
            found = Cvss(vector, cvss3_base_score(vector))
        except ValueError as error:
            raise AdvisoryError(
                str(error), location=Location(path, None, f"{where}[{index}].score")
            ) from error
    return found


def _ghsa_detail(record: OsvRecord, cvss: Cvss | None, path: Path) -> _Detail:
    specific = record.database_specific or {}
    name = specific.get("severity")
    if name is not None and name not in _GHSA_SEVERITY:
        raise AdvisoryError(
            f"unknown GHSA severity {name!r}",
            location=Location(path, None, "database_specific.severity"),
            hint="one of LOW, MODERATE, HIGH, CRITICAL",
        )
    cwe_ids = specific.get("cwe_ids", [])
    if not isinstance(cwe_ids, list) or not all(isinstance(c, str) for c in cwe_ids):
        raise AdvisoryError(
            "expected a list of CWE ids", location=Location(path, None, "database_specific.cwe_ids")
        )
    return _Detail(
        title=record.summary,
        description=record.details,
        severity=_GHSA_SEVERITY.get(name or "", 0),
        cvss=cvss,
        cwe_ids=tuple(cwe_ids),
        references=tuple(r.url for r in record.references),
        published=record.published,
        modified=record.modified,
    )


def _debian_detail(record: OsvRecord, urgency: str | None, cvss: Cvss | None) -> _Detail:
    return _Detail(
        # Debian's descriptions are one line; trivy-db uses them as the title.
        title=record.summary or record.details,
        description=record.details if record.summary else "",
        severity=_DEBIAN_URGENCY.get(urgency or "", 0),
        cvss=cvss,
        cwe_ids=(),
        references=tuple(r.url for r in record.references),
        published=record.published,
        modified=record.modified,
    )


def _merge_detail(previous: _Detail | None, new: _Detail) -> _Detail:
    if previous is None:
        return new
    return _Detail(
        title=previous.title or new.title,
        description=previous.description or new.description,
        severity=max(previous.severity, new.severity),
        cvss=previous.cvss or new.cvss,
        cwe_ids=previous.cwe_ids or new.cwe_ids,
        references=tuple(dict.fromkeys([*previous.references, *new.references])),
        published=_earliest(previous.published, new.published),
        modified=_latest(previous.modified, new.modified),
    )


def _vulnerability(details: Mapping[str, _Detail]) -> dict[str, Any]:
    ordered = [details[s] for s in _SOURCE_PRECEDENCE if s in details]
    vendor_severity = {s: _effective_severity(d) for s, d in details.items() if _effective_severity(d)}
    cvss = {
        s: {"V3Vector": d.cvss.vector, "V3Score": d.cvss.score}
        for s, d in details.items()
        if d.cvss is not None and d.cvss.score > 0
    }
    severity = next((_effective_severity(d) for d in ordered if _effective_severity(d)), 0)
    references = sorted({r.strip() for d in ordered for r in d.references if r.strip()})
    # trivy-db takes dates from NVD (for CVEs) or GHSA only; we hold no NVD data, so GHSA's.
    dated = [details[GHSA]] if GHSA in details else []
    published = _earliest(*(d.published for d in dated))
    modified = _latest(*(d.modified for d in dated))
    vulnerability: dict[str, Any] = {
        "Title": next((d.title for d in ordered if d.title), ""),
        "Description": next((d.description for d in ordered if d.description), ""),
        "Severity": SEVERITY_NAMES[severity],
        "CweIDs": next((list(d.cwe_ids) for d in ordered if d.cwe_ids), []),
        "VendorSeverity": vendor_severity,
        "CVSS": cvss,
        "References": references,
        "PublishedDate": _go_time(published) if published else None,
        "LastModifiedDate": _go_time(modified) if modified else None,
    }
    # Go's omitempty: absent rather than empty.
    return {k: v for k, v in vulnerability.items() if v not in (None, "", [], {})}


def _effective_severity(detail: _Detail) -> int:
    if detail.severity:
        return detail.severity
    if detail.cvss is None or detail.cvss.score <= 0:
        return 0
    score = detail.cvss.score
    return 4 if score >= 9.0 else 3 if score >= 7.0 else 2 if score >= 4.0 else 1


def _tree(db: _Db) -> dict[bytes, Any]:
    tree: dict[bytes, Any] = {
        DATA_SOURCE_BUCKET.encode(): {
            bucket.encode(): _json(_DATA_SOURCES[source]) for bucket, source in db.sources.items()
        },
        VULNERABILITY_BUCKET.encode(): {
            vuln_id.encode(): _json(_vulnerability(details)) for vuln_id, details in db.details.items()
        },
    }
    for bucket, packages in db.advisories.items():
        tree[bucket.encode()] = {
            package.encode(): {vuln_id.encode(): _json(entry.value) for vuln_id, entry in ids.items()}
            for package, ids in packages.items()
        }
    return tree


# --- small helpers --------------------------------------------------------------------------


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _go_time(moment: datetime) -> str:
    """RFC 3339 in UTC, as Go's time.Time marshals it."""
    utc = _utc(moment)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def _latest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return max(present) if present else None


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<document>"


def _roundup31(value: float) -> float:
    # CVSS 3.1 Appendix A: round up to one decimal without floating-point surprises.
    scaled = round(value * 100000)
    if scaled % 10000 == 0:
        return scaled / 100000.0
    return (math.floor(scaled / 10000) + 1) / 10.0


def _roundup30(value: float) -> float:
    return math.ceil(value * 10) / 10
