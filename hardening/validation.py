"""Turn pydantic validation failures into errors that name file, line and field."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from hardening.errors import BadInput, ConfigError, Location
from hardening.sourcemap import SourceMap

M = TypeVar("M", bound=pydantic.BaseModel)


def dotted(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"


def _describe(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def validate(
    model: type[M],
    data: Any,
    *,
    path: Path | str,
    smap: SourceMap | None = None,
    error: type[BadInput] = ConfigError,
    prefix: Sequence[str | int] = (),
) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = exc.errors()
        lines: list[str] = []
        first: Location | None = None
        for problem in problems:
            loc = (*prefix, *[p for p in problem["loc"] if isinstance(p, (str, int))])
            line = smap.line_of(loc) if smap else None
            where = Location(path, line, dotted(loc))
            first = first or where
            lines.append(f"{where}: {_describe(problem)}")
        assert first is not None  # noqa: S101 # nosec B101 - narrows a type; pydantic never raises without an error
        summary = _describe(problems[0])
        raise error(
            summary if len(problems) == 1 else f"{summary} (and {len(problems) - 1} more)",
            location=first,
            details="\n".join(lines) if len(problems) > 1 else None,
        ) from None
