"""policies/*.yaml: strict parsing, and merging several files into the policy of one image.

The schema is documented in policies/README.md. Every problem names the file, the line and the
key; an unknown key or a wrong type is an error, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from hardening.errors import Location, PolicyError
from hardening.findings import Severity
from hardening.inspect.pydist import normalise_name
from hardening.policy.interface import CheckConfig, Floor
from hardening.policy.registry import CheckId
from hardening.sourcemap import yaml_source_map, yaml_value_error_line
from hardening.userfile import read_user_text
from hardening.validation import validate

SeverityName = Literal["low", "medium", "high", "critical"]
ProgramName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")]
PathPattern = Annotated[str, StringConstraints(pattern=r"^/[^\x00\n]{0,4095}$")]
Word = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,255}$")]
GoModulePath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._~/-]{0,255}$")]
PackageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Advisory = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _CheckModel(_Strict):
    severity: SeverityName | None = None
    enabled: bool | None = None


class PlainCheckModel(_CheckModel):
    pass


class FloorModel(_Strict):
    package: PackageName
    minimum: str
    rationale: str = ""
    advisories: list[Advisory] = Field(default_factory=list)

    @field_validator("minimum")
    @classmethod
    def _version(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion:
            raise ValueError(f"{value!r} is not a PEP 440 version") from None
        return value


class PackageFloorsModel(_CheckModel):
    floors: list[FloorModel] = Field(default_factory=list)


class ForbiddenBinariesModel(_CheckModel):
    names: list[ProgramName] = Field(default_factory=list)
    go_modules: list[GoModulePath] = Field(default_factory=list)


class BuildToolsModel(_CheckModel):
    names: list[ProgramName] = Field(default_factory=list)


class AllowlistModel(_CheckModel):
    allow: list[PathPattern] = Field(default_factory=list)


class SecretsModel(_CheckModel):
    names: list[Word] = Field(default_factory=list)
    allow: list[EnvName] = Field(default_factory=list)


class ChecksModel(_Strict):
    non_root: PlainCheckModel | None = None
    package_floors: PackageFloorsModel | None = None
    forbidden_binaries: ForbiddenBinariesModel | None = None
    build_tools: BuildToolsModel | None = None
    setuid: AllowlistModel | None = None
    world_writable: AllowlistModel | None = None
    secrets: SecretsModel | None = None
    healthcheck: PlainCheckModel | None = None
    anomalies: AllowlistModel | None = None
    dockerfile: PlainCheckModel | None = None


class PolicyModel(_Strict):
    version: Literal[1]
    description: str = ""
    fail_level: SeverityName | None = None
    checks: ChecksModel = Field(default_factory=ChecksModel)


DEFAULT_FAIL_LEVEL = Severity.HIGH


@dataclass(frozen=True)
class Policy:
    """The merged policy of one image: which checks run, how severe, and what fails."""

    sources: tuple[str, ...]
    fail_level: Severity
    checks: Mapping[CheckId, CheckConfig]

    def enabled(self) -> tuple[tuple[CheckId, CheckConfig], ...]:
        """Enabled checks in registry order."""
        return tuple(
            (check, self.checks[check])
            for check in CheckId
            if check in self.checks and self.checks[check].enabled
        )


def _yaml_error(exc: yaml.YAMLError, shown: str) -> PolicyError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return PolicyError(f"not valid YAML: {problem}", location=Location(shown, line))


def _duplicate_keys(node: yaml.Node, shown: str) -> None:
    """PyYAML keeps the last of two equal keys; a policy that says a thing twice is an error."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise PolicyError(
                        f"duplicate key {key!r} (first on line {seen[key]})",
                        location=Location(shown, line, key),
                    )
                seen[key] = line
            _duplicate_keys(value_node, shown)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, shown)


def parse_policy(text: str, shown: str) -> PolicyModel:
    """Validate one policy document; ``shown`` is the path used in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, shown) from None
    except ValueError as exc:
        # A value YAML reads as a timestamp but no calendar has (2027-13-45): not a crash.
        raise PolicyError(
            f"not a valid value: {exc}", location=Location(shown, yaml_value_error_line(text))
        ) from None
    if root is not None:
        _duplicate_keys(root, shown)
    if not isinstance(data, dict):
        raise PolicyError(
            "a policy file must be a mapping with `version: 1`",
            location=Location(shown, 1),
            hint="see policies/README.md for the schema",
        )
    return validate(PolicyModel, data, path=shown, smap=yaml_source_map(text), error=PolicyError)


def load_policy_file(path: Path, shown: str | None = None) -> PolicyModel:
    display = shown or str(path)
    text = read_user_text(
        path, error=PolicyError, what="the policy", shown=display, missing="policy file not found"
    )
    return parse_policy(text, display)


def merge(models: Sequence[tuple[str, PolicyModel]]) -> Policy:
    """Merge policy files in order; the rule is documented in policies/README.md.

    Scalars (``fail_level``, ``severity``, ``enabled``) set in a later file replace earlier ones;
    lists (``names``, ``allow``, ``go_modules``) are unions; a floor for a package replaces an
    earlier floor for the same package. A check runs when some file names it and the last
    ``enabled`` it saw was not false.
    """
    fail_level = DEFAULT_FAIL_LEVEL
    severities: dict[CheckId, Severity] = {}
    enabled: dict[CheckId, bool] = {}
    names: dict[CheckId, set[str]] = {}
    allow: dict[CheckId, set[str]] = {}
    modules: dict[CheckId, set[str]] = {}
    floors: dict[CheckId, dict[str, Floor]] = {}
    for _, model in models:
        if model.fail_level is not None:
            fail_level = Severity.parse(model.fail_level)
        for check in CheckId:
            section: _CheckModel | None = getattr(model.checks, check.value)
            if section is None:
                continue
            enabled.setdefault(check, True)
            if section.enabled is not None:
                enabled[check] = section.enabled
            if section.severity is not None:
                severities[check] = Severity.parse(section.severity)
            names.setdefault(check, set()).update(getattr(section, "names", ()))
            allow.setdefault(check, set()).update(getattr(section, "allow", ()))
            modules.setdefault(check, set()).update(getattr(section, "go_modules", ()))
            for floor in getattr(section, "floors", ()):
                assert isinstance(floor, FloorModel)  # noqa: S101 # nosec B101 - narrowing: only floors have floors
                floors.setdefault(check, {})[normalise_name(floor.package)] = Floor(
                    package=floor.package,
                    minimum=floor.minimum,
                    rationale=floor.rationale,
                    advisories=tuple(floor.advisories),
                )
    checks = {
        check: CheckConfig(
            severity=severities.get(check, check.default_severity),
            enabled=enabled[check],
            names=frozenset(names.get(check, ())),
            allow=frozenset(allow.get(check, ())),
            go_modules=frozenset(modules.get(check, ())),
            floors=tuple(floors.get(check, {}).values()),
        )
        for check in CheckId
        if check in enabled
    }
    return Policy(tuple(shown for shown, _ in models), fail_level, checks)


def load_policies(root: Path, paths: Sequence[Path]) -> Policy:
    """Load and merge the policy files of one image (paths relative to ``root`` unless absolute)."""
    models = []
    for path in paths:
        full = path if path.is_absolute() else root / path
        shown = path.as_posix()
        models.append((shown, load_policy_file(full, shown)))
    return merge(models)
