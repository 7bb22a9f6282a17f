"""The image config without the build's clock and the engine's bookkeeping.

The image id is the sha256 of these bytes. The classic builder writes the time it finished
(``created``, each history entry's ``created``), the id and hostname of the container that ran the
last step (``container``, ``container_config``), the intermediate image it ran in (``config.Image``) and
its own version (``docker_version``). None of
that is needed to run the image; the times become ``SOURCE_DATE_EPOCH`` (a time already earlier,
such as the base's, stays), the rest goes. The JSON is written canonically (sorted keys, no
spaces), so equal configs are equal bytes.
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


def _clamped(text: object, epoch: int) -> str:
    seconds = parse_time(text) if isinstance(text, str) else None
    return epoch_text(epoch if seconds is None or seconds > epoch else seconds)


def normalise_config(config: Mapping[str, Any], *, epoch: int, diff_ids: Sequence[str]) -> bytes:
    """The canonical bytes of ``config`` with the new layers' ``diff_ids``."""
    result = {key: value for key, value in config.items() if key not in BUILD_ONLY_FIELDS}
    result["created"] = _clamped(config.get("created"), epoch)
    runtime = config.get("config")
    if isinstance(runtime, dict) and "Image" in runtime:
        # The id of the intermediate image the last step ran in: another id every build.
        result["config"] = {**runtime, "Image": ""}
    history = config.get("history")
    if isinstance(history, list):
        result["history"] = [
            {**entry, "created": _clamped(entry.get("created"), epoch)} if isinstance(entry, dict) else entry
            for entry in history
        ]
    rootfs = dict(config.get("rootfs") or {})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = list(diff_ids)
    result["rootfs"] = rootfs
    return json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
