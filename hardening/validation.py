"""Turn validation failures into errors that name file, line and field.

``parse`` validates with ``hardening.strict`` (the catalog, the policy files); ``validate`` with
pydantic (the gate, suppressions and the other files still modelled there), imported only then.
Both report in one format: the first problem as the message, every problem in the details.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hardening.errors import BadInput, ConfigError, Location
from hardening.sourcemap import SourceMap
from hardening.strict import Invalid, Problem, Type

if TYPE_CHECKING:
    import pydantic

M = TypeVar("M", bound="pydantic.BaseModel")
T = TypeVar("T")


def dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _describe(problem: Problem) -> str:
    if problem.kind == "extra_forbidden":
        return "unknown key"
    if problem.kind == "missing":
        return "required key is missing"
    return problem.message.removeprefix("Value error, ")


def bad_input(
    problems: Sequence[Problem],
    *,
    path: Path | str,
    smap: SourceMap | Callable[[], SourceMap] | None = None,
    error: type[BadInput] = ConfigError,
    prefix: Sequence[str | int] = (),
) -> BadInput:
    """One error for every problem: the first is its message and location, all are its details.

    ``smap`` may be a function that makes the source map: only an error needs it.
    """
    source = smap() if callable(smap) else smap
    lines: list[str] = []
    first: Location | None = None
    for problem in problems:
        loc = (*prefix, *problem.loc)
        where = Location(path, source.line_of(loc) if source else None, dotted(loc))
        first = first or where
        lines.append(f"{where}: {_describe(problem)}")
    assert first is not None  # noqa: S101 # nosec B101 - narrows a type; a failure has a problem
    summary = _describe(problems[0])
    return error(
        summary if len(problems) == 1 else f"{summary} (and {len(problems) - 1} more)",
        location=first,
        details="\n".join(lines) if len(problems) > 1 else None,
    )


def parse(
    kind: Type[T],
    data: Any,
    *,
    path: Path | str,
    smap: SourceMap | Callable[[], SourceMap] | None = None,
    error: type[BadInput] = ConfigError,
    prefix: Sequence[str | int] = (),
) -> T:
    """``data`` as ``kind``, or ``error`` naming every problem by file, line and key."""
    try:
        return kind.parse(data)
    except Invalid as exc:
        raise bad_input(exc.problems, path=path, smap=smap, error=error, prefix=prefix) from None


def validate(
    model: type[M],
    data: Any,
    *,
    path: Path | str,
    smap: SourceMap | None = None,
    error: type[BadInput] = ConfigError,
    prefix: Sequence[str | int] = (),
) -> M:
    """``data`` as the pydantic ``model``, or ``error`` as ``parse`` raises it."""
    import pydantic

    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            Problem(
                str(problem.get("type", "")),
                tuple(p for p in problem["loc"] if isinstance(p, (str, int))),
                str(problem.get("msg", "invalid value")),
            )
            for problem in exc.errors()
        ]
        raise bad_input(problems, path=path, smap=smap, error=error, prefix=prefix) from None
