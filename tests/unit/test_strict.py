"""Strict parsing (hardening.strict) answers exactly as the pydantic models it replaced did.

The corpus (tests/data/strict/corpus.jsonl, made by tests/unit/strict_corpus.py) holds near-miss
policy files and catalogs with the answer recorded when pydantic validated them: every error's
message, file:line: key path, order and count, and for documents that load, what they load to.
The unit tests below pin the rules one at a time.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from hardening.catalog_schema import CatalogModel
from hardening.policy.registry import CheckId
from hardening.strict import (
    BOOLEAN,
    TEXT,
    AnyOf,
    DictOf,
    Invalid,
    ListOf,
    Nullable,
    OneOf,
    Record,
    Text,
    record,
)
from tests.unit.strict_corpus import FILES, answer_catalog, answer_policy

CORPUS = Path(__file__).resolve().parents[1] / "data" / "strict" / "corpus.jsonl"
_HEADER, *_CASES = (json.loads(line) for line in CORPUS.read_text().splitlines())


@pytest.fixture(scope="module")
def catalog_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    for name, content in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def test_the_corpus_is_the_one_its_maker_makes() -> None:
    assert _HEADER["files"] == FILES
    kinds = [case["kind"] for case in _CASES]
    assert kinds.count("policy") > 50 and kinds.count("catalog") > 50
    # Both kinds of answer are in it: documents that load and documents with several problems.
    answers = [case["answer"] for case in _CASES]
    assert sum(a.startswith("ok ") for a in answers) > 10
    assert sum("more)" in a for a in answers) > 20


@pytest.mark.parametrize("number", range(len(_CASES)))
def test_the_same_answer_as_before(number: int, catalog_root: Path) -> None:
    case = _CASES[number]
    if case["kind"] == "policy":
        assert answer_policy(case["text"]) == case["answer"]
    else:
        assert answer_catalog(case["text"], catalog_root) == case["answer"]


def problems(kind: Any, value: object) -> list[tuple[str, tuple[str | int, ...], str]]:
    with pytest.raises(Invalid) as caught:
        kind.parse(value)
    return [(p.kind, p.loc, p.message) for p in caught.value.problems]


@dataclasses.dataclass(frozen=True)
class _Pair:
    name: str = dataclasses.field(metadata={"hardening.strict": Text(r"^[a-z]+$")})
    flag: bool | None = dataclasses.field(default=None, metadata={"hardening.strict": Nullable(BOOLEAN)})


def test_a_record_reports_fields_in_order_then_unknown_and_non_text_keys_in_document_order() -> None:
    pair = record(_Pair)
    assert pair.parse({"name": "ab"}) == _Pair("ab")
    found = problems(pair, {"zz": 1, 5: 2, "flag": "yes", None: 3, 2**70: 4, True: 5})
    assert found == [
        ("missing", ("name",), "Field required"),
        ("bool_type", ("flag",), "Input should be a valid boolean"),
        ("extra_forbidden", ("zz",), "Extra inputs are not permitted"),
        ("invalid_key", (5,), "Keys should be strings"),
        ("invalid_key", ("None",), "Keys should be strings"),
        ("invalid_key", ("1180591620717411303424",), "Keys should be strings"),
        ("invalid_key", (1,), "Keys should be strings"),
    ]
    assert problems(pair, ["name"]) == [
        ("model_type", (), "Input should be a valid dictionary or instance of _Pair")
    ]


def test_no_coercion_and_whole_string_patterns() -> None:
    assert problems(TEXT, 1) == [("string_type", (), "Input should be a valid string")]
    assert problems(BOOLEAN, 1) == [("bool_type", (), "Input should be a valid boolean")]
    # `$` of an anchored pattern does not accept a final newline.
    assert problems(Text(r"^[a-z]+$"), "abc\n") == [
        ("string_pattern_mismatch", (), "String should match pattern '^[a-z]+$'")
    ]


def test_literals() -> None:
    version = OneOf(1)
    assert [version.parse(v) for v in (1, True, 1.0)] == [1, 1, 1]
    for bad in ("1", 2, 1.5, False, None, datetime.date(2020, 1, 1)):
        assert problems(version, bad) == [("literal_error", (), "Input should be 1")], bad
    assert problems(version, 2**63) == [
        ("int_parsing_size", (), "Unable to parse input string as an integer, exceeded maximum size")
    ]
    severity = OneOf("low", "medium", "high", "critical")
    assert problems(severity, "LOW") == [
        ("literal_error", (), "Input should be 'low', 'medium', 'high' or 'critical'")
    ]


def test_lists_tables_and_unions() -> None:
    assert ListOf(TEXT).parse(["a"]) == ("a",)
    assert ListOf(TEXT, as_list=True).parse(["a"]) == ["a"]
    assert problems(ListOf(TEXT, min_length=1), []) == [
        ("too_short", (), "List should have at least 1 item after validation, not 0")
    ]
    assert problems(ListOf(TEXT), ["a", 2, None]) == [
        ("string_type", (1,), "Input should be a valid string"),
        ("string_type", (2,), "Input should be a valid string"),
    ]
    table = DictOf(Text(r"^[a-z]+$"), BOOLEAN, min_length=1)
    assert problems(table, {}) == [
        ("too_short", (), "Dictionary should have at least 1 item after validation, not 0")
    ]
    assert problems(table, {"A": 1}) == [
        ("string_pattern_mismatch", ("A", "[key]"), "String should match pattern '^[a-z]+$'"),
        ("bool_type", ("A",), "Input should be a valid boolean"),
    ]
    value = AnyOf(("str", TEXT), ("list[str]", ListOf(TEXT, as_list=True)))
    assert value.parse(["a"]) == ["a"]
    assert problems(value, [1]) == [
        ("string_type", ("str",), "Input should be a valid string"),
        ("string_type", ("list[str]", 0), "Input should be a valid string"),
    ]


def test_every_schema_field_has_a_type_and_the_order_users_know() -> None:
    """record() reads each field's type from its metadata: a field without one fails here,
    not in a user's run. Field order is problem order, so it is pinned too."""
    sections = {check.check_class().options_type.section for check in CheckId}
    for cls in sections:
        assert list(record(cls).fields)[:2] == ["severity", "enabled"], cls
    assert list(record(CatalogModel).fields) == ["project", "db", "base", "image"]
    image = record(CatalogModel).fields["image"].type
    assert isinstance(image, ListOf) and isinstance(image.item, Record)
    assert list(image.item.fields) == [
        "name", "template", "base", "repository", "tags", "version", "description", "policies",
        "wheelhouse", "variables", "variant",
    ]  # fmt: skip
