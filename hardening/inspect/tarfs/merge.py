"""Layer scans merged into one tree, bottom layer first, with overlay semantics.

Whiteouts and opaque markers hide what lower layers put there; a later entry replaces an earlier
one; a directory over a lower non-directory hides it. After the last layer every symlink is
followed once to report loops and links that climb out of the root.
"""

from __future__ import annotations

from dataclasses import replace

from hardening.errors import InspectError
from hardening.inspect.tarfs.entries import Anomaly, AnomalyKind, FileEntry, FileKind
from hardening.inspect.tarfs.layer import LayerScan, Op
from hardening.inspect.tarfs.view import Node, join_parts, resolve_in


def _children(node: Node) -> dict[str, Node]:
    if node.children is None:
        raise InspectError(f"internal error: {node.entry.path} is not a directory")
    return node.children


def _dir_entry(path: str, layer: int) -> FileEntry:
    return FileEntry(path, FileKind.DIRECTORY, 0o755, 0, 0, 0, layer, implicit=True)


class Merger:
    def __init__(self) -> None:
        self.root = Node(_dir_entry("/", 0))
        self.anomalies: list[Anomaly] = []

    def _existing(self, parts: tuple[str, ...]) -> tuple[Node | None, Node | None]:
        """(parent, node) at ``parts`` without following symlinks."""
        parent: Node | None = None
        node: Node | None = self.root
        for part in parts:
            if node is None or node.children is None:
                return None, None
            parent, node = node, node.children.get(part)
        return parent, node

    def _parent_dir(self, parts: tuple[str, ...], layer: int) -> Node:
        node = self.root
        children = _children(node)
        for depth, part in enumerate(parts):
            child = children.get(part)
            if child is None or child.children is None:
                if child is not None:
                    # Overlay puts a new directory above a lower non-directory: it hides it.
                    self.anomalies.append(
                        Anomaly(join_parts(parts[: depth + 1]), layer, AnomalyKind.NON_DIRECTORY_PARENT)
                    )
                child = Node(_dir_entry(join_parts(parts[: depth + 1]), layer))
                children[part] = child
            node = child
            children = _children(node)
        return node

    def apply(self, scan: LayerScan, layer: int) -> None:
        # Whiteouts and opaque markers hide lower layers only, whatever their position in the tar.
        for op in scan.ops:
            if op.action == "whiteout":
                parent, node = self._existing(op.parts)
                if parent is not None and parent.children is not None and node is not None:
                    del parent.children[op.parts[-1]]
            elif op.action == "opaque":
                _, node = self._existing(op.parts)
                if node is not None and node.children is not None:
                    node.children.clear()
        seen: set[tuple[str, ...]] = set()
        for op in scan.ops:
            if op.action not in ("add", "hardlink"):
                continue
            if op.parts in seen:
                self.anomalies.append(Anomaly(join_parts(op.parts), layer, AnomalyKind.DUPLICATE_ENTRY))
            seen.add(op.parts)
            if op.action == "hardlink":
                self._hardlink(op, layer)
            elif op.entry is not None:
                self._add(op.parts, op.entry, op.extracted, layer)

    def _add(self, parts: tuple[str, ...], entry: FileEntry, extracted: object, layer: int) -> None:
        if not parts:
            if entry.kind is FileKind.DIRECTORY:
                self.root.entry = replace(entry, path="/")
            else:
                self.anomalies.append(Anomaly("/", layer, AnomalyKind.NON_DIRECTORY_PARENT))
            return
        children = _children(self._parent_dir(parts[:-1], layer))
        existing = children.get(parts[-1])
        if entry.kind is FileKind.DIRECTORY and existing is not None and existing.children is not None:
            existing.entry = entry
            return
        children[parts[-1]] = Node(entry, extracted)

    def _hardlink(self, op: Op, layer: int) -> None:
        _, target = self._existing(op.target)
        path = join_parts(op.parts)
        if target is None or target.entry.kind is FileKind.DIRECTORY:
            self.anomalies.append(
                Anomaly(path, layer, AnomalyKind.HARDLINK_MISSING_TARGET, join_parts(op.target))
            )
            return
        entry = replace(target.entry, path=path, layer=layer, hardlink_to=join_parts(op.target))
        extracted = op.extracted if op.extracted is not None else target.extracted
        self._add(op.parts, entry, extracted, layer)

    def finish(self) -> tuple[Anomaly, ...]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.children:
                stack.extend(node.children.values())
            entry = node.entry
            if entry.kind is FileKind.SYMLINK:
                outcome = resolve_in(self.root, entry.path, follow_last=True)
                if outcome.status == "loop":
                    self.anomalies.append(
                        Anomaly(entry.path, entry.layer, AnomalyKind.SYMLINK_LOOP, entry.linkname)
                    )
                elif outcome.escaped:
                    self.anomalies.append(
                        Anomaly(entry.path, entry.layer, AnomalyKind.SYMLINK_ESCAPES_ROOT, entry.linkname)
                    )
        return tuple(self.anomalies)
