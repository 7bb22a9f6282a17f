"""Where results point: repository-relative paths, the lines behind them, SARIF physical locations."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from hardening.findings import SourceLocation
from hardening.report.sarif.vocabulary import SRCROOT


@dataclass(frozen=True)
class Context:
    fallback: SourceLocation
    repo_root: Path | None
    lines: LineReader
    # Thousands of findings share a handful of locations; path parsing is the cost, not the
    # answer, so each distinct location is normalised once per log.
    _normalised: dict[SourceLocation, SourceLocation | None] = field(default_factory=dict)

    def normalise(self, location: SourceLocation) -> SourceLocation | None:
        if location not in self._normalised:
            self._normalised[location] = normalise(location, self.repo_root)
        return self._normalised[location]


class LineReader:
    """Lines of repository files, each file read once."""

    def __init__(self, repo_root: Path | None) -> None:
        self._root = repo_root
        self._files: dict[str, tuple[str, ...] | None] = {}

    def line(self, path: str, number: int) -> str | None:
        if self._root is None:
            return None
        if path not in self._files:
            try:
                text = (self._root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                self._files[path] = None
            else:
                self._files[path] = tuple(text.splitlines())
        lines = self._files[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]


def normalise(location: SourceLocation, repo_root: Path | None) -> SourceLocation | None:
    """The location with a clean repository-relative POSIX path, or None when it has none."""
    raw = location.path.replace("\\", "/")
    path = PurePosixPath(raw)
    if path.is_absolute():
        if repo_root is None:
            return None
        try:
            path = PurePosixPath(Path(raw).resolve().relative_to(repo_root.resolve()).as_posix())
        except ValueError:
            return None
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    line = max(1, location.line)
    end = location.end_line if location.end_line is not None and location.end_line >= line else None
    return SourceLocation("/".join(parts), line, end)


def physical_location(location: SourceLocation) -> dict[str, Any]:
    """sarif-om's ``PhysicalLocation``: an artifact location under %SRCROOT% and a region."""
    region: dict[str, Any] = {"startLine": location.line}
    if location.end_line is not None:
        region = {"endLine": location.end_line, "startLine": location.line}
    return {"artifactLocation": {"uri": _uri(location.path), "uriBaseId": SRCROOT}, "region": region}


@lru_cache(maxsize=1024)
def _uri(path: str) -> str:
    # thousands of results share a handful of paths
    return quote(path)
