"""SARIF for GitHub code scanning: golden output, schema, GitHub's rules, a peer tool, fingerprints."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.errors import ReportInputError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.report.github_rules import (
    DISPLAYED_RESULTS_PER_RUN,
    MAX_DESCRIPTION_CHARS,
    check_github_rules,
)
from hardening.report.jsonreport import load_report
from hardening.report.sarif import (
    ToolInfo,
    build_sarif,
    dumps,
    findings_from_sarif,
    write_sarif,
)

ROOT = Path(__file__).parents[2]
SCHEMA_PATH = ROOT / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json"
GOLDEN = ROOT / "tests" / "golden"
FIXTURE_REPO = GOLDEN / "repo"
DOCKERFILE = "dockerfiles/python-secure/Dockerfile"
FALLBACK = SourceLocation(DOCKERFILE, 1)
TOOLS = {
    Origin.SCANNER: ToolInfo("Trivy", "0.76.0", "https://github.com/aquasecurity/trivy"),
    Origin.POLICY: ToolInfo("hardening", "0.1.0", "https://github.com/example/hardening"),
}
# Every origin, the archive's pending updates included (the goldens pin the two above).
ALL_TOOLS = {
    **TOOLS,
    Origin.ARCHIVE: ToolInfo("debian-archive", "0.1.0", "https://github.com/example/hardening"),
}
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


@cache
def _validator() -> Any:
    if not SCHEMA_PATH.is_file():
        pytest.fail(f"SARIF schema not found at {SCHEMA_PATH} (vendored in tests/data/schemas)")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    # jsonschema's uniqueItems compares every pair, which takes minutes on a 5,000-result run;
    # comparing canonical JSON texts is the same check in linear time
    validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"uniqueItems": _unique_items})
    return validator(schema, format_checker=jsonschema.FormatChecker())


def _unique_items(
    validator: Any, unique: bool, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if unique and validator.is_type(instance, "array"):
        texts = [json.dumps(item, sort_keys=True) for item in instance]
        if len(set(texts)) != len(texts):
            yield jsonschema.ValidationError(f"{instance!r} has non-unique elements")


def assert_valid(doc: Mapping[str, Any]) -> None:
    """Every SARIF a test produces goes through both the official schema and GitHub's rules."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    problems = check_github_rules(doc)
    assert not problems, "\n".join(str(p) for p in problems)


def golden_findings() -> list[Finding]:
    _, findings = load_report(GOLDEN / "findings.json")
    return findings


def build(findings: Sequence[Finding], image: str = "python-secure", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("repo_root", FIXTURE_REPO)
    kwargs.setdefault("tools", TOOLS)
    doc = build_sarif(image, findings, fallback_location=FALLBACK, **kwargs)
    assert_valid(doc)
    return doc


def results(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for run in doc["runs"]:
        yield from run["results"]


def fingerprints(doc: Mapping[str, Any]) -> list[str]:
    return sorted(r["partialFingerprints"]["primaryLocationLineHash"] for r in results(doc))


def run_of(doc: Mapping[str, Any], tool: str) -> dict[str, Any]:
    (run,) = [r for r in doc["runs"] if r["tool"]["driver"]["name"] == tool]
    return run


def vuln(rule_id: str = "CVE-2024-0001", severity: Severity = Severity.HIGH, **kw: Any) -> Finding:
    defaults: dict[str, Any] = {
        "message": f"openssl is vulnerable to {rule_id}",
        "image": "python-secure",
        "package": "libssl3",
        "installed_version": "3.0.11-1~deb12u2",
        "package_type": "debian",
        "image_path": "var/lib/dpkg/status",
        "location": SourceLocation(DOCKERFILE, 4),
    }
    defaults.update(kw)
    return Finding(Origin.SCANNER, rule_id, severity, **defaults)


# --------------------------------------------------------------------------- golden


def test_golden_sarif() -> None:
    doc = build(golden_findings())
    golden = GOLDEN / "python-secure.sarif"
    if UPDATE_GOLDEN:
        write_sarif(golden, doc)
    assert dumps(doc) == golden.read_text(encoding="utf-8"), "run with UPDATE_GOLDEN=1 to accept"


def test_golden_file_itself_is_valid() -> None:
    assert_valid(json.loads((GOLDEN / "python-secure.sarif").read_text(encoding="utf-8")))


def test_peer_sarif_tools_counts_our_results(tmp_path: Path) -> None:
    extra = [vuln("CVE-2024-0002", Severity.MEDIUM), vuln("CVE-2024-0003", Severity.LOW)]
    doc = build(golden_findings() + extra)
    path = tmp_path / "python-secure.sarif"
    write_sarif(path, doc)
    sarif_cli = Path(sys.executable).parent / "sarif"
    proc = subprocess.run(
        [str(sarif_cli), "summary", str(path)], capture_output=True, text=True, check=True, timeout=120
    )
    reported: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        level, sep, count = line.partition(": ")
        if sep and level in ("error", "warning", "note", "none"):
            reported[level] = int(count)
    ours = Counter(r["level"] for r in results(doc))
    assert {k: v for k, v in reported.items() if v} == dict(ours)
    assert ours == {"error": 4, "warning": 1, "note": 1}


# --------------------------------------------------------------------------- shape


def test_one_run_per_tool_with_category_and_versions() -> None:
    doc = build(golden_findings())
    assert doc["$schema"] and doc["version"] == "2.1.0"
    assert [r["tool"]["driver"]["name"] for r in doc["runs"]] == ["hardening", "Trivy"]
    assert {r["automationDetails"]["id"] for r in doc["runs"]} == {"hardening/python-secure/"}
    assert run_of(doc, "Trivy")["tool"]["driver"]["version"] == "0.76.0"


def test_category_is_the_image_name_and_always_ends_with_a_slash() -> None:
    doc = build([vuln(image="python-secure:candidate-1a2b")], image="python-secure:candidate-1a2b")
    assert doc["runs"][0]["automationDetails"]["id"] == "hardening/python-secure/"
    doc = build([vuln()], category="hardening/custom")
    assert doc["runs"][0]["automationDetails"]["id"] == "hardening/custom/"


def test_a_tool_without_findings_still_gets_an_empty_run() -> None:
    # an empty run is what lets GitHub close the alerts of a fixed image
    doc = build([vuln()])
    assert run_of(doc, "hardening")["results"] == []
    assert run_of(doc, "hardening")["tool"]["driver"]["rules"] == []


def test_findings_of_an_origin_without_a_tool_are_rejected() -> None:
    with pytest.raises(ReportInputError, match="policy"):
        build_sarif(
            "x",
            [Finding(Origin.POLICY, "non-root", Severity.HIGH, "root", "x")],
            tools={Origin.SCANNER: TOOLS[Origin.SCANNER]},
            fallback_location=FALLBACK,
        )


def _walk_keys(value: Any, inside_bag: bool = False) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if not inside_bag:
                yield key, item
            # property bags and fingerprints hold our own names, not schema properties
            yield from _walk_keys(item, key in ("properties", "partialFingerprints", "originalUriBaseIds"))
    elif isinstance(value, list):
        for item in value:
            yield from _walk_keys(item)


def test_no_object_model_noise_and_schema_names_only() -> None:
    doc = build(golden_findings())
    for key, value in _walk_keys(doc):
        assert "_" not in key, f"python attribute name leaked: {key}"
        assert value != [] or key in ("results", "rules"), key
        assert value != -1, key
    for result in results(doc):
        assert "kind" not in result  # "fail" is the default
        assert key not in ("language", "newlineSequences", "contents", "enabled", "rank"), key


def test_rules_carry_what_github_shows() -> None:
    doc = build(golden_findings())
    rules = {r["id"]: r for r in run_of(doc, "Trivy")["tool"]["driver"]["rules"]}
    rule = rules["CVE-2024-6345"]
    assert rule["name"] == "PythonPkgPackageVulnerability"
    assert rule["defaultConfiguration"]["level"] == "error"
    assert rule["properties"]["security-severity"] == "8.8"
    assert {"security", "vulnerability"} <= set(rule["properties"]["tags"])
    assert rule["properties"]["precision"] == "high"
    for needle in ("setuptools", "66.1.1", "70.0.0", "https://github.com/pypa/setuptools/pull/4332"):
        assert needle in rule["help"]["text"]
        assert needle in rule["help"]["markdown"]
    assert rule["helpUri"] == "https://avd.aquasec.com/nvd/cve-2024-6345"
    policy = run_of(doc, "hardening")["tool"]["driver"]["rules"][0]
    assert policy["name"] == "NonRoot"
    assert set(policy["properties"]["tags"]) == {"security", "policy"}


@pytest.mark.parametrize(
    ("severity", "level", "score"),
    [
        (Severity.CRITICAL, "error", "9.5"),
        (Severity.HIGH, "error", "8.0"),
        (Severity.MEDIUM, "warning", "5.5"),
        (Severity.LOW, "note", "2.0"),
        (Severity.UNKNOWN, "note", "0.0"),
    ],
)
def test_levels_and_fallback_security_severity(severity: Severity, level: str, score: str) -> None:
    doc = build([vuln(severity=severity)])
    run = run_of(doc, "Trivy")
    assert run["results"][0]["level"] == level
    assert run["tool"]["driver"]["rules"][0]["properties"]["security-severity"] == score


def test_results_land_on_repository_lines_with_template_as_related_location() -> None:
    doc = build(golden_findings())
    for result in results(doc):
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact == {"uri": DOCKERFILE, "uriBaseId": "%SRCROOT%"}
    ssl = next(r for r in results(doc) if r["ruleId"] == "CVE-2024-5535")
    assert ssl["locations"][0]["physicalLocation"]["region"] == {"startLine": 4}
    (related,) = ssl["relatedLocations"]
    assert related["physicalLocation"]["artifactLocation"]["uri"].endswith("Dockerfile.j2")
    assert f"]({related['id']})" in ssl["message"]["text"]


def test_finding_without_location_falls_back_to_the_rendered_dockerfile() -> None:
    doc = build([Finding(Origin.POLICY, "non-root", Severity.HIGH, "root", "python-secure")])
    region = run_of(doc, "hardening")["results"][0]["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"] == DOCKERFILE
    assert region["region"]["startLine"] == 1


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside/Dockerfile", ""])
def test_locations_outside_the_repository_fall_back(path: str) -> None:
    doc = build([vuln(location=SourceLocation(path, 7))])
    physical = run_of(doc, "Trivy")["results"][0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == DOCKERFILE
    assert physical["region"]["startLine"] == 1


def test_absolute_path_inside_repo_root_becomes_relative() -> None:
    doc = build([vuln(location=SourceLocation(str((FIXTURE_REPO / DOCKERFILE).resolve()), 4))])
    physical = run_of(doc, "Trivy")["results"][0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == DOCKERFILE


def test_suppressed_findings_stay_visible_with_an_external_suppression() -> None:
    doc = build(golden_findings())
    zlib = next(r for r in results(doc) if r["ruleId"] == "CVE-2023-45853")
    assert zlib["suppressions"] == [
        {
            "kind": "external",
            "justification": next(f for f in golden_findings() if f.suppressed_by).suppressed_by,
        }
    ]
    assert sum("suppressions" in r for r in results(doc)) == 1


def test_long_texts_are_clipped_to_githubs_limits() -> None:
    doc = build([vuln(title="t" * 5000, description="d" * 5000, message="m" * 10_000)])
    rule = run_of(doc, "Trivy")["tool"]["driver"]["rules"][0]
    assert len(rule["shortDescription"]["text"]) <= MAX_DESCRIPTION_CHARS
    assert len(rule["fullDescription"]["text"]) <= MAX_DESCRIPTION_CHARS


# --------------------------------------------------------------------------- fingerprints


def test_fingerprints_do_not_depend_on_input_order() -> None:
    findings = golden_findings() + [vuln(f"CVE-2024-{i:04d}") for i in range(20)]
    reference = build(findings)
    for seed in range(5):
        shuffled = list(findings)
        random.Random(seed).shuffle(shuffled)
        assert build(shuffled) == reference


def test_fingerprints_do_not_depend_on_image_ids_tags_or_layers() -> None:
    base = golden_findings()
    other = [
        dataclasses.replace(f, image="python-secure:candidate-7f3e9a", layer="sha256:" + "ab" * 32)
        for f in base
    ]
    digest = [dataclasses.replace(f, image="python-secure@sha256:" + "cd" * 32) for f in base]
    assert fingerprints(build(base)) == fingerprints(build(other, image="python-secure:candidate-7f3e9a"))
    assert fingerprints(build(base)) == fingerprints(build(digest))


def test_fingerprint_follows_the_line_text_not_its_number(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "dockerfiles/python-secure").mkdir(parents=True)
    dockerfile = repo / DOCKERFILE
    dockerfile.write_text("FROM base\nRUN apt-get install libssl3\n", encoding="utf-8")
    before = fingerprints(build([vuln(location=SourceLocation(DOCKERFILE, 2))], repo_root=repo))
    dockerfile.write_text("FROM base\n# a comment\n  RUN   apt-get install libssl3\n", encoding="utf-8")
    moved = fingerprints(build([vuln(location=SourceLocation(DOCKERFILE, 3))], repo_root=repo))
    assert moved == before
    dockerfile.write_text("FROM base\nRUN apt-get install libssl3 curl\n", encoding="utf-8")
    edited = fingerprints(build([vuln(location=SourceLocation(DOCKERFILE, 2))], repo_root=repo))
    assert edited != before


def test_fingerprint_covers_package_version_and_path() -> None:
    base = fingerprints(build([vuln()]))
    for change in ({"package": "libssl-dev"}, {"installed_version": "3.0.14"}, {"image_path": "x"}):
        assert fingerprints(build([vuln(**change)])) != base
    assert fingerprints(build([vuln(fixed_version="3.0.15", status="fixed")])) == base


def test_findings_equal_in_fingerprinted_fields_stay_distinct() -> None:
    twins = [vuln(message="first occurrence"), vuln(message="second occurrence")]
    prints = fingerprints(build(twins))
    assert len(set(prints)) == 2
    assert {p.rsplit(":", 1)[1] for p in prints} == {"1", "2"}
    assert len({p.rsplit(":", 1)[0] for p in prints}) == 1
    assert fingerprints(build([twins[1], twins[0]])) == prints


def test_unreadable_repository_files_still_give_fingerprints(tmp_path: Path) -> None:
    for repo_root in (None, tmp_path / "missing"):
        doc = build([vuln(), vuln(location=SourceLocation("nope/Dockerfile", 99))], repo_root=repo_root)
        assert len(set(fingerprints(doc))) == 2


# --------------------------------------------------------------------------- limits


@pytest.mark.slow
def test_truncates_to_githubs_displayed_results_most_severe_first() -> None:
    severities = [Severity.LOW] * 2_000 + [Severity.MEDIUM] * 2_000 + [Severity.CRITICAL] * 1_003
    findings = [vuln(f"CVE-2020-{i:05d}", severity) for i, severity in enumerate(severities)]
    findings.append(Finding(Origin.POLICY, "non-root", Severity.HIGH, "root", "python-secure"))
    doc = build(findings)
    run = run_of(doc, "Trivy")
    assert len(run["results"]) == DISPLAYED_RESULTS_PER_RUN
    kept = Counter(r["properties"]["severity"] for r in run["results"])
    assert kept == {"critical": 1_003, "medium": 2_000, "low": 1_997}
    assert run["properties"]["truncated"] is True
    assert run["properties"]["omittedResults"] == 3
    assert run["properties"]["omittedBySeverity"] == {"low": 3}
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert "3 of 5003" in note["message"]["text"]
    assert len(run["tool"]["driver"]["rules"]) == DISPLAYED_RESULTS_PER_RUN
    assert "truncated" not in run_of(doc, "hardening").get("properties", {})
    # the numbering of the kept results must not depend on what was cut
    top = [f for f in findings if f.severity is not Severity.LOW or f.rule_id < "CVE-2020-01997"]
    smaller = build_sarif(
        "python-secure", top, tools=TOOLS, fallback_location=FALLBACK, repo_root=FIXTURE_REPO
    )
    assert set(fingerprints(smaller)) >= {
        r["partialFingerprints"]["primaryLocationLineHash"] for r in run["results"]
    }


# --------------------------------------------------------------------------- reading back


def test_findings_round_trip_through_sarif() -> None:
    original = golden_findings()
    back = findings_from_sarif(build(original))
    assert sorted(f.key for f in back) == sorted(f.key for f in original)
    by_key = {f.key: f for f in back}
    for finding in original:
        again = by_key[finding.key]
        assert again.severity == finding.severity
        assert again.message == finding.message
        assert again.suppressed_by == finding.suppressed_by
        assert again.fixed_version == finding.fixed_version
        assert again.template_location == finding.template_location
        assert again.location == (finding.location or FALLBACK)


def test_reading_rejects_malformed_input_naming_the_field() -> None:
    doc = json.loads(dumps(build(golden_findings())))
    del doc["runs"][1]["results"][0]["message"]["text"]
    with pytest.raises(ReportInputError) as info:
        findings_from_sarif(doc, source="scan.sarif")
    assert info.value.location is not None
    assert str(info.value.location) == "scan.sarif: runs[1].results[0].message.text"
    with pytest.raises(ReportInputError, match=r"2\.1\.0"):
        findings_from_sarif({"version": "2.0.0", "runs": []})
    with pytest.raises(ReportInputError):
        findings_from_sarif({"version": "2.1.0", "runs": {}})


def test_reading_sarif_from_another_producer_uses_levels() -> None:
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "Trivy", "rules": [{"id": "CVE-1"}]}},
                "results": [
                    {"ruleId": "CVE-1", "level": "error", "message": {"text": "bad"}},
                    {"ruleIndex": 0, "level": "note", "message": {"text": "meh"}},
                ],
            }
        ],
    }
    found = findings_from_sarif(doc)
    assert [(f.rule_id, f.severity, f.origin) for f in found] == [
        ("CVE-1", Severity.HIGH, Origin.SCANNER),
        ("CVE-1", Severity.LOW, Origin.SCANNER),
    ]


def test_write_sarif_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    doc = build(golden_findings())
    target = tmp_path / "out" / "python-secure.sarif"
    write_sarif(target, doc)
    write_sarif(target, doc)
    assert json.loads(target.read_text(encoding="utf-8")) == doc
    assert [p.name for p in target.parent.iterdir()] == ["python-secure.sarif"]


# --------------------------------------------------------------------------- properties

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_ident = st.from_regex(r"[A-Za-z][A-Za-z0-9.-]{0,15}", fullmatch=True)
_maybe = st.one_of(st.none(), _text.filter(bool))
_location = st.one_of(
    st.none(),
    st.builds(
        SourceLocation,
        st.sampled_from([DOCKERFILE, "dockerfiles/python-secure/Dockerfile.j2", "x y/ü[1].txt", "/abs"]),
        st.integers(min_value=-3, max_value=40),
    ),
)
_findings = st.lists(
    st.builds(
        Finding,
        origin=st.sampled_from(Origin),
        rule_id=_ident,
        severity=st.sampled_from(Severity),
        message=_text,
        image=st.sampled_from(["python-secure", "python-secure:candidate-1", "reg:5000/a/b@sha256:00"]),
        title=_text,
        package=_maybe,
        installed_version=_maybe,
        fixed_version=_maybe,
        image_path=_maybe,
        cvss_score=st.one_of(st.none(), st.floats(min_value=-1, max_value=11) | st.just(float("nan"))),
        primary_url=st.one_of(st.none(), st.just("https://example.org/a b"), st.just("https://e.org/x")),
        references=st.lists(_text, max_size=2).map(tuple),
        description=_text,
        location=_location,
        template_location=_location,
        suppressed_by=st.one_of(st.none(), _text),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(findings=_findings, seed=st.integers(min_value=0, max_value=2**32))
def test_any_findings_give_valid_sarif_stable_under_reordering(findings: list[Finding], seed: int) -> None:
    doc = build(findings, tools=ALL_TOOLS)
    assert sum(len(r["results"]) for r in doc["runs"]) == len(findings)
    shuffled = list(findings)
    random.Random(seed).shuffle(shuffled)
    assert build(shuffled, tools=ALL_TOOLS) == doc
    assert sorted(f.key for f in findings_from_sarif(doc)) == sorted(f.key for f in findings)
