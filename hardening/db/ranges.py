"""OSV version ranges → the constraint strings Trivy's DB holds, per ecosystem.

Trivy's DB spells a range as a comma-joined constraint (``">=1.2.0, <1.2.5"``), one string per
introduced event; every fixed version is also listed under ``PatchedVersions``. Trivy reports a
package when its version matches one of the vulnerable constraints and is not exactly one of the
patched versions. The conversion is the same for every ecosystem; what differs is which range
types apply and what a valid version looks like (PEP 440, Debian, semantic versioning).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache, total_ordering
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from hardening.db.osv import Origin, OsvAffected, OsvRange
from hardening.errors import AdvisoryError

_DEBIAN_VERSION = re.compile(r"^(?:\d+:)?\d[A-Za-z0-9.+~-]*$")
# Semantic versioning 2.0.0 as the Go vulnerability database writes it: no "v" prefix.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)

Check = Callable[[str, Origin, str], None]


def pip_advisory(
    affected: OsvAffected, origin: Origin, where: str, *, lenient: bool = False
) -> dict[str, Any]:
    """``{"VulnerableVersions", "PatchedVersions"}`` for a PyPI package (PEP 440 versions).

    ``lenient`` (for published exports) leaves out listed versions that are not versions of the
    ecosystem instead of failing: Trivy could never match them, and one unparsable constraint
    makes Trivy's matcher fail for the whole advisory.
    """

    return _language_advisory(affected, origin, where, "ECOSYSTEM", check_pep440, _pep440_cover, lenient)


def go_advisory(
    affected: OsvAffected, origin: Origin, where: str, *, lenient: bool = False
) -> dict[str, Any]:
    """The same for a Go module or the standard library (SEMVER ranges), with OSes and Arches.

    The Go vulnerability database says which operating systems and architectures a flaw is
    limited to in ``ecosystem_specific.imports[].goos/goarch``; Trivy's DB keeps them.
    """
    value = _language_advisory(affected, origin, where, "SEMVER", check_semver, _semver_cover, lenient)
    specific = affected.ecosystem_specific or {}
    imports = specific.get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(i, dict) for i in imports):
        raise AdvisoryError(
            "expected a list of imports", location=origin.at(None, f"{where}.ecosystem_specific.imports")
        )
    for key, field in (("OSes", "goos"), ("Arches", "goarch")):
        names: list[str] = []
        for index, item in enumerate(imports):
            listed = item.get(field, [])
            if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                raise AdvisoryError(
                    "expected a list of names",
                    location=origin.at(None, f"{where}.ecosystem_specific.imports[{index}].{field}"),
                )
            names.extend(listed)
        if names:
            value[key] = list(dict.fromkeys(names))
    return value


def _language_advisory(
    affected: OsvAffected,
    origin: Origin,
    where: str,
    range_type: str,
    check: Check,
    cover: Callable[[list[str]], Callable[[str], bool]],
    lenient: bool,
) -> dict[str, Any]:
    vulnerable: list[str] = []
    patched: list[str] = []
    ecosystem = affected.package.ecosystem
    for r_index, osv_range in enumerate(affected.ranges):
        range_where = f"{where}.ranges[{r_index}]"
        if osv_range.type == "GIT":
            continue
        if osv_range.type != range_type:
            raise AdvisoryError(
                f"range type {osv_range.type} does not apply to {ecosystem}",
                location=origin.at(None, f"{range_where}.type"),
                hint=f"{ecosystem} ranges are of type {range_type}",
            )
        for constraint, fixed in constraints(osv_range, origin, range_where, check):
            vulnerable.append(constraint)
            if fixed is not None:
                patched.append(fixed)
    covered = cover(list(vulnerable))
    for v_index, version in enumerate(affected.versions):
        try:
            check(version, origin, f"{where}.versions[{v_index}]")
        except AdvisoryError:
            if lenient:
                continue
            raise
        # Versions already inside a range add nothing; trivy-db drops them too.
        if not covered(version):
            vulnerable.append(f"={version}")
    vulnerable = _apply_last_known_range(vulnerable, affected.database_specific, origin, where)
    if not vulnerable and not patched:
        raise AdvisoryError(
            f"the advisory names no affected {ecosystem} versions",
            location=origin.at(None, where),
            hint="give ranges with introduced/fixed events or a versions list",
        )
    value: dict[str, Any] = {}
    if vulnerable:
        value["VulnerableVersions"] = vulnerable
    if patched:
        value["PatchedVersions"] = patched
    return value


def constraints(
    osv_range: OsvRange, origin: Origin, where: str, check: Check
) -> Iterable[tuple[str, str | None]]:
    """(constraint, fixed version) per introduced event, in trivy-db's constraint syntax."""
    start: str | None = None
    for e_index, event in enumerate(osv_range.events):
        event_where = f"{where}.events[{e_index}]"
        if event.introduced is not None:
            if start is not None:
                yield _constraint(start, None, False), None
            if event.introduced != "0":
                check(event.introduced, origin, f"{event_where}.introduced")
            start = event.introduced
        elif start is None:
            raise AdvisoryError(
                "an event comes before any introduced event", location=origin.at(None, event_where)
            )
        elif event.fixed is not None:
            check(event.fixed, origin, f"{event_where}.fixed")
            yield _constraint(start, event.fixed, False), event.fixed
            start = None
        elif event.last_affected is not None:
            check(event.last_affected, origin, f"{event_where}.last_affected")
            yield _constraint(start, event.last_affected, True), None
            start = None
        else:
            raise AdvisoryError(
                "limit events are not supported", location=origin.at(None, f"{event_where}.limit")
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


def _pep440_cover(constraints: list[str]) -> Callable[[str], bool]:
    """Whether a (valid) version lies in one of ``constraints``."""
    specifiers = [_specifier(c) for c in constraints]

    def covered(version: str) -> bool:
        parsed = _pep440(version)
        return any(s.contains(parsed, prereleases=True) for s in specifiers)

    return covered


@lru_cache(maxsize=1 << 16)
def _pep440(version: str) -> Version:
    return Version(version)


def _specifier(constraint: str) -> SpecifierSet:
    # trivy-db writes an exact version as "=1.2"; PEP 440 spells it "==1.2".
    parts = [c.strip() for c in constraint.split(",")]
    return SpecifierSet(",".join(f"={c}" if c.startswith("=") else c for c in parts))


def check_pep440(version: str, origin: Origin, where: str) -> None:
    try:
        _pep440(version)
    except InvalidVersion as error:
        raise AdvisoryError(
            f"{version!r} is not a PEP 440 version", location=origin.at(None, where)
        ) from error


def check_debian_version(version: str, origin: Origin, where: str) -> None:
    if not _DEBIAN_VERSION.match(version):
        raise AdvisoryError(f"{version!r} is not a Debian version", location=origin.at(None, where))


def check_semver(version: str, origin: Origin, where: str) -> None:
    if not _SEMVER.match(version):
        raise AdvisoryError(
            f"{version!r} is not a semantic version",
            location=origin.at(None, where),
            hint='Go versions are written without the "v", e.g. 1.19.8 or 0.0.0-20220412211240-33da011f77ad',
        )


@total_ordering
class SemVer:
    """Semantic versioning 2.0.0 precedence (build metadata ignored)."""

    def __init__(self, text: str) -> None:
        match = _SEMVER.match(text.removeprefix("v"))
        if not match:
            raise ValueError(f"not a semantic version: {text!r}")
        self.core = tuple(int(match.group(i)) for i in (1, 2, 3))
        self.pre: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(part)) if part.isdigit() else (1, part)
            for part in (match.group(4) or "").split(".")
            if part
        )

    def _key(self) -> tuple[Any, ...]:
        # A release sorts after all of its pre-releases.
        return (self.core, not self.pre, self.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _semver_cover(constraints: list[str]) -> Callable[[str], bool]:
    return lambda version: any(semver_matches(c, version) for c in constraints)


def semver_matches(constraint: str, version: str) -> bool:
    """Whether ``version`` satisfies a comma-joined constraint as trivy-db writes them."""
    target = SemVer(version)
    for part in (p.strip() for p in constraint.split(",")):
        operator = re.match(r"^(>=|<=|<|>|=)", part)
        if operator is None:
            raise ValueError(f"not a constraint: {part!r}")
        bound = SemVer(part[operator.end() :])
        ok = {
            ">=": target >= bound,
            "<=": target <= bound,
            "<": target < bound,
            ">": target > bound,
            "=": target == bound,
        }[operator.group(1)]
        if not ok:
            return False
    return True


def _apply_last_known_range(
    vulnerable: list[str], specific: Mapping[str, Any] | None, origin: Origin, where: str
) -> list[str]:
    """GHSA's ``last_known_affected_version_range`` bounds open ranges, as in trivy-db."""
    if not specific or "last_known_affected_version_range" not in specific:
        return vulnerable
    bound = specific["last_known_affected_version_range"]
    if not isinstance(bound, str) or not re.match(r"^<=?\s*\S+$", bound.strip()):
        raise AdvisoryError(
            "expected '< version' or '<= version'",
            location=origin.at(None, f"{where}.database_specific.last_known_affected_version_range"),
        )
    compact = bound.replace(" ", "")
    return [v if "<" in v or v.startswith("=") else f"{v}, {compact}" for v in vulnerable]
