"""The release gate: severity threshold, fixable-only, maximum counts, suppressions, baselines.

The gate reads findings; it never produces them. A release happens only when it passes. Every
reason for a failure is listed, not just the first, so one run shows everything to fix.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hardening.errors import Location, PolicyError
from hardening.findings import Finding, Origin, Severity
from hardening.freshness import NO_LIMIT, AgeLimit, parse_age
from hardening.pending.rule import pending_reasons
from hardening.sourcemap import SourceMap, yaml_source_map, yaml_value_error_line
from hardening.userfile import read_user_json, read_user_text
from hardening.validation import validate

SeverityName = str


def _severity(value: str) -> str:
    Severity.parse(value)  # raises ValueError with the accepted names
    return value.lower()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class GateModel(_Strict):
    version: int = Field(ge=1, le=1)
    fail_on: SeverityName = "high"
    only_fixable: bool = False
    max: dict[SeverityName, int] = Field(default_factory=dict)
    policy_findings: bool = True
    suppressions: list[str] = Field(default_factory=list)
    baseline_dir: str | None = None
    # The oldest vulnerability data a scan may use, e.g. "2d" (hardening.freshness).
    max_db_age: str | None = None

    @field_validator("max_db_age")
    @classmethod
    def _check_max_db_age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_age(value)  # raises ValueError naming the syntax
        return value

    # Pending updates (the Debian archive has a newer version): see hardening/pending/rule.py.
    max_pending_security_days: int | None = Field(default=None, ge=0)

    @field_validator("fail_on")
    @classmethod
    def _check_fail_on(cls, value: str) -> str:
        return _severity(value)

    @field_validator("max")
    @classmethod
    def _check_max(cls, value: dict[str, int]) -> dict[str, int]:
        for key, count in value.items():
            _severity(key)
            if count < 0:
                raise ValueError(f"max.{key} must not be negative")
        return {k.lower(): v for k, v in value.items()}


# OpenVEX's justifications for "not_affected". A suppression that names one claims the image is
# not affected (the reason is the impact statement); one without only accepts the risk for a while.
Justification = Literal[
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
]


class SuppressionModel(_Strict):
    id: str = Field(min_length=1)
    reason: str = Field(min_length=10)
    # YAML reads 2027-01-31 as a date and "2027-01-31" as a string; both mean the same day.
    expires: Annotated[date, Field(strict=False)]
    images: list[str] = Field(default_factory=list)
    package: str | None = None
    version: str | None = None
    path: str | None = None
    justification: Justification | None = None


class SuppressionFileModel(_Strict):
    version: int = Field(ge=1, le=1)
    suppressions: list[SuppressionModel] = Field(default_factory=list)


@dataclass(frozen=True)
class Suppression:
    id: str
    reason: str
    expires: date
    images: tuple[str, ...]
    package: str | None
    version: str | None
    path: str | None
    source: Location
    justification: str | None = None  # an OpenVEX justification: the finding does not affect the image

    def matches(self, finding: Finding) -> bool:
        if finding.rule_id != self.id:
            return False
        if self.images and finding.image not in self.images:
            return False
        if self.package is not None and finding.package != self.package:
            return False
        if self.version is not None and finding.installed_version != self.version:
            return False
        return self.path is None or fnmatch.fnmatchcase(finding.image_path or "", self.path)

    def expired(self, today: date) -> bool:
        return self.expires < today


@dataclass(frozen=True)
class GatePolicy:
    fail_on: Severity = Severity.HIGH
    only_fixable: bool = False
    max_counts: Mapping[Severity, int] = field(default_factory=dict)
    policy_findings: bool = True
    suppressions: tuple[Suppression, ...] = ()
    baseline_dir: Path | None = None
    source: Path | None = None
    max_db_age: timedelta | None = None  # None: the gate sets no limit on the data's age
    max_db_age_at: str = ""  # where the gate sets it, "policies/gate.yaml:18" (repository-relative)

    def age_limit(self, override: AgeLimit | None = None) -> AgeLimit:
        """The limit in force: the command line's (``--max-db-age``) when given, else the gate's.

        One rule, so a workflow can tighten or an offline demo lift the limit without another
        gate file, and every report says which applied.
        """
        if override is not None:
            return override
        if self.max_db_age is None:
            return NO_LIMIT
        return AgeLimit(self.max_db_age, self.max_db_age_at)

    max_pending_security_days: int | None = None


@dataclass(frozen=True)
class GateDecision:
    image: str
    passed: bool
    reasons: tuple[str, ...]
    findings: tuple[Finding, ...]  # every finding, suppressed ones marked
    counted: int
    suppressed: int
    baselined: int

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "image": self.image,
            "passed": self.passed,
            "decision": "pass" if self.passed else "fail",
            "reasons": list(self.reasons),
            "counted": self.counted,
            "suppressed": self.suppressed,
            "baselined": self.baselined,
        }


def _load_yaml(path: Path, error: type[PolicyError] = PolicyError) -> tuple[Any, SourceMap]:
    text = read_user_text(
        path,
        error=error,
        what="the file",
        missing="file not found",
        missing_hint="create it (README: 'Policies, gate and suppressions') or point hardening.toml at it",
    )
    try:
        data = yaml.safe_load(text)
        smap = yaml_source_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(f"not valid YAML: {exc}", location=Location(path, line)) from None
    except ValueError as exc:
        # A value YAML reads as a timestamp but no calendar has (2027-13-45): not a crash.
        line = yaml_value_error_line(text)
        raise error(f"not a valid value: {exc}", location=Location(path, line)) from None
    return data, smap


def load_suppressions(path: Path) -> tuple[Suppression, ...]:
    data, smap = _load_yaml(path)
    model = validate(SuppressionFileModel, data, path=path, smap=smap, error=PolicyError)
    out = []
    for index, item in enumerate(model.suppressions):
        line = smap.line_of(("suppressions", index))
        out.append(
            Suppression(
                id=item.id,
                reason=item.reason,
                expires=item.expires,
                images=tuple(item.images),
                package=item.package,
                version=item.version,
                path=item.path,
                source=Location(path, line, f"suppressions[{index}]"),
                justification=item.justification,
            )
        )
    return tuple(out)


def load_gate(path: Path, root: Path) -> GatePolicy:
    """Read a gate policy; suppression files it names are read and validated too."""
    data, smap = _load_yaml(path)
    model = validate(GateModel, data, path=path, smap=smap, error=PolicyError)
    suppressions: list[Suppression] = []
    for index, name in enumerate(model.suppressions):
        file = root / name
        if not file.is_file():
            raise PolicyError(
                f"suppression file {name} does not exist",
                location=Location(path, smap.line_of(("suppressions", index)), f"suppressions[{index}]"),
            )
        suppressions.extend(load_suppressions(file))
    return GatePolicy(
        fail_on=Severity.parse(model.fail_on),
        only_fixable=model.only_fixable,
        max_counts={Severity.parse(k): v for k, v in model.max.items()},
        policy_findings=model.policy_findings,
        suppressions=tuple(suppressions),
        baseline_dir=(root / model.baseline_dir) if model.baseline_dir else None,
        source=path,
        max_db_age=parse_age(model.max_db_age) if model.max_db_age is not None else None,
        max_db_age_at=_where(path, root, smap.line_of(("max_db_age",))),
        max_pending_security_days=model.max_pending_security_days,
    )


def _where(path: Path, root: Path, line: int | None) -> str:
    """A gate line as reports show it: relative to the repository, so no host path leaks in."""
    try:
        shown: Path | str = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = path
    return str(Location(shown, line))


# -- baselines ------------------------------------------------------------------------------


def _key_json(finding: Finding) -> list[str]:
    return list(finding.key)


def write_baseline(path: Path, image: str, findings: Iterable[Finding]) -> int:
    from hardening.atomic import write_json

    keys = sorted({tuple(_key_json(f)) for f in findings})
    doc = {"schema_version": 1, "image": image, "accepted": [list(k) for k in keys]}
    write_json(path, doc, sort_keys=False)
    return len(keys)


def load_baseline(path: Path) -> frozenset[tuple[str, ...]]:
    if not path.is_file():
        return frozenset()
    doc = read_user_json(path, error=PolicyError, what="the baseline")
    accepted = doc.get("accepted") if isinstance(doc, dict) else None
    if not isinstance(accepted, list) or not all(
        isinstance(k, list) and len(k) == 5 and all(isinstance(p, str) for p in k) for k in accepted
    ):
        raise PolicyError(
            "baseline must be an object with `accepted`: a list of 5-string keys",
            location=Location(path, None, "accepted"),
        )
    return frozenset(tuple(k) for k in accepted)


# -- the decision ---------------------------------------------------------------------------


def _describe(finding: Finding) -> str:
    what = finding.rule_id
    if finding.package:
        what += f" in {finding.package} {finding.installed_version or ''}".rstrip()
    if finding.fixed_version:
        what += f" (fixed in {finding.fixed_version})"
    where = f" at {finding.location}" if finding.location else ""
    return f"{finding.severity.label} {what}{where}"


def decide(
    image: str,
    scanner_findings: Sequence[Finding],
    policy_findings: Sequence[Finding],
    policy: GatePolicy,
    *,
    policy_fail_level: Severity = Severity.HIGH,
    today: date | None = None,
    baseline: frozenset[tuple[str, ...]] = frozenset(),
    max_listed: int = 20,
    pending_findings: Sequence[Finding] = (),
    pending_checked: bool = False,
) -> GateDecision:
    """``pending_findings`` come from the update sources (``hardening.pending``), judged by age;
    ``pending_checked`` says whether any source looked at all."""
    today = today or date.today()
    reasons: list[str] = []
    for suppression in policy.suppressions:
        if suppression.expired(today) and (not suppression.images or image in suppression.images):
            reasons.append(
                f"suppression {suppression.id} ({suppression.source}) expired on "
                f"{suppression.expires.isoformat()}: renew it with a reason or fix the finding"
            )
    marked: list[Finding] = []
    failing: list[Finding] = []
    suppressed = baselined = 0
    pending_open: list[Finding] = []
    for finding in [*scanner_findings, *policy_findings, *pending_findings]:
        active = [s for s in policy.suppressions if s.matches(finding) and not s.expired(today)]
        if active:
            suppressed += 1
            marked.append(replace(finding, suppressed_by=active[0].reason))
            continue
        marked.append(finding)
        if finding.key in baseline:
            baselined += 1
            continue
        if finding.origin is Origin.POLICY:
            if policy.policy_findings and finding.severity >= policy_fail_level:
                failing.append(finding)
            continue
        if finding.origin is Origin.ARCHIVE:
            pending_open.append(finding)  # judged by age below, never by severity
            continue
        if policy.only_fixable and not finding.fixable:
            continue
        if finding.severity >= policy.fail_on:
            failing.append(finding)
    counted = [
        f
        for f in marked
        if f.suppressed_by is None
        and f.key not in baseline
        and f.origin is Origin.SCANNER
        and (f.fixable or not policy.only_fixable)
    ]
    per_severity = Counter(f.severity for f in counted)
    for severity, limit in sorted(policy.max_counts.items(), reverse=True):
        if per_severity[severity] > limit:
            reasons.append(
                f"{per_severity[severity]} {severity.label} vulnerabilities exceed the maximum of {limit}"
            )
    failing.sort(key=lambda f: (-int(f.severity), f.rule_id, f.package or ""))
    scope = "fixable " if policy.only_fixable else ""
    scanner_failing = [f for f in failing if f.origin is Origin.SCANNER]
    policy_failing = [f for f in failing if f.origin is Origin.POLICY]
    if scanner_failing:
        reasons.append(f"{len(scanner_failing)} {scope}vulnerabilities at or above {policy.fail_on.label}")
    if policy_failing:
        reasons.append(f"{len(policy_failing)} policy findings at or above {policy_fail_level.label}")
    reasons.extend(f"  {_describe(f)}" for f in failing[:max_listed])
    if len(failing) > max_listed:
        reasons.append(f"  … and {len(failing) - max_listed} more")
    reasons.extend(
        pending_reasons(
            pending_open,
            checked=pending_checked,
            max_days=policy.max_pending_security_days,
            max_listed=max_listed,
        )
    )
    return GateDecision(
        image=image,
        passed=not reasons,
        reasons=tuple(reasons),
        findings=tuple(marked),
        counted=len(counted),
        suppressed=suppressed,
        baselined=baselined,
    )
