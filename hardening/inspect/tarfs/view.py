"""The merged view of an image's layers: a tree of entries, looked up with overlay semantics.

Symlinks are resolved inside the tree only; nothing here ever touches the host's filesystem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from hardening.inspect.tarfs.entries import Anomaly, FileEntry, FileKind

T = TypeVar("T")

# Symlink resolution gives up after this many hops, as Linux does (MAXSYMLINKS).
SYMLINK_HOP_LIMIT = 40


class Node:
    """Mutable tree node used while merging; the public view hands out ``FileEntry`` copies."""

    __slots__ = ("children", "entry", "extracted")

    def __init__(self, entry: FileEntry, extracted: object = None) -> None:
        self.entry = entry
        self.children: dict[str, Node] | None = {} if entry.kind is FileKind.DIRECTORY else None
        self.extracted = extracted


class ImageFilesystem(Generic[T]):
    """The merged, read-only view of an image's layers."""

    def __init__(self, root: Node, anomalies: tuple[Anomaly, ...]) -> None:
        self._root = root
        self.anomalies = anomalies

    def _node(self, path: str) -> Node | None:
        node = self._root
        for part in split_path(path):
            if node.children is None:
                return None
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def get(self, path: str) -> FileEntry | None:
        """The entry at exactly ``path``; no symlink along the way is followed."""
        node = self._node(path)
        return node.entry if node else None

    def lookup(self, path: str) -> FileEntry | None:
        """The entry ``path`` leads to inside the image, following symlinks."""
        resolved = self.resolve(path)
        return self.get(resolved) if resolved is not None else None

    def extracted(self, path: str) -> T | None:
        """What ``extract`` returned for the file now at ``path`` (no symlinks followed)."""
        node = self._node(path)
        return node.extracted if node else None  # type: ignore[return-value]

    def listdir(self, path: str) -> tuple[str, ...]:
        node = self._node(path)
        if node is None or node.children is None:
            return ()
        return tuple(sorted(node.children))

    def walk(self) -> Iterator[FileEntry]:
        """Every entry, parents before children, names in sorted order."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield node.entry
            if node.children:
                stack.extend(node.children[name] for name in sorted(node.children, reverse=True))

    def resolve(self, path: str, *, follow_last: bool = True) -> str | None:
        """The canonical path ``path`` names inside the image, or None (missing, loop).

        ``..`` at the root stays at the root and absolute targets restart at the image root,
        so resolution can never leave the image.
        """
        outcome = resolve_in(self._root, path, follow_last=follow_last)
        return outcome.path if outcome.status == "ok" else None


@dataclass(frozen=True)
class Resolution:
    status: str  # "ok" | "missing" | "loop"
    path: str | None
    escaped: bool


def resolve_in(root: Node, path: str, *, follow_last: bool) -> Resolution:
    pending = list(reversed(split_path(path)))
    stack: list[tuple[str, Node]] = []
    hops = 0
    escaped = False
    while pending:
        part = pending.pop()
        if part == "..":
            if stack:
                stack.pop()
            else:
                escaped = True
            continue
        parent = stack[-1][1] if stack else root
        if parent.children is None:
            return Resolution("missing", None, escaped)
        child = parent.children.get(part)
        if child is None:
            return Resolution("missing", None, escaped)
        if child.entry.kind is FileKind.SYMLINK and (pending or follow_last):
            hops += 1
            if hops > SYMLINK_HOP_LIMIT:
                return Resolution("loop", None, escaped)
            target = child.entry.linkname
            if target.startswith("/"):
                stack.clear()
            pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        stack.append((part, child))
    return Resolution("ok", "/" + "/".join(name for name, _ in stack), escaped)


def split_path(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def join_parts(parts: tuple[str, ...] | list[str]) -> str:
    return "/" + "/".join(parts)
