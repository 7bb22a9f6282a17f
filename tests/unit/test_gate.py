from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from hardening.errors import PolicyError
from hardening.findings import Finding, Origin, Severity, SourceLocation
from hardening.gate import GatePolicy, decide, load_baseline, load_gate, load_suppressions, write_baseline

TODAY = date(2026, 11, 26)


def vuln(rule: str, severity: Severity, *, fixed: str | None = "2.0", package: str = "libfoo") -> Finding:
    return Finding(
        origin=Origin.SCANNER,
        rule_id=rule,
        severity=severity,
        message=f"{rule} in {package}",
        image="demo",
        package=package,
        installed_version="1.0",
        fixed_version=fixed,
        image_path="/var/lib/dpkg/status",
        location=SourceLocation("dockerfiles/demo/Dockerfile", 4),
    )


def policy_finding(rule: str, severity: Severity) -> Finding:
    return Finding(Origin.POLICY, rule, severity, "runs as root", "demo")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_threshold_fails_at_and_above() -> None:
    gate = GatePolicy(fail_on=Severity.HIGH)
    assert decide("demo", [vuln("CVE-1", Severity.MEDIUM)], [], gate, today=TODAY).passed
    decision = decide("demo", [vuln("CVE-2", Severity.HIGH), vuln("CVE-3", Severity.CRITICAL)], [], gate)
    assert not decision.passed
    assert decision.reasons[0] == "2 vulnerabilities at or above high"
    assert decision.reasons[1].startswith("  critical CVE-3 in libfoo 1.0 (fixed in 2.0)")
    assert "dockerfiles/demo/Dockerfile:4" in decision.reasons[1]


def test_fixable_only_ignores_unfixed() -> None:
    gate = GatePolicy(fail_on=Severity.HIGH, only_fixable=True)
    unfixed = vuln("CVE-9", Severity.CRITICAL, fixed=None)
    assert decide("demo", [unfixed], [], gate, today=TODAY).passed
    assert not decide("demo", [unfixed, vuln("CVE-8", Severity.HIGH)], [], gate, today=TODAY).passed


def test_max_counts() -> None:
    gate = GatePolicy(fail_on=Severity.CRITICAL, max_counts={Severity.MEDIUM: 1})
    findings = [vuln(f"CVE-{i}", Severity.MEDIUM) for i in range(3)]
    decision = decide("demo", findings, [], gate, today=TODAY)
    assert not decision.passed
    assert decision.reasons == ("3 medium vulnerabilities exceed the maximum of 1",)
    assert decide("demo", findings[:1], [], gate, today=TODAY).passed


def test_policy_findings_fail_at_their_level() -> None:
    gate = GatePolicy()
    assert not decide(
        "demo", [], [policy_finding("HARDEN-USER-ROOT", Severity.HIGH)], gate, today=TODAY
    ).passed
    low = [policy_finding("HARDEN-HEALTHCHECK", Severity.LOW)]
    assert decide("demo", [], low, gate, today=TODAY).passed
    assert decide("demo", [], low[:0], GatePolicy(policy_findings=False), today=TODAY).passed


SUPPRESSIONS = """\
version: 1
suppressions:
  - id: CVE-2
    images: [demo]
    package: libfoo
    reason: "Not reachable: the library is only loaded by a tool we remove."
    expires: 2027-01-31
  - id: CVE-OLD
    reason: "Accepted until the vendor ships a fix; see ticket 42."
    expires: "2026-01-01"
"""


def test_suppression_hides_but_keeps_visible(tmp_path: Path) -> None:
    suppressions = load_suppressions(write(tmp_path, "s.yaml", SUPPRESSIONS.split("  - id: CVE-OLD")[0]))
    gate = GatePolicy(suppressions=suppressions)
    decision = decide("demo", [vuln("CVE-2", Severity.CRITICAL)], [], gate, today=TODAY)
    assert decision.passed
    assert decision.suppressed == 1
    (finding,) = decision.findings
    assert finding.suppressed_by is not None and finding.suppressed_by.startswith("Not reachable")


def test_suppression_scope_does_not_leak(tmp_path: Path) -> None:
    suppressions = load_suppressions(write(tmp_path, "s.yaml", SUPPRESSIONS.split("  - id: CVE-OLD")[0]))
    gate = GatePolicy(suppressions=suppressions)
    other_package = vuln("CVE-2", Severity.CRITICAL, package="libbar")
    assert not decide("demo", [other_package], [], gate, today=TODAY).passed
    other_version = Finding(**{**vuln("CVE-2", Severity.CRITICAL).__dict__, "installed_version": "1.1"})
    versioned = GatePolicy(suppressions=(replace(suppressions[0], version="1.0"),))
    assert decide("demo", [vuln("CVE-2", Severity.CRITICAL)], [], versioned, today=TODAY).passed
    assert not decide("demo", [other_version], [], versioned, today=TODAY).passed
    other_image = Finding(**{**vuln("CVE-2", Severity.CRITICAL).__dict__, "image": "other"})
    assert not decide("other", [other_image], [], gate, today=TODAY).passed


def test_expired_suppression_fails_and_names_itself(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", SUPPRESSIONS)
    gate = GatePolicy(suppressions=load_suppressions(path))
    decision = decide("demo", [vuln("CVE-OLD", Severity.LOW)], [], gate, today=TODAY)
    assert not decision.passed
    assert f"suppression CVE-OLD ({path}:8: suppressions[1]) expired on 2026-01-01" in decision.reasons[0]
    assert decision.findings[0].suppressed_by is None


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("version: 1\nsuppressions:\n  - id: CVE-1\n    expires: 2027-01-01\n", "suppressions[0].reason", 3),
        (
            "version: 1\nsuppressions:\n  - id: CVE-1\n    reason: short\n    expires: 2027-01-01\n",
            "suppressions[0].reason",
            4,
        ),
        (
            "version: 1\nsuppressions:\n  - id: CVE-1\n    reason: a long enough reason\n",
            "suppressions[0].expires",
            3,
        ),
        (
            "version: 1\nsuppressions:\n  - id: CVE-1\n    reason: a long enough reason\n    expires: soon\n",
            "suppressions[0].expires",
            5,
        ),
        (
            "version: 1\nsuppressions:\n  - id: CVE-1\n    reason: a long enough reason\n"
            "    expires: 2027-01-01\n    colour: red\n",
            "suppressions[0].colour",
            6,
        ),
        ("version: 2\n", "version", 1),
    ],
)
def test_bad_suppressions_name_field_and_line(tmp_path: Path, text: str, field: str, line: int) -> None:
    with pytest.raises(PolicyError) as info:
        load_suppressions(write(tmp_path, "s.yaml", text))
    assert info.value.location is not None
    assert info.value.location.field == field
    assert info.value.location.line == line
    assert info.value.exit_code == 2


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_suppressions(write(tmp_path, "s.yaml", "version: 1\nsuppressions: [\n"))
    assert info.value.location is not None and info.value.location.line is not None


def test_gate_file_loads_and_rejects(tmp_path: Path) -> None:
    write(tmp_path, "s.yaml", SUPPRESSIONS)
    gate = load_gate(
        write(
            tmp_path, "gate.yaml", "version: 1\nfail_on: critical\nmax: {high: 3}\nsuppressions: [s.yaml]\n"
        ),
        tmp_path,
    )
    assert gate.fail_on is Severity.CRITICAL
    assert gate.max_counts == {Severity.HIGH: 3}
    assert len(gate.suppressions) == 2
    with pytest.raises(PolicyError, match="unknown severity"):
        load_gate(write(tmp_path, "g2.yaml", "version: 1\nfail_on: severe\n"), tmp_path)
    with pytest.raises(PolicyError, match="does not exist"):
        load_gate(write(tmp_path, "g3.yaml", "version: 1\nsuppressions: [nope.yaml]\n"), tmp_path)


def test_baseline_makes_only_new_findings_fail(tmp_path: Path) -> None:
    old = [vuln("CVE-1", Severity.CRITICAL), vuln("CVE-2", Severity.HIGH)]
    path = tmp_path / "baseline.json"
    assert write_baseline(path, "demo", old) == 2
    baseline = load_baseline(path)
    gate = GatePolicy()
    assert decide("demo", old, [], gate, baseline=baseline, today=TODAY).passed
    decision = decide("demo", [*old, vuln("CVE-3", Severity.HIGH)], [], gate, baseline=baseline, today=TODAY)
    assert not decision.passed
    assert decision.baselined == 2
    assert "CVE-3" in decision.reasons[1]


def test_corrupt_baseline_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "b.json", '{"accepted": [["x"]]}')
    with pytest.raises(PolicyError, match="accepted"):
        load_baseline(path)


def test_missing_gate_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_gate(tmp_path / "gate.yaml", tmp_path)
    assert info.value.message == "file not found"
    assert info.value.hint is not None and "hardening.toml" in info.value.hint
