"""policies/*.yaml: strict parsing, and merging several files into the policy of one image.

The schema is documented in policies/README.md. Every problem names the file, the line and the
key; an unknown key or a wrong type is an error, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from hardening.errors import Location, PolicyError
from hardening.findings import Severity
from hardening.policy.interface import Check, CheckConfig, OptionsT
from hardening.policy.options import SEVERITY_NAME, Options, Section
from hardening.policy.registry import CheckId
from hardening.sourcemap import yaml_node_source_map, yaml_value_error_line
from hardening.strict import TEXT, Field, Nullable, OneOf, Record, record, typed
from hardening.userfile import read_user_text
from hardening.validation import parse


def _named_sections(**sections: Section | None) -> Mapping[CheckId, Section]:
    """The checks a file names, in registry order (a check set to null is not named)."""
    return {CheckId(name): section for name, section in sections.items() if section is not None}


# ``checks:``: one optional key per registered check, each validated by the check's own section.
CHECKS: Record[Mapping[CheckId, Section]] = Record(
    "ChecksModel",
    {
        check.value: Field(Nullable(record(check.check_class().options_type.section)), None)
        for check in CheckId
    },
    _named_sections,
)


@dataclass(frozen=True)
class PolicyDocument:
    """One policy file, validated: ``checks`` holds the section of every check it names."""

    version: int = field(metadata=typed(OneOf(1)))
    description: str = field(default="", metadata=typed(TEXT))
    fail_level: str | None = field(default=None, metadata=typed(Nullable(SEVERITY_NAME)))
    checks: Mapping[CheckId, Section] = field(default_factory=dict, metadata=typed(CHECKS))


# Named as the error for a value that is not a mapping has always named it.
POLICY: Record[PolicyDocument] = Record("PolicyModel", record(PolicyDocument).fields, PolicyDocument)

DEFAULT_FAIL_LEVEL = Severity.HIGH


@dataclass(frozen=True)
class Policy:
    """The merged policy of one image: which checks run, how severe, and what fails."""

    sources: tuple[str, ...]
    fail_level: Severity
    checks: Mapping[CheckId, CheckConfig[Any]]

    def enabled(self) -> tuple[tuple[CheckId, CheckConfig[Any]], ...]:
        """Enabled checks in registry order."""
        return tuple(
            (check, self.checks[check])
            for check in CheckId
            if check in self.checks and self.checks[check].enabled
        )

    def config_of(self, check: type[Check[OptionsT]]) -> CheckConfig[OptionsT] | None:
        """The configuration of ``check`` when this policy runs it, else None."""
        config = self.checks.get(CheckId(check.id))
        return config if config is not None and config.enabled else None


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


def parse_policy(text: str, shown: str) -> PolicyDocument:
    """Validate one policy document; ``shown`` is the path used in error messages."""
    try:
        root, data = _parse_once(text)
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
    smap = partial(yaml_node_source_map, root)  # made only for an error
    return parse(POLICY, data, path=shown, smap=smap, error=PolicyError)


def _parse_once(text: str) -> tuple[yaml.Node | None, Any]:
    """``yaml.compose`` and ``yaml.safe_load`` in one parse: the node gives the duplicate-key
    check and the source map their lines, the data is built from that same node."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def load_policy_file(path: Path, shown: str | None = None) -> PolicyDocument:
    display = shown or str(path)
    text = read_user_text(
        path, error=PolicyError, what="the policy", shown=display, missing="policy file not found"
    )
    return parse_policy(text, display)


def merge(models: Sequence[tuple[str, PolicyDocument]]) -> Policy:
    """Merge policy files in order; the rule is documented in policies/README.md.

    Scalars (``fail_level``, ``severity``, ``enabled``) set in a later file replace earlier ones;
    each check's options merge as its options type says (lists are unions, a floor for a
    package replaces an earlier floor for the same package). A check runs when some file names
    it and the last ``enabled`` it saw was not false.
    """
    fail_level = DEFAULT_FAIL_LEVEL
    severities: dict[CheckId, Severity] = {}
    enabled: dict[CheckId, bool] = {}
    options: dict[CheckId, Options[Any]] = {}
    for _, model in models:
        if model.fail_level is not None:
            fail_level = Severity.parse(model.fail_level)
        for check, section in model.checks.items():
            enabled.setdefault(check, True)
            if section.enabled is not None:
                enabled[check] = section.enabled
            if section.severity is not None:
                severities[check] = Severity.parse(section.severity)
            current = options[check] if check in options else check.check_class().options_type()
            options[check] = current.merged(section)
    checks = {
        check: CheckConfig(
            severity=severities.get(check, check.check_class().default_severity),
            options=options[check],
            enabled=enabled[check],
        )
        for check in CheckId
        if check in enabled
    }
    return Policy(tuple(shown for shown, _ in models), fail_level, checks)


def binary_names(policy: Policy) -> frozenset[str]:
    """What the inspector must look for: its defaults plus every program a configured check wants."""
    from hardening.inspect.facts import DEFAULT_BINARY_NAMES  # loaded already by whoever inspects

    names = set(DEFAULT_BINARY_NAMES)
    for check_id, config in policy.checks.items():
        names.update(check_id.check_class()().programs(config.options))
    return frozenset(names)


def load_policies(root: Path, paths: Sequence[Path]) -> Policy:
    """Load and merge the policy files of one image (paths relative to ``root`` unless absolute)."""
    models = []
    for path in paths:
        full = path if path.is_absolute() else root / path
        shown = path.as_posix()
        models.append((shown, load_policy_file(full, shown)))
    return merge(models)
