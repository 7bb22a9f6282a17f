"""Reading an image from a saved archive: every layer scanned and merged, or only its descriptors."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from hardening.errors import InspectError
from hardening.inspect.tarfs.entries import (
    Anomaly,
    FileEntry,
    LayerInfo,
    RandomReader,
    Wants,
    extract_nothing,
    nothing_wanted,
)
from hardening.inspect.tarfs.merge import Merger
from hardening.inspect.tarfs.outer import ImageDescriptors, OuterArchive, load_json
from hardening.inspect.tarfs.view import ImageFilesystem

T = TypeVar("T")


@dataclass(frozen=True)
class ImageArchive(Generic[T]):
    """A read ``docker save`` archive: the image config, its layers and the merged filesystem."""

    config: Mapping[str, Any]
    config_bytes: bytes
    repo_tags: tuple[str, ...]
    layers: tuple[LayerInfo, ...]
    filesystem: ImageFilesystem[T]

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        return self.filesystem.anomalies


def read_image_tar(
    path: Path,
    *,
    reference: str | None = None,
    wants: Wants = nothing_wanted,
    extract: Callable[[FileEntry, RandomReader], T | None] = extract_nothing,
) -> ImageArchive[T]:
    """Read the ``docker save`` archive at ``path`` (legacy or OCI layout)."""
    with _open(path) as handle:
        return _read_archive(handle, str(path), reference, wants, extract)


def read_descriptors(path: Path, *, reference: str | None = None) -> ImageDescriptors:
    """The image config and its layer blobs as the archive at ``path`` lists them.

    No layer is read: only the outer headers, the manifest, the config and the first bytes of
    each layer blob. This names the image (its config) and the archive around it (blob names,
    sizes, compression) for a fraction of what ``read_image_tar`` costs.
    """
    with _open(path) as handle:
        outer = OuterArchive(handle, str(path))
        layout = outer.layout(reference)
        return ImageDescriptors(
            config_bytes=outer.read_json_bytes(layout.config),
            layers=tuple(outer.layer_blob(blob) for blob in layout.layers),
            anomalies=tuple(outer.anomalies),
        )


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InspectError(
            f"cannot open image archive {path}: {exc.strerror or exc}",
            hint="pass the path of a tar written by `docker save`",
        ) from exc


def read_image_stream(
    fileobj: IO[bytes],
    *,
    reference: str | None = None,
    wants: Wants = nothing_wanted,
    extract: Callable[[FileEntry, RandomReader], T | None] = extract_nothing,
) -> ImageArchive[T]:
    """Read a ``docker save`` stream; a non-seekable one is first copied to an anonymous file."""
    if _seekable(fileobj):
        return _read_archive(fileobj, "<stream>", reference, wants, extract)
    # The manifest comes last in a docker save stream, so the layers need random access.
    with tempfile.TemporaryFile(prefix="hardening-inspect-") as spool:
        shutil.copyfileobj(fileobj, spool, 1024 * 1024)
        spool.seek(0)
        return _read_archive(spool, "<stream>", reference, wants, extract)


def _seekable(fileobj: IO[bytes]) -> bool:
    try:
        return fileobj.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _read_archive(
    handle: IO[bytes],
    name: str,
    reference: str | None,
    wants: Wants,
    extract: Callable[[FileEntry, RandomReader], T | None],
) -> ImageArchive[T]:
    outer = OuterArchive(handle, name)
    layout = outer.layout(reference)
    config_bytes = outer.read_json_bytes(layout.config)
    config = load_json(config_bytes, f"{name}: {layout.config}")
    if not isinstance(config, dict):
        raise InspectError(f"{name}: image config {layout.config} is not a JSON object")
    diff_ids = _diff_ids(config, name)
    if len(diff_ids) != len(layout.layers):
        raise InspectError(
            f"{name}: the manifest lists {len(layout.layers)} layers but the image config "
            f"has {len(diff_ids)} diff ids",
            hint="the archive is inconsistent; save the image again",
        )
    merger = Merger()
    merger.anomalies.extend(outer.anomalies)
    layers: list[LayerInfo] = []
    for index, (blob, diff_id) in enumerate(zip(layout.layers, diff_ids, strict=True)):
        info, scan = outer.scan_layer(blob, index, diff_id, wants, extract)
        layers.append(info)
        merger.apply(scan, index)
        merger.anomalies.extend(scan.anomalies)
    anomalies = merger.finish()
    return ImageArchive(
        config=config,
        config_bytes=config_bytes,
        repo_tags=layout.repo_tags,
        layers=tuple(layers),
        filesystem=ImageFilesystem(merger.root, anomalies),
    )


def _diff_ids(config: Mapping[str, Any], name: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise InspectError(f"{name}: the image config has no rootfs.diff_ids list")
    return diff_ids
