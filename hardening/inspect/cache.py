"""A content-addressed cache of ``ImageFacts``, so an unchanged image is not read again.

Reading every layer is the expensive part of inspecting an image; finding out which image an
archive holds is not. The key is read from the archive's headers and JSON documents only: the
image id (sha256 of the image config, which names every layer by its diff id), the layer blobs
the facts describe, the inspector's version and the binary names asked for. An entry is JSON
decoded strictly into the dataclasses (never pickle), and is re-checked against the image id
before it is used: a corrupt, foreign or unreadable entry means a fresh inspection, never trust.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import types
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from hardening.atomic import write_text_atomic
from hardening.errors import InspectError, OutputError
from hardening.inspect.facts import DEFAULT_BINARY_NAMES, ImageFacts, inspect_image_tar

# The archive reader's own descriptors (outer headers, manifest, config; no layer read), so the
# cache never keeps a second reader of manifest.json / index.json in step.
from hardening.inspect.tarfs import read_descriptors

__all__ = [
    "ENV_VAR",
    "INSPECTOR_VERSION",
    "SUBDIR",
    "decode",
    "default_cache_dir",
    "encode",
    "inspect_cached",
]

# Bump whenever the inspector would produce different facts for the same image (a new field, a
# parser fix): old entries then stop matching instead of serving stale facts.
INSPECTOR_VERSION = 1
_FORMAT = 1
ENV_VAR = "HARDENING_FACTS_CACHE"
SUBDIR = "facts"

D = TypeVar("D")


def default_cache_dir() -> Path:
    """``$HARDENING_FACTS_CACHE``, else ``~/.cache/hardening``; entries live in its ``facts/``."""
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hardening"


def inspect_cached(
    path: Path,
    *,
    reference: str,
    binary_names: Iterable[str] = DEFAULT_BINARY_NAMES,
    cache_dir: Path | None,
) -> ImageFacts:
    """``inspect_image_tar``, answered from ``cache_dir`` when the same image was inspected before."""
    names = frozenset(binary_names)
    if cache_dir is None:
        return inspect_image_tar(path, reference=reference, binary_names=names)
    try:
        image_id, key = _key(path, reference, names)
    except InspectError:
        # Let the inspector report an unreadable archive in its own words.
        return inspect_image_tar(path, reference=reference, binary_names=names)
    entry = cache_dir / SUBDIR / f"{key}.json"
    cached = _load(entry, image_id, key)
    if cached is not None:
        return dataclasses.replace(cached, reference=reference)
    facts = inspect_image_tar(path, reference=reference, binary_names=names)
    if facts.image_id == image_id:
        _store(cache_dir, entry, image_id, key, facts)
    return facts


# --- the key ----------------------------------------------------------------------------------


def _key(path: Path, reference: str, names: frozenset[str]) -> tuple[str, str]:
    """(image id, cache key) of the image ``inspect_image_tar`` would read from ``path``."""
    descriptors = read_descriptors(path, reference=reference)
    image_id = "sha256:" + hashlib.sha256(descriptors.config_bytes).hexdigest()
    # The facts also describe the archive around the image (blob names and sizes, whether a
    # layer is gzip, a missing end marker): the same image saved as legacy or OCI layout, or
    # with compressed layers, must not share an entry. All of it comes from the headers plus
    # two bytes per layer.
    identity = {
        "format": _FORMAT,
        "inspector": INSPECTOR_VERSION,
        "image_id": image_id,
        "blobs": [[layer.blob, layer.size, layer.compressed] for layer in descriptors.layers],
        "archive_anomalies": sorted(a.kind.value for a in descriptors.anomalies),
        "binary_names": hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest(),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return image_id, key


# --- entries ----------------------------------------------------------------------------------


def _load(entry: Path, image_id: str, key: str) -> ImageFacts | None:
    """The facts stored at ``entry`` if they are intact and of ``image_id``; None otherwise."""
    try:
        document = json.loads(entry.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    # The file name is only a hint: the entry itself must say which image and key it holds.
    if (
        document.get("format") != _FORMAT
        or document.get("inspector") != INSPECTOR_VERSION
        or document.get("key") != key
        or document.get("image_id") != image_id
    ):
        return None
    try:
        facts = decode(ImageFacts, document.get("facts"))
    except (TypeError, ValueError):
        return None
    return facts if facts.image_id == image_id else None


def _store(cache_dir: Path, entry: Path, image_id: str, key: str, facts: ImageFacts) -> None:
    document = {
        "format": _FORMAT,
        "inspector": INSPECTOR_VERSION,
        "key": key,
        "image_id": image_id,
        "facts": encode(facts),
    }
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        entry.parent.mkdir(mode=0o700, exist_ok=True)
        write_text_atomic(entry, json.dumps(document, separators=(",", ":")), mode=0o600)
    except (OSError, OutputError):
        pass  # a cache that cannot be written only costs the next run a full inspection


# --- JSON <-> dataclasses ---------------------------------------------------------------------


def encode(value: object) -> Any:
    """A JSON-ready form of a frozen dataclass tree: objects, lists, strings, numbers, null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


def decode(cls: type[D], data: object) -> D:
    """``cls`` rebuilt from ``encode``'s output; anything that does not fit raises ValueError."""
    value: D = _decode(cls, data, cls.__name__)
    return value


@functools.cache
def _hints(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init)


def _decode(tp: Any, data: object, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if data is None and type(None) in options:
            return None
        rest = [option for option in options if option is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{where}: unions other than `X | None` are not supported")
        return _decode(rest[0], data, where)
    if origin is tuple:
        if not isinstance(data, list):
            raise ValueError(f"{where}: expected a list")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
        if len(data) != len(args):
            raise ValueError(f"{where}: expected {len(args)} items, found {len(data)}")
        return tuple(
            _decode(arg, item, f"{where}[{i}]") for i, (arg, item) in enumerate(zip(args, data, strict=True))
        )
    if origin is not None:
        raise TypeError(f"{where}: {tp} is not supported")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object")
        fields = _hints(tp)
        if set(data) != {name for name, _ in fields}:
            raise ValueError(f"{where}: fields {sorted(data)} do not match {tp.__name__}")
        return tp(**{name: _decode(hint, data[name], f"{where}.{name}") for name, hint in fields})
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            raise ValueError(f"{where}: {data!r} is not a {tp.__name__}") from None
    if tp is bool:
        if not isinstance(data, bool):
            raise ValueError(f"{where}: expected a boolean")
        return data
    if tp is int:
        # bool is an int to Python, never to us.
        if not isinstance(data, int) or isinstance(data, bool):
            raise ValueError(f"{where}: expected an integer")
        return data
    if tp is float:
        if not isinstance(data, int | float) or isinstance(data, bool):
            raise ValueError(f"{where}: expected a number")
        return float(data)
    if tp is str:
        if not isinstance(data, str):
            raise ValueError(f"{where}: expected a string")
        return data
    raise TypeError(f"{where}: {tp!r} is not supported")
