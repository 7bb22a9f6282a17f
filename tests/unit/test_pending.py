"""Pending updates without an archive: the gate's rule, gate.yaml, the record, the registry."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from hardening.errors import Location, PolicyError, ReportInputError
from hardening.findings import Finding, Origin, Severity, ToolInfo
from hardening.gate import GatePolicy, Suppression, decide, load_gate
from hardening.pending.findings import PENDING_RULE, UNKNOWN_RULE
from hardening.pending.interface import CheckState, PendingCheck, UpdateSource
from hardening.pending.record import read_pending_record, write_pending_record
from hardening.pending.registry import SourceSettings, UpdateSourceKind, UpdateSourceRegistry

TODAY = date(2026, 6, 1)
CHECKED = "2026-06-01T12:00:00Z"
TOOL = ToolInfo("debian-archive", "0.1.0", "https://example.org/archive")


def update(
    package: str,
    *,
    security: bool = True,
    first_seen: str | None = "2026-05-30T12:00:00Z",
    checked_at: str = CHECKED,
) -> Finding:
    props = {"security": "true" if security else "false", "checked_at": checked_at}
    if first_seen is not None:
        props["first_seen"] = first_seen
    return Finding(
        origin=Origin.ARCHIVE,
        rule_id=PENDING_RULE,
        severity=Severity.HIGH if security else Severity.LOW,
        message=f"{package} pending",
        image="demo",
        package=package,
        installed_version="1.0-1",
        fixed_version="1.0-1+deb12u1",
        package_type="debian",
        properties=tuple(sorted(props.items())),
        tool=TOOL.name,
    )


def unknown(package: str | None = None) -> Finding:
    return Finding(
        origin=Origin.ARCHIVE,
        rule_id=UNKNOWN_RULE,
        severity=Severity.MEDIUM,
        message="Pending updates are unknown, not none: the mirror did not answer",
        image="demo",
        title="pending updates unknown: the archive could not be read",
        package=package,
        properties=(("checked_at", CHECKED), ("gap", "archive-unreachable")),
        tool=TOOL.name,
    )


def gate(days: int | None = 1, **extra: object) -> GatePolicy:
    return GatePolicy(max_pending_security_days=days, **extra)  # type: ignore[arg-type]


def judge(pending: list[Finding], policy: GatePolicy, *, checked: bool = True, **extra: object):  # type: ignore[no-untyped-def]
    return decide(
        "demo", [], [], policy, today=TODAY, pending_findings=pending, pending_checked=checked, **extra
    )  # type: ignore[arg-type]


def test_without_the_setting_pending_updates_are_reported_never_judged() -> None:
    decision = judge(
        [update("libc6", first_seen="2020-01-01T00:00:00Z"), unknown()], gate(None), checked=False
    )
    assert decision.passed and decision.reasons == ()
    assert [f.package for f in decision.findings] == ["libc6", None]  # still in every report


def test_a_security_update_pending_too_long_fails() -> None:
    old = update("libc6", first_seen="2026-05-30T11:00:00Z")  # 2 days and 1 hour before the check
    young = update("libssl3", first_seen="2026-05-31T13:00:00Z")  # 23 hours
    decision = judge([old, young], gate(1))
    assert not decision.passed
    assert decision.reasons[0] == (
        "1 security update pending for more than 1 day since the archive first carried it "
        "(max_pending_security_days: 1): rebuild"
    )
    assert "libc6 1.0-1 (newer: 1.0-1+deb12u1)" in decision.reasons[1]
    assert "first seen 2026-05-30 11:00 UTC, 2.0 days" in decision.reasons[1]
    assert len(decision.reasons) == 2
    assert judge([old, young], gate(3)).passed


def test_a_zero_day_limit_fails_on_any_security_update_and_never_on_others() -> None:
    fresh = update("libc6", first_seen=CHECKED)
    assert judge([fresh], gate(0)).passed  # pending for no time at all: not "more than 0 days"
    assert not judge([update("libc6", first_seen="2026-06-01T11:59:00Z")], gate(0)).passed
    assert judge([update("tzdata", security=False, first_seen="2020-01-01T00:00:00Z")], gate(0)).passed


def test_an_unknown_first_sighting_counts_as_overdue() -> None:
    decision = judge([update("libc6", first_seen=None)], gate(30))
    assert not decision.passed and "first sighting unknown" in decision.reasons[1]


def test_unknown_pending_state_fails_closed() -> None:
    decision = judge([unknown()], gate(7))
    assert not decision.passed
    assert decision.reasons[0].startswith("1 gap leaves pending security updates unknown")
    assert (
        "HARDEN-REBUILD-UNKNOWN (pending updates unknown: the archive could not be read)"
        in decision.reasons[1]
    )
    not_checked = judge([], gate(7), checked=False)
    assert not not_checked.passed
    assert not_checked.reasons[0].startswith("pending updates were not checked, and the gate depends on them")


def test_suppressions_and_the_baseline_apply() -> None:
    suppression = Suppression(
        id=UNKNOWN_RULE,
        reason="a package we build ourselves is in no Debian pocket",
        expires=date(2027, 1, 1),
        images=(),
        package="local-only",
        version=None,
        path=None,
        source=Location(Path("s.yaml"), 3),
    )
    decision = judge([unknown("local-only")], gate(1, suppressions=(suppression,)))
    assert decision.passed and decision.suppressed == 1
    old = update("libc6", first_seen="2026-01-01T00:00:00Z")
    assert judge([old], gate(1), baseline=frozenset({old.key})).passed


def test_pending_updates_are_not_vulnerability_counts() -> None:
    # fail_on and max judge scanner findings; a HIGH pending update is neither.
    policy = gate(None, fail_on=Severity.HIGH, max_counts={Severity.HIGH: 0})
    decision = judge([update("libc6")], policy)
    assert decision.passed and decision.counted == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "greater than or equal to 0"),
        ('"2"', "valid integer"),
        ("true", "valid integer"),
        ("1.5", "valid integer"),
    ],
)
def test_gate_setting_is_strict(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(f"version: 1\nfail_on: high\nmax_pending_security_days: {value}\n")
    with pytest.raises(PolicyError, match=message) as info:
        load_gate(path, tmp_path)
    assert info.value.location is not None and info.value.location.line == 3
    path.write_text("version: 1\nmax_pending_security_days: 2\n")
    assert load_gate(path, tmp_path).max_pending_security_days == 2


def _check(findings: tuple[Finding, ...] = ()) -> PendingCheck:
    return PendingCheck(
        source="debian-archive",
        tool=TOOL,
        state=CheckState.COMPLETE,
        checked_at=datetime(2026, 6, 1, 12, tzinfo=UTC),
        findings=findings,
        suite="bookworm",
        installed={"glibc": "2.36-9+deb12u4"},
        record={"summary": {"pending": len(findings)}},
    )


def test_record_round_trip_and_strictness(tmp_path: Path) -> None:
    path = tmp_path / "pending.json"
    check = _check((update("libc6"), unknown("local-only")))
    write_pending_record(
        path, image="demo", ref="demo:candidate", image_id="sha256:" + "a" * 64, checks=[check]
    )
    image_id, (read,) = read_pending_record(path)
    assert image_id == "sha256:" + "a" * 64
    assert read == check
    doc = json.loads(path.read_text())
    doc["checks"][0]["surprise"] = 1
    path.write_text(json.dumps(doc))
    with pytest.raises(ReportInputError, match="unknown field") as info:
        read_pending_record(path)
    assert info.value.location is not None and info.value.location.field == "checks[0].surprise"
    doc["checks"][0].pop("surprise")
    doc["checks"][0]["findings"][0]["tool"] = "Trivy"
    path.write_text(json.dumps(doc))
    with pytest.raises(ReportInputError, match="findings of tool Trivy"):
        read_pending_record(path)


@pytest.mark.parametrize("kind", list(UpdateSourceKind), ids=lambda kind: kind.value)
def test_every_kind_creates_its_source(kind: UpdateSourceKind) -> None:
    made = kind.create(SourceSettings(known_sightings={}))
    assert isinstance(made, UpdateSource) and not inspect.isabstract(type(made))
    assert made.name == kind.value


def test_registries() -> None:
    assert UpdateSourceRegistry.default().names == tuple(kind.value for kind in UpdateSourceKind)
    assert UpdateSourceRegistry.empty().create_all(SourceSettings(known_sightings={})) == []
