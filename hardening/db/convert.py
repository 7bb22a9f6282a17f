"""OSV records → the buckets of Trivy's vulnerability DB (schema 2), as trivy-db lays them out.

The layout is what Trivy 0.76 reads:

* ``<ecosystem>::<data source name>`` → package → vuln id → ``{"VendorIDs", "VulnerableVersions",
  "PatchedVersions"}`` for language packages. Trivy looks a package up in every bucket whose name
  starts with the ecosystem prefix (``pip::``, ``go::``), so the name after ``::`` says where the
  data came from: GitHub's advisories, the PyPA database, the Go vulnerability database;
* ``debian <major>`` → *source* package → vuln id → ``{"FixedVersion"}`` or, unfixed,
  ``{"Status", "Severity"}``;
* ``data-source`` → advisory bucket name → ``{"ID", "Name", "URL"}``;
* ``vulnerability`` → vuln id → title, description, severities, CVSS, references, dates.

Go: Trivy reports a binary's standard library as package ``stdlib`` and its modules by module
path (case kept). As in trivy-db, the standard library and ``golang.org/x/*`` come from the Go
vulnerability database (data source ``govulndb``) and every other module goes into the bucket of
GitHub's advisories for Go, where upstream DBs keep third-party modules (the Go database's
records for them carry their GHSA ids as vendor ids). ``toolchain`` (the go command) is out of
scope, as in trivy-db.

A record's key is its CVE id when it has one (among ``id``, ``aliases`` and ``upstream``),
otherwise its own id; the other ids become VendorIDs. That is trivy-db's rule, and it is what
makes records of several sources for one CVE meet under one vulnerability entry. Severity comes
from ``database_specific.severity`` or a CVSS v3 vector where the record has one; otherwise it is
unknown — never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, assert_never

from hardening.db import debian
from hardening.db.cvss import cvss3_base_score
from hardening.db.osv import Origin, OsvAffected, OsvRecord, OsvSeverity
from hardening.db.ranges import go_advisory, pip_advisory
from hardening.db.times import go_time
from hardening.errors import AdvisoryError

VULNERABILITY_BUCKET = "vulnerability"
# What `harden advisories` writes in ``affected[].database_specific.derived_from``.
DERIVED_FROM = "debian-changelog"
DATA_SOURCE_BUCKET = "data-source"

SEVERITY_NAMES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_GHSA_SEVERITY = {"LOW": 1, "MODERATE": 2, "HIGH": 3, "CRITICAL": 4}


class SourceId(StrEnum):
    """trivy-db's data source ids, for the sources we convert."""

    GHSA = "ghsa"
    DEBIAN = "debian"
    OSV = "osv"
    GOVULNDB = "govulndb"


# trivy-db picks titles, descriptions and the legacy Severity field by this source precedence
# (its AllSourceIDs order, restricted to the sources we can hold).
_SOURCE_PRECEDENCE = ("nvd", SourceId.DEBIAN, SourceId.GHSA, SourceId.OSV, SourceId.GOVULNDB)
# Dates: trivy-db takes them from NVD (we hold none), then from the language databases.
_DATED_SOURCES = (SourceId.GHSA, SourceId.OSV, SourceId.GOVULNDB)


@dataclass(frozen=True)
class Bucket:
    name: str
    source: SourceId
    title: str
    url: str

    def data_source(self) -> dict[str, str]:
        return {"ID": self.source.value, "Name": self.title, "URL": self.url}


def _ghsa(ecosystem: str, title: str) -> Bucket:
    return Bucket(
        f"{ecosystem}::GitHub Security Advisory {title}",
        SourceId.GHSA,
        f"GitHub Security Advisory {title}",
        f"https://github.com/advisories?query=type%3Areviewed+ecosystem%3A{title.lower()}",
    )


PIP_GHSA = _ghsa("pip", "pip")
PIP_PYPA = Bucket(
    "pip::Python Packaging Advisory Database",
    SourceId.OSV,
    "Python Packaging Advisory Database",
    "https://github.com/pypa/advisory-database",
)
GO_GHSA = _ghsa("go", "Go")
GO_VULNDB = Bucket(
    "go::The Go Vulnerability Database",
    SourceId.GOVULNDB,
    "The Go Vulnerability Database",
    "https://pkg.go.dev/vuln/",
)
PIP_BUCKET = PIP_GHSA.name


def debian_bucket(major: str) -> Bucket:
    return Bucket(
        f"debian {major}",
        SourceId.DEBIAN,
        "Debian Security Tracker",
        "https://salsa.debian.org/security-tracker-team/security-tracker",
    )


class Ecosystem(Enum):
    """The OSV ecosystems we convert; ``of`` is the only place an ecosystem name is read."""

    PYPI = "PyPI"
    DEBIAN = "Debian"
    GO = "Go"

    @classmethod
    def of(cls, name: str) -> Ecosystem | None:
        if name in ("PyPI", "Go"):
            return cls(name)
        if debian.ECOSYSTEM.match(name):
            return cls.DEBIAN
        return None


@dataclass(frozen=True)
class Cvss:
    vector: str
    score: float


@dataclass(frozen=True)
class Detail:
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
    """One advisory value under bucket → package → vuln id, and the record it came from."""

    origin: Origin
    value: dict[str, Any]
    derived: bool = False  # from `harden advisories` (a Debian changelog), not written by a person

    @property
    def published(self) -> bool:
        """From a published export rather than the organisation's own files."""
        return self.origin.member is not None


@dataclass
class Converted:
    """Everything the records said, keyed as Trivy's DB keys it."""

    advisories: dict[str, dict[str, dict[str, _Entry]]] = field(default_factory=dict)
    details: dict[str, dict[str, Detail]] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    used: int = 0
    withdrawn: int = 0
    out_of_scope: int = 0
    # Published exports only: what Trivy could not use, left out with the reason.
    unusable: list[str] = field(default_factory=list)
    # Our own record replaces an export's record for the same vulnerability and package.
    override: bool = False
    # Changelog-derived advisories left out because a hand-written record says otherwise.
    derived_set_aside: int = 0

    def add(self, origin: Origin, record: OsvRecord, *, now: datetime, lenient: bool = False) -> None:
        """Add one record; a withdrawn one (withdrawn before ``now``) is counted and left out.

        Strict (the organisation's own advisories), anything Trivy could not use is an error
        naming the file and field. ``lenient`` (a published export, taken as its publisher wrote
        it): an affected package whose range bounds are not versions of its ecosystem is left
        out and noted in ``unusable``, and a second record for the same vulnerability and
        package adds its ranges to the first, as trivy-db does.
        """
        if record.withdrawn is not None and record.withdrawn <= now:
            self.withdrawn += 1
            return
        if _add_record(self, record, origin, lenient):
            self.used += 1
        else:
            self.out_of_scope += 1

    def tree(self) -> dict[bytes, Any]:
        """The bbolt tree: every bucket, keys as bytes, values as compact JSON."""
        tree: dict[bytes, Any] = {
            DATA_SOURCE_BUCKET.encode(): {
                name.encode(): _json(bucket.data_source()) for name, bucket in self.buckets.items()
            },
            VULNERABILITY_BUCKET.encode(): {
                vuln_id.encode(): _json(vulnerability(details)) for vuln_id, details in self.details.items()
            },
        }
        for name, packages in self.advisories.items():
            tree[name.encode()] = {
                package.encode(): {vuln_id.encode(): _json(entry.value) for vuln_id, entry in ids.items()}
                for package, ids in packages.items()
            }
        return tree

    def set_aside_derived(self, present: Callable[[tuple[str, str, str]], bool]) -> int:
        """Leave out every changelog-derived advisory for which ``present`` (the base DB) has one.

        Derived records only fill what the upstream data lacks: Debian's tracker, which the
        upstream DB carries, also knows what changelogs cannot say (open CVEs, severities).
        """
        dropped = 0
        for name, packages in self.advisories.items():
            for package, ids in packages.items():
                for vuln_id in [
                    v for v, entry in ids.items() if entry.derived and present((name, package, v))
                ]:
                    del ids[vuln_id]
                    dropped += 1
        self.derived_set_aside += dropped
        return dropped

    def origins(self) -> dict[tuple[str, str, str], Origin]:
        """Which record defined each advisory (bucket, package, vulnerability id)."""
        return {
            (name, package, vuln_id): entry.origin
            for name, packages in self.advisories.items()
            for package, ids in packages.items()
            for vuln_id, entry in ids.items()
        }


def normalize_pip_name(name: str) -> str:
    """The package key Trivy looks PyPI advisories up by: lower case, ``_`` read as ``-``."""
    return name.lower().replace("_", "-")


def _place(record: OsvRecord, affected: OsvAffected, origin: Origin, where: str) -> tuple[Bucket, str] | None:
    """The bucket and package key of one affected package; None when out of scope."""
    name = affected.package.ecosystem
    ecosystem = Ecosystem.of(name)
    if ecosystem is None:
        raise AdvisoryError(
            f"ecosystem {name!r} is not supported",
            location=origin.at(None, f"{where}.package.ecosystem"),
            hint='use "PyPI", "Go" or "Debian:<major version>"',
        )
    package = affected.package.name
    match ecosystem:
        case Ecosystem.PYPI:
            # The PyPA database's own records (PYSEC-…) are attributed to it, not to GitHub.
            bucket = PIP_PYPA if record.id.startswith("PYSEC-") else PIP_GHSA
            return bucket, normalize_pip_name(package)
        case Ecosystem.GO:
            if package == "toolchain":
                return None
            if package == "stdlib" or package.startswith("golang.org/x/"):
                return GO_VULNDB, package
            return GO_GHSA, package
        case Ecosystem.DEBIAN:
            major = name.split(":", 1)[1].split(".", 1)[0]  # Ecosystem.of checked the form
            if not debian.PACKAGE.match(package):
                raise AdvisoryError(
                    f"{package!r} is not a Debian source package name",
                    location=origin.at(None, f"{where}.package.name"),
                )
            return debian_bucket(major), package
        case _:
            assert_never(ecosystem)


def _add_record(db: Converted, record: OsvRecord, origin: Origin, lenient: bool) -> bool:
    vuln_ids, vendor_ids = _group_ids(record)
    severity_v3 = _cvss(record.severity, origin, "severity")
    added = False
    for index, affected in enumerate(record.affected):
        where = f"affected[{index}]"
        if lenient and Ecosystem.of(affected.package.ecosystem) is None:
            # An export's record may list packages of other ecosystems too; trivy-db skips them.
            continue
        placed = _place(record, affected, origin, where)
        if placed is None:
            continue
        bucket, package = placed
        affected_cvss = _cvss(affected.severity, origin, f"{where}.severity") or severity_v3
        ids = vendor_ids
        try:
            if bucket.source is SourceId.DEBIAN:
                value, urgency = debian.debian_advisory(affected, origin, where)
                detail = _debian_detail(record, urgency, affected_cvss)
                # Debian's own per-CVE record ids (DEBIAN-CVE-…) say nothing the CVE id does not;
                # trivy-db keeps only DSA/DLA ids as Debian VendorIDs.
                ids = [i for i in vendor_ids if not i.startswith("DEBIAN-CVE-")]
            elif bucket.name.startswith("go::"):
                value = go_advisory(affected, origin, where, lenient=lenient)
                detail = _language_detail(record, affected_cvss, origin, go_url=bucket is GO_VULNDB)
            else:
                value = pip_advisory(affected, origin, where, lenient=lenient)
                detail = _language_detail(record, affected_cvss, origin)
        except AdvisoryError as error:
            if not lenient:
                raise
            db.unusable.append(str(error))
            continue
        if ids:
            value = {"VendorIDs": ids, **value}
        db.buckets[bucket.name] = bucket
        packages = db.advisories.setdefault(bucket.name, {}).setdefault(package, {})
        derived = is_derived(affected) and origin.member is None
        for vuln_id in vuln_ids:
            previous = packages.get(vuln_id)
            if previous is not None and previous.origin != origin and previous.derived != derived:
                # A record derived from a changelog and one a person wrote, for the same CVE and
                # package: the person's wins — it can say what no changelog does (a CVE still
                # open, no-dsa, not-affected). The derived one stays for every other package.
                db.derived_set_aside += 1
                if derived:
                    continue
                previous = None
            if previous is not None and previous.origin != origin and not (lenient and previous.published):
                if _ours_yields(
                    previous, origin, f"{vuln_id} for {package} in {bucket.name!r}", where, db.override
                ):
                    continue
                previous = None
            if previous is not None:
                # The same package listed twice in one record (or in two records of an export):
                # merge the ranges, as trivy-db does.
                for key in ("VulnerableVersions", "PatchedVersions"):
                    merged = previous.value.get(key, []) + value.get(key, [])
                    if merged:
                        previous.value[key] = merged
                continue
            packages[vuln_id] = _Entry(origin, dict(value), derived)
            sources = db.details.setdefault(vuln_id, {})
            sources[bucket.source] = _merge_detail(sources.get(bucket.source), detail)
        added = True
    return added


def is_derived(affected: OsvAffected) -> bool:
    """Written by `harden advisories` from a Debian changelog (``database_specific.derived_from``)."""
    specific = affected.database_specific or {}
    return specific.get("derived_from") == DERIVED_FROM


def _ours_yields(previous: _Entry, origin: Origin, what: str, where: str, override: bool) -> bool:
    """Two records for one advisory, not both from exports: whether the new one is dropped.

    Two of our own files: an error. Ours and an export's: an error unless ``override``, which
    lets ours replace the export's (True when the new record is the export's).
    """
    location = origin.at(None, f"{where}.package")
    if not previous.published and origin.member is None:
        raise AdvisoryError(
            f"{what} is also defined by {previous.origin}",
            location=location,
            hint="keep one advisory per vulnerability and package",
        )
    if not override:
        raise AdvisoryError(
            f"{what} is also defined by {previous.origin}",
            location=location,
            hint="drop or rename the organisation's record, or pass --override to let it replace "
            "the published one",
        )
    return origin.member is not None


def _group_ids(record: OsvRecord) -> tuple[list[str], list[str]]:
    others = list(dict.fromkeys([*record.aliases, *record.upstream]))
    every = [*others, record.id]
    cves = list(dict.fromkeys(i for i in every if i.startswith("CVE-")))
    if not cves:
        return [record.id], [i for i in others if i != record.id]
    return cves, list(dict.fromkeys(i for i in every if not i.startswith("CVE-")))


def _cvss(severities: Sequence[OsvSeverity], origin: Origin, where: str) -> Cvss | None:
    found: Cvss | None = None
    for index, severity in enumerate(severities):
        if severity.type != "CVSS_V3":
            # CVSS v2 and v4 scores are not computed here; Trivy shows the vendor severity.
            continue
        vector = severity.score.strip().rstrip("/")
        try:
            found = Cvss(vector, cvss3_base_score(vector))
        except ValueError as error:
            raise AdvisoryError(str(error), location=origin.at(None, f"{where}[{index}].score")) from error
    return found


def _language_detail(record: OsvRecord, cvss: Cvss | None, origin: Origin, *, go_url: bool = False) -> Detail:
    specific = record.database_specific or {}
    name = specific.get("severity")
    if name is not None and name not in _GHSA_SEVERITY:
        raise AdvisoryError(
            f"unknown GHSA severity {name!r}",
            location=origin.at(None, "database_specific.severity"),
            hint="one of LOW, MODERATE, HIGH, CRITICAL",
        )
    cwe_ids = specific.get("cwe_ids", [])
    if not isinstance(cwe_ids, list) or not all(isinstance(c, str) for c in cwe_ids):
        raise AdvisoryError(
            "expected a list of CWE ids", location=origin.at(None, "database_specific.cwe_ids")
        )
    references = [r.url for r in record.references]
    # The Go database names its own page for the record in database_specific.url.
    url = specific.get("url")
    if go_url and isinstance(url, str) and url:
        references.append(url)
    return Detail(
        title=record.summary,
        description=record.details,
        severity=_GHSA_SEVERITY.get(name or "", 0),
        cvss=cvss,
        cwe_ids=tuple(cwe_ids),
        references=tuple(references),
        published=record.published,
        modified=record.modified,
    )


def _debian_detail(record: OsvRecord, urgency: str | None, cvss: Cvss | None) -> Detail:
    return Detail(
        # Debian's descriptions are one line; trivy-db uses them as the title.
        title=record.summary or record.details,
        description=record.details if record.summary else "",
        severity=debian.URGENCY.get(urgency or "", 0),
        cvss=cvss,
        cwe_ids=(),
        references=tuple(r.url for r in record.references),
        published=record.published,
        modified=record.modified,
    )


def _merge_detail(previous: Detail | None, new: Detail) -> Detail:
    if previous is None:
        return new
    return Detail(
        title=previous.title or new.title,
        description=previous.description or new.description,
        severity=max(previous.severity, new.severity),
        cvss=previous.cvss or new.cvss,
        cwe_ids=previous.cwe_ids or new.cwe_ids,
        references=tuple(dict.fromkeys([*previous.references, *new.references])),
        published=_earliest(previous.published, new.published),
        modified=_latest(previous.modified, new.modified),
    )


def vulnerability(details: Mapping[str, Detail]) -> dict[str, Any]:
    """The ``vulnerability`` bucket's value for one id, from what each source says."""
    ordered = [details[s] for s in _SOURCE_PRECEDENCE if s in details]
    vendor_severity = {s: _effective_severity(d) for s, d in details.items() if _effective_severity(d)}
    cvss = {
        s: {"V3Vector": d.cvss.vector, "V3Score": d.cvss.score}
        for s, d in details.items()
        if d.cvss is not None and d.cvss.score > 0
    }
    severity = next((_effective_severity(d) for d in ordered if _effective_severity(d)), 0)
    references = sorted({r.strip() for d in ordered for r in d.references if r.strip()})
    dated = next(([details[s]] for s in _DATED_SOURCES if s in details), [])
    published = _earliest(*(d.published for d in dated))
    modified = _latest(*(d.modified for d in dated))
    entry: dict[str, Any] = {
        "Title": next((d.title for d in ordered if d.title), ""),
        "Description": next((d.description for d in ordered if d.description), ""),
        "Severity": SEVERITY_NAMES[severity],
        "CweIDs": next((list(d.cwe_ids) for d in ordered if d.cwe_ids), []),
        "VendorSeverity": vendor_severity,
        "CVSS": cvss,
        "References": references,
        "PublishedDate": go_time(published) if published else None,
        "LastModifiedDate": go_time(modified) if modified else None,
    }
    # Go's omitempty: absent rather than empty.
    return {k: v for k, v in entry.items() if v not in (None, "", [], {})}


def _effective_severity(detail: Detail) -> int:
    if detail.severity:
        return detail.severity
    if detail.cvss is None or detail.cvss.score <= 0:
        return 0
    score = detail.cvss.score
    return 4 if score >= 9.0 else 3 if score >= 7.0 else 2 if score >= 4.0 else 1


# --- small helpers --------------------------------------------------------------------------


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def _latest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return max(present) if present else None
