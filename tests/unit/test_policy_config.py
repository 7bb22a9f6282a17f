"""Policy files: strict schema, errors with file:line:key, merge rules, shipped policies valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.errors import ExitCode, PolicyError
from hardening.findings import Severity
from hardening.policy.config import load_policies, merge, parse_policy
from hardening.policy.healthcheck import Healthcheck
from hardening.policy.package_floors import PackageFloors
from hardening.policy.registry import CheckId

REPO = Path(__file__).resolve().parents[2]


def error(text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policies/x.yaml")
    return caught.value


def test_unknown_key_names_file_line_and_key() -> None:
    exc = error("version: 1\nchecks:\n  non_root:\n    severty: high\n")
    assert exc.exit_code == ExitCode.BAD_INPUT
    assert str(exc.location) == "policies/x.yaml:4: checks.non_root.severty"
    assert exc.message == "unknown key"


def test_unknown_check_and_wrong_types() -> None:
    assert str(error("version: 1\nchecks:\n  no_such: {}\n").location) == "policies/x.yaml:3: checks.no_such"
    exc = error("version: 1\nchecks:\n  package_floors:\n    floors:\n      - {package: pip, minimum: 24}\n")
    assert exc.location is not None and exc.location.line == 5
    assert exc.location.field == "checks.package_floors.floors[0].minimum"
    assert error('version: "1"\n').location is not None
    exc = error("version: 1\nfail_level: severe\n")
    assert exc.location is not None and exc.location.line == 2
    exc = error("version: 1\nchecks:\n  build_tools: {names: gcc}\n")
    assert exc.location is not None and exc.location.field == "checks.build_tools.names"


def test_bad_versions_yaml_and_duplicates() -> None:
    exc = error("version: 1\nchecks:\n  package_floors:\n    floors: [{package: pip, minimum: 'x y'}]\n")
    assert "PEP 440" in exc.message
    assert error("version: 1\nchecks: [\n").location is not None
    exc = error("version: 1\nchecks:\n  non_root: {}\n  non_root: {}\n")
    assert exc.location is not None and exc.location.line == 4 and "duplicate" in exc.message
    assert "mapping" in error("- 1\n").message
    assert "required" in error("checks: {}\n").message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policies(tmp_path, [Path("policies/none.yaml")])


def test_merge_rules() -> None:
    first = parse_policy(
        """\
version: 1
fail_level: high
checks:
  forbidden_binaries: {names: [gosu], go_modules: [github.com/tianon/gosu]}
  package_floors:
    floors: [{package: pip, minimum: "24.3"}, {package: setuptools, minimum: "75"}]
  healthcheck: {severity: low}
  setuid: {allow: [/usr/bin/passwd]}
""",
        "a.yaml",
    )
    second = parse_policy(
        """\
version: 1
fail_level: critical
checks:
  forbidden_binaries: {severity: high, names: [gosu-amd64]}
  package_floors:
    floors: [{package: PIP, minimum: "25.3"}]
  healthcheck: {enabled: false}
""",
        "b.yaml",
    )
    policy = merge([("a.yaml", first), ("b.yaml", second)])
    assert policy.sources == ("a.yaml", "b.yaml")
    assert policy.fail_level is Severity.CRITICAL
    forbidden = policy.checks[CheckId.FORBIDDEN_BINARIES]
    assert forbidden.severity is Severity.HIGH
    assert forbidden.options.names == {"gosu", "gosu-amd64"}
    assert forbidden.options.go_modules == {"github.com/tianon/gosu"}
    floors = {f.package.lower(): f.minimum for f in policy.checks[CheckId.PACKAGE_FLOORS].options.floors}
    assert floors == {"pip": "25.3", "setuptools": "75"}
    assert policy.checks[CheckId.PACKAGE_FLOORS].severity is PackageFloors.default_severity
    assert CheckId.HEALTHCHECK not in dict(policy.enabled())
    assert policy.config_of(Healthcheck) is None  # disabled: other checks see no configuration
    assert CheckId.NON_ROOT not in policy.checks  # never named, never run
    assert policy.checks[CheckId.SETUID].options.allow == {"/usr/bin/passwd"}


def test_shipped_policies_load_and_cover_every_check() -> None:
    default = load_policies(REPO, [Path("policies/default.yaml")])
    assert {check for check, _ in default.enabled()} == set(CheckId)
    postgres = load_policies(REPO, [Path("policies/default.yaml"), Path("policies/postgres.yaml")])
    assert "gosu-amd64" in postgres.checks[CheckId.FORBIDDEN_BINARIES].options.names
    assert "sudo" in postgres.checks[CheckId.FORBIDDEN_BINARIES].options.names
    assert postgres.fail_level is Severity.HIGH
