"""The explicit registry: every CheckId has a class, a schema key and documented rule ids."""

from __future__ import annotations

from pathlib import Path

from hardening.policy.config import ChecksModel
from hardening.policy.interface import Check
from hardening.policy.registry import CheckId

README = Path(__file__).resolve().parents[2] / "policies" / "README.md"


def test_every_member_has_a_check_class_with_its_id() -> None:
    for member in CheckId:
        cls = member.check_class()
        assert issubclass(cls, Check)
        assert cls.id == member.value
        assert cls.rules, member
        assert isinstance(member.default_severity.label, str)
        assert isinstance(member.needs_image, bool)
    assert len({member.check_class() for member in CheckId}) == len(CheckId)


def test_every_member_is_a_policy_key_and_back() -> None:
    assert set(ChecksModel.model_fields) == {member.value for member in CheckId}


def test_every_rule_and_check_is_documented() -> None:
    text = README.read_text()
    for member in CheckId:
        assert f"`{member.value}`" in text, member
        for rule_id, _ in member.check_class().rules:
            assert rule_id in text, rule_id
