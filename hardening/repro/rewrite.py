"""A saved image rewritten: canonical layers and config, as an archive ``docker load`` reads.

The input is what ``docker save`` wrote; it is read in place with the project's reader. Layers
the image shares with its base (the first ``keep`` diff ids, already canonical because the base
went through the same rewrite) are not touched, and not even copied: the engine that built the
image has them, and ``docker load`` registers a layer it already has without opening its file.
Every other layer is rewritten straight into the output archive (its tar header is written once
the size is known), so each byte is read once and written once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hardening.errors import BuildError, InspectError
from hardening.inspect.tarfs.outer import OuterArchive, load_json, open_archive
from hardening.repro.config import normalise_config
from hardening.repro.contents import ImageContents, read_contents
from hardening.repro.layer import LayerStats, normalise_layer
from hardening.repro.tarwrite import BLOCK, END_OF_ARCHIVE, Header, encode, padding

# Placeholder name and size of a layer's header in the output until the layer is written.
_PENDING = "pending/layer.tar"


@dataclass(frozen=True)
class Rewritten:
    """The rewritten archive's image: its id, layers and what the rewrite did."""

    image_id: str
    config_bytes: bytes
    diff_ids: tuple[str, ...]
    rewritten_layers: tuple[int, ...]  # indexes of the layers the rewrite produced
    contents: ImageContents
    removed: dict[str, int] = field(default_factory=dict)
    removed_paths: tuple[str, ...] = ()
    clamped: int = 0
    kept_owned: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _member(out: IO[bytes], name: str, data: bytes) -> None:
    out.write(encode(Header(name=name, kind=b"0", mode=0o644, uid=0, gid=0, size=len(data), mtime=0)))
    out.write(data)
    out.write(padding(len(data)))


def rewrite_archive(
    saved: Path, out: IO[bytes], *, epoch: int, keep: int, tag: str | None, reference: str | None = None
) -> Rewritten:
    """Rewrite the image in the ``docker save`` archive ``saved`` into ``out`` (a seekable file)."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    contents = read_contents(saved, reference=reference)
    seconds["read"] = time.monotonic() - started
    started = time.monotonic()
    totals = LayerStats()
    with open_archive(saved) as handle:
        outer = OuterArchive(handle, str(saved))
        layout = outer.layout(reference)
        config = load_json(outer.read_json_bytes(layout.config), f"{saved}: {layout.config}")
        if not isinstance(config, dict):
            raise InspectError(f"{saved}: the image config is not a JSON object")
        old_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(old_ids) != len(layout.layers) or keep > len(old_ids):
            raise InspectError(f"{saved}: the manifest and the config disagree on the layers")
        diff_ids: list[str] = list(old_ids[:keep])
        names = [f"{old.removeprefix('sha256:')}/layer.tar" for old in old_ids[:keep]]
        rewritten: list[int] = []
        for index in range(keep, len(layout.layers)):
            blob = layout.layers[index]
            window = outer.window(blob)
            if window.read_at(0, 2) == b"\x1f\x8b":
                raise BuildError(
                    f"{saved}: layer {index} is compressed; the engine saves layers uncompressed"
                )
            header_at = out.tell()
            out.write(bytes(BLOCK))  # the header, written once the layer's size is known
            result = normalise_layer(
                window,
                out,
                epoch=epoch,
                owned=contents.owned,
                dangling=contents.dangling,
                where=f"layer {index} of {saved.name}",
            )
            end = out.tell()
            name = f"{result.diff_id.removeprefix('sha256:')}/layer.tar"
            out.seek(header_at)
            out.write(
                encode(Header(name=name, kind=b"0", mode=0o644, uid=0, gid=0, size=result.size, mtime=0))
            )
            out.seek(end)
            out.write(padding(result.size))
            diff_ids.append(result.diff_id)
            names.append(name)
            rewritten.append(index)
            _add(totals, result.stats)
    seconds["rewrite"] = time.monotonic() - started
    config_bytes = normalise_config(config, epoch=epoch, diff_ids=diff_ids, keep=keep)
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    _member(out, f"{config_hex}.json", config_bytes)
    manifest: list[dict[str, Any]] = [
        {"Config": f"{config_hex}.json", "RepoTags": [tag] if tag else None, "Layers": names}
    ]
    _member(out, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    out.write(END_OF_ARCHIVE)
    return Rewritten(
        image_id=f"sha256:{config_hex}",
        config_bytes=config_bytes,
        diff_ids=tuple(diff_ids),
        rewritten_layers=tuple(rewritten),
        contents=contents,
        removed=dict(sorted(totals.removed.items())),
        removed_paths=tuple(totals.removed_paths),
        clamped=totals.clamped,
        kept_owned=totals.kept_owned,
        seconds=seconds,
    )


def _add(totals: LayerStats, stats: LayerStats) -> None:
    totals.entries += stats.entries
    for name, count in stats.removed.items():
        totals.removed[name] = totals.removed.get(name, 0) + count
    totals.removed_paths.extend(stats.removed_paths)
    totals.clamped += stats.clamped
    totals.kept_owned += stats.kept_owned
