"""Strict parsing of plain data (what tomllib and PyYAML return) into frozen dataclasses.

The catalog and the policy files are validated here. pydantic did it before, and importing it
and building a model class for every policy section was half of a short ``harden`` process
(bench/inspect_facts.py); these few shapes need none of that machinery. The rules stay the ones
users know: an unknown key or a value of the wrong type is refused (no coercion), every problem
is reported rather than the first, in the same order, with the same wording and the same key
path. tests/unit/test_strict.py pins them, with a corpus of near-miss documents whose errors were
recorded from the pydantic models.

A field's type is declared beside its default, in the dataclass field's metadata
(``field(metadata=typed(...))``); ``record(cls)`` reads them. A record for data that is not a
dataclass (the ``checks:`` table, one optional section per registered check) is a ``Record``
with its own builder.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

T = TypeVar("T")
Loc = tuple[str | int, ...]

# Integers a key path can hold as a number; a larger one is shown as text.
_I64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data: a stable kind, where (a key path), and what."""

    kind: str
    loc: Loc
    message: str


class Invalid(Exception):
    """The data does not fit; ``problems`` holds every problem found, in document order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = tuple(problems)


class _Bad(enum.Enum):
    """What a type returns for a value it refused (its problems are already recorded)."""

    BAD = 0


BAD: Final = _Bad.BAD
Result: TypeAlias = T | Literal[_Bad.BAD]


def key_loc(key: object) -> str | int:
    """A mapping key as a key path shows it: text and 64-bit integers as they are, else repr."""
    if isinstance(key, str):
        return key
    if isinstance(key, int) and key in _I64:
        return int(key)
    return repr(key)


class Type(abc.ABC, Generic[T]):
    """The type of a value: checks it strictly and returns it, converted where it says so."""

    @abc.abstractmethod
    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[T]:
        """``value`` as this type, or BAD after appending what is wrong with it to ``problems``."""

    def parse(self, value: object) -> T:
        """``value`` as this type; raises Invalid with every problem."""
        problems: list[Problem] = []
        result = self.check(value, (), problems)
        if problems or result is BAD:
            raise Invalid(problems)
        return result


class Text(Type[str]):
    """A string; optionally matching ``pattern`` over its whole length, then ``after``, which
    raises ValueError with the reason for a value it refuses."""

    def __init__(self, pattern: str | None = None, after: Callable[[str], str] | None = None) -> None:
        self.pattern = pattern
        self._regex = re.compile(pattern) if pattern is not None else None
        self.after = after

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[str]:
        if not isinstance(value, str):
            problems.append(Problem("string_type", loc, "Input should be a valid string"))
            return BAD
        # fullmatch: the patterns are anchored with ^…$, whose $ must not accept a final newline.
        if self._regex is not None and self._regex.fullmatch(value) is None:
            message = f"String should match pattern '{self.pattern}'"
            problems.append(Problem("string_pattern_mismatch", loc, message))
            return BAD
        if self.after is not None:
            try:
                return self.after(value)
            except ValueError as exc:
                problems.append(Problem("value_error", loc, f"Value error, {exc}"))
                return BAD
        return value


class Boolean(Type[bool]):
    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[bool]:
        if isinstance(value, bool):
            return value
        problems.append(Problem("bool_type", loc, "Input should be a valid boolean"))
        return BAD


class Integer(Type[int]):
    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[int]:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.append(Problem("int_type", loc, "Input should be a valid integer"))
        return BAD


class OneOf(Type[T]):
    """One of a few literal values (strings or integers); returns the literal itself.

    A string must be one of the strings exactly. A number equal to one of the integers is
    accepted (``1``, ``1.0`` and ``true`` for 1), an integer beyond 64 bits refused as too big.
    """

    def __init__(self, *values: T) -> None:
        self.values = values
        shown = [repr(v) for v in values]
        expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
        self._message = f"Input should be {expected}"
        self._has_int = any(isinstance(v, int) for v in values)

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[T]:
        if isinstance(value, int) and self._has_int and value not in _I64:
            message = "Unable to parse input string as an integer, exceeded maximum size"
            problems.append(Problem("int_parsing_size", loc, message))
            return BAD
        for literal in self.values:
            if isinstance(literal, str):
                if isinstance(value, str) and value == literal:
                    return literal
            elif isinstance(value, int | float | complex) and value == literal:
                return literal
        problems.append(Problem("literal_error", loc, self._message))
        return BAD


class Nullable(Type[T | None]):
    """``inner`` or null (YAML's ``~``/empty value)."""

    def __init__(self, inner: Type[T]) -> None:
        self.inner = inner

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[T | None]:
        return None if value is None else self.inner.check(value, loc, problems)


def _too_short(noun: str, minimum: int, found: int, loc: Loc) -> Problem:
    items = "item" if minimum == 1 else "items"
    message = f"{noun} should have at least {minimum} {items} after validation, not {found}"
    return Problem("too_short", loc, message)


class ListOf(Type[Sequence[T]]):
    """A list of ``item``, at least ``min_length`` long: a tuple, or a list when ``as_list``
    (a catalog variable's value is handed to templates as the list it was written as)."""

    def __init__(self, item: Type[T], *, min_length: int = 0, as_list: bool = False) -> None:
        self.item = item
        self.min_length = min_length
        self.as_list = as_list

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[Sequence[T]]:
        if not isinstance(value, list):
            problems.append(Problem("list_type", loc, "Input should be a valid list"))
            return BAD
        before = len(problems)
        items: list[T] = []
        for index, item in enumerate(value):
            checked = self.item.check(item, (*loc, index), problems)
            if checked is not BAD:
                items.append(checked)
        if len(problems) > before:
            return BAD
        if len(items) < self.min_length:
            problems.append(_too_short("List", self.min_length, len(items), loc))
            return BAD
        return items if self.as_list else tuple(items)


class DictOf(Type[dict[str, T]]):
    """A table whose keys are ``key`` strings and whose values are ``value``, in document order."""

    def __init__(self, key: Text, value: Type[T], *, min_length: int = 0) -> None:
        self.key = key
        self.value = value
        self.min_length = min_length

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[dict[str, T]]:
        if not isinstance(value, dict):
            problems.append(Problem("dict_type", loc, "Input should be a valid dictionary"))
            return BAD
        before = len(problems)
        result: dict[str, T] = {}
        for key, item in value.items():
            at = (*loc, key_loc(key))
            name = self.key.check(key, (*at, "[key]"), problems)
            checked = self.value.check(item, at, problems)
            if name is not BAD and checked is not BAD:
                result[name] = checked
        if len(problems) > before:
            return BAD
        if len(result) < self.min_length:
            problems.append(_too_short("Dictionary", self.min_length, len(result), loc))
            return BAD
        return result


class AnyOf(Type[Any]):
    """The first of several types a value fits; when it fits none, every member's problems,
    each under the member's name in the key path."""

    def __init__(self, *members: tuple[str, Type[Any]]) -> None:
        self.members = members

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[Any]:
        tried: list[Problem] = []
        for name, member in self.members:
            attempt: list[Problem] = []
            result = member.check(value, (*loc, name), attempt)
            if not attempt and result is not BAD:
                return result
            tried.extend(attempt)
        problems.extend(tried)
        return BAD


_REQUIRED: Final = dataclasses.MISSING


@dataclass(frozen=True)
class Field:
    """A key of a record: its type and, when it may be left out, its default."""

    type: Type[Any]
    default: Any = _REQUIRED
    default_factory: Callable[[], Any] | None = None

    def fallback(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED and self.default_factory is None


class Record(Type[T]):
    """A table with known keys only, built into ``build(**values)``; ``name`` appears in the
    message for a value that is not a table."""

    def __init__(self, name: str, fields: Mapping[str, Field], build: Callable[..., T]) -> None:
        self.name = name
        self.fields = dict(fields)
        self.build = build

    def check(self, value: object, loc: Loc, problems: list[Problem]) -> Result[T]:
        if not isinstance(value, dict):
            message = f"Input should be a valid dictionary or instance of {self.name}"
            problems.append(Problem("model_type", loc, message))
            return BAD
        before = len(problems)
        values: dict[str, Any] = {}
        for name, spec in self.fields.items():
            if name in value:
                values[name] = spec.type.check(value[name], (*loc, name), problems)
            elif spec.required:
                problems.append(Problem("missing", (*loc, name), "Field required"))
            else:
                values[name] = spec.fallback()
        for key in value:
            if not isinstance(key, str):
                problems.append(Problem("invalid_key", (*loc, key_loc(key)), "Keys should be strings"))
            elif key not in self.fields:
                problems.append(Problem("extra_forbidden", (*loc, key), "Extra inputs are not permitted"))
        if len(problems) > before:
            return BAD
        return self.build(**values)


_METADATA_KEY = "hardening.strict"


def typed(kind: Type[Any]) -> dict[str, Type[Any]]:
    """Field metadata that gives a dataclass field its type: ``field(metadata=typed(TEXT))``."""
    return {_METADATA_KEY: kind}


_records: dict[type, Record[Any]] = {}


def record(cls: type[T]) -> Record[T]:
    """The record of a frozen dataclass whose every field is ``typed``, keys in field order."""
    found = _records.get(cls)
    if found is None:
        fields: dict[str, Field] = {}
        for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
            factory = spec.default_factory
            fields[spec.name] = Field(
                spec.metadata[_METADATA_KEY],
                spec.default,
                None if factory is dataclasses.MISSING else factory,
            )
        found = _records[cls] = Record(cls.__name__, fields, cls)
    return found


TEXT: Final = Text()
BOOLEAN: Final = Boolean()
INTEGER: Final = Integer()
