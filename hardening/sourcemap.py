"""Line numbers for keys in TOML and YAML files, so that errors can name the line.

``tomllib`` gives values but no positions; a small scan of the text recovers the line of every
table and key, which is all an error message needs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import yaml

Path_ = tuple[str | int, ...]

_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


@dataclass
class SourceMap:
    """Maps a key path (as pydantic reports it) to the line that defines it."""

    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None


def toml_source_map(text: str) -> SourceMap:
    smap = SourceMap()
    counts: dict[tuple[str, ...], int] = {}
    current: Path_ = ()
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in raw:
                in_multiline = None
            continue
        array = _ARRAY_TABLE.match(raw)
        table = None if array else _TABLE.match(raw)
        if array:
            names = tuple(_split_dotted(array.group(1)))
            index = counts.get(names, 0)
            counts[names] = index + 1
            # A new ``[[image]]`` starts its own ``[[image.variant]]`` list from index 0.
            for nested in [key for key in counts if len(key) > len(names) and key[: len(names)] == names]:
                del counts[nested]
            current = (*_with_indexes(names[:-1], counts), names[-1], index)
            smap.lines.setdefault(current[:-1], number)
            smap.lines[current] = number
            continue
        if table:
            names = tuple(_split_dotted(table.group(1)))
            current = _with_indexes(names, counts)
            smap.lines.setdefault(current, number)
            continue
        key = _KEY.match(raw)
        if key:
            path = (*current, *_split_dotted(key.group(1)))
            smap.lines.setdefault(path, number)
            rest = raw[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return smap


def _with_indexes(names: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> Path_:
    """``image.variables`` inside the 2nd ``[[image]]`` is ("image", 1, "variables")."""
    out: list[str | int] = []
    for i, name in enumerate(names):
        out.append(name)
        prefix = names[: i + 1]
        if (prefix in counts and i < len(names) - 1) or (prefix in counts and i == len(names) - 1):
            out.append(counts[prefix] - 1)
    return tuple(out)


def yaml_source_map(text: str) -> SourceMap:
    """Lines of every mapping key and sequence item in a YAML document."""
    import yaml  # YAML readers only; the catalog is TOML

    return yaml_node_source_map(yaml.compose(text, Loader=yaml.SafeLoader))


def yaml_node_source_map(root: yaml.Node | None) -> SourceMap:
    """``yaml_source_map`` of a document already composed, so that it is not parsed again."""
    import yaml

    smap = SourceMap()
    if root is None:
        return smap

    def walk(node: yaml.Node, path: Path_) -> None:
        smap.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    child = (*path, str(key_node.value))
                    smap.lines[child] = key_node.start_mark.line + 1
                    walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    walk(root, ())
    return smap


def yaml_value_error_line(text: str) -> int | None:
    """The line of the first scalar PyYAML parses but cannot construct (``2027-13-45``).

    Such a value makes ``yaml.safe_load`` raise a bare ValueError with no position, because the
    parser accepted it as a timestamp; composing and constructing scalar by scalar finds it.
    """
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    constructor = yaml.SafeLoader("")
    stack: list[yaml.Node] = [root] if root is not None else []
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.ScalarNode):
            try:
                constructor.construct_object(node)
            except ValueError:
                return int(node.start_mark.line) + 1
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                stack.extend((key_node, value_node))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None
