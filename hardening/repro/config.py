"""The image config without the build's clock and the engine's bookkeeping.

The image id is the sha256 of these bytes. The classic builder writes the time it finished
(``created``, each history entry's ``created``), the id and hostname of the container that ran the
last step (``container``, ``container_config``), the intermediate image it ran in
(``config.Image``) and its own version (``docker_version``). None of that is needed to run the
image; the times become ``SOURCE_DATE_EPOCH`` (the base's entries keep the base's), the rest goes.
The JSON is written canonically (sorted keys, no spaces), so equal configs are equal bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# Fields of the engine's config that name the build, not the image.
BUILD_ONLY_FIELDS = ("container", "container_config", "docker_version")
_RFC3339 = re.compile(r"^(?P<seconds>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(?P<zone>Z|[+-]\d\d:\d\d)$")


def epoch_text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int | None:
    """Whole seconds since the epoch of an RFC 3339 time the engine wrote (nanoseconds allowed)."""
    match = _RFC3339.match(text)
    if match is None:
        return None
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    try:
        return int(datetime.fromisoformat(match["seconds"] + zone).timestamp())
    except ValueError:
        return None


def base_entries(history: Sequence[object], layers: int) -> int:
    """How many history entries describe the base: up to and including its ``layers``-th layer."""
    if layers <= 0:
        return 0
    seen = 0
    for index, entry in enumerate(history):
        if not (isinstance(entry, dict) and entry.get("empty_layer")):
            seen += 1
            if seen == layers:
                return index + 1
    return len(history)


def normalise_config(
    config: Mapping[str, Any], *, epoch: int, diff_ids: Sequence[str], keep: int = 0
) -> bytes:
    """The canonical bytes of ``config`` with the new layers' ``diff_ids``.

    ``keep``: the number of layers that are the base's; their history entries (already canonical,
    with the base's own epoch) stay, every later one gets this build's epoch, as does ``created``:
    a step the engine took from its cache carries the time it was first built, not this build's.
    """
    result = {key: value for key, value in config.items() if key not in BUILD_ONLY_FIELDS}
    result["created"] = epoch_text(epoch)
    runtime = config.get("config")
    if isinstance(runtime, dict) and "Image" in runtime:
        # The id of the intermediate image the last step ran in: another id every build.
        result["config"] = {**runtime, "Image": ""}
    history = config.get("history")
    if isinstance(history, list):
        own = base_entries(history, keep)
        result["history"] = [
            {**entry, "created": epoch_text(epoch)} if isinstance(entry, dict) and index >= own else entry
            for index, entry in enumerate(history)
        ]
    rootfs = dict(config.get("rootfs") or {})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = list(diff_ids)
    result["rootfs"] = rootfs
    return json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
