"""The explicit registry: every CheckId has a class that carries its metadata, a schema key and
documented rule ids."""

from __future__ import annotations

from pathlib import Path

from hardening.findings import Severity
from hardening.policy.config import CHECKS
from hardening.policy.interface import Check, DockerfileCheck, ImageCheck
from hardening.policy.options import Options, Section
from hardening.policy.registry import CheckId
from hardening.strict import Nullable, Record

README = Path(__file__).resolve().parents[2] / "policies" / "README.md"


def test_every_member_has_a_check_class_with_its_metadata() -> None:
    for member in CheckId:
        cls = member.check_class()
        assert issubclass(cls, Check)
        assert cls.id == member.value
        assert cls.rules, member
        assert isinstance(cls.default_severity, Severity)
        # What it reads is the interface it implements: the image, the Dockerfile, or both.
        assert issubclass(cls, (ImageCheck, DockerfileCheck)), member
        assert issubclass(cls.options_type, Options) and issubclass(cls.options_type.section, Section)
        # Options default to "not configured", so a check named with `{}` runs.
        cls.options_type()
    assert len({member.check_class() for member in CheckId}) == len(CheckId)


def test_every_member_is_a_policy_key_and_back() -> None:
    assert set(CHECKS.fields) == {member.value for member in CheckId}
    for member in CheckId:
        # Each key is validated by its check's own section (or null: not named).
        kind = CHECKS.fields[member.value].type
        assert isinstance(kind, Nullable) and isinstance(kind.inner, Record), member
        assert kind.inner.build is member.check_class().options_type.section, member


def test_every_rule_and_check_is_documented() -> None:
    text = README.read_text()
    for member in CheckId:
        assert f"`{member.value}`" in text, member
        for rule_id, _ in member.check_class().rules:
            assert rule_id in text, rule_id


def test_default_severities_are_the_documented_ones() -> None:
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
        for line in README.read_text().splitlines()
        if line.startswith("| `")
    }
    assert {member.value: member.check_class().default_severity.label for member in CheckId} == rows
