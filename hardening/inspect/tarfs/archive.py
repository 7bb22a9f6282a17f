"""Reading a whole image from a saved archive: every layer blob scanned, the scans merged."""

from __future__ import annotations

import gzip
import io
import shutil
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, cast

from hardening.errors import InspectError
from hardening.inspect.tarfs.entries import (
    Anomaly,
    AnomalyKind,
    FileEntry,
    LayerInfo,
    RandomReader,
    Wants,
    extract_nothing,
    nothing_wanted,
)
from hardening.inspect.tarfs.layer import LayerScan, scan_layer
from hardening.inspect.tarfs.merge import Merger
from hardening.inspect.tarfs.outer import GZIP_MAGIC, OuterArchive, load_json, open_archive
from hardening.inspect.tarfs.view import ImageFilesystem
from hardening.inspect.tarstream import StreamSource, TarFormatError, WindowSource

T = TypeVar("T")

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


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
    with open_archive(path) as handle:
        return _read_archive(handle, str(path), reference, wants, extract)


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
        info, scan = _scan_blob(outer, blob, index, diff_id, wants, extract)
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


def _scan_blob(
    outer: OuterArchive,
    blob: str,
    index: int,
    diff_id: str,
    wants: Wants,
    extract: Callable[[FileEntry, RandomReader], object],
) -> tuple[LayerInfo, LayerScan]:
    what = f"{outer.name}: layer {index} ({blob})"
    window = outer.window(blob)
    size = window.size or 0
    head = window.read_at(0, 4)
    compressed = head.startswith(GZIP_MAGIC)
    if head.startswith(_ZSTD_MAGIC):
        raise InspectError(f"{what} is zstd-compressed, which is not supported")
    if size == 0:
        scan = LayerScan()
        scan.anomalies.append(Anomaly(blob, index, AnomalyKind.EMPTY_LAYER_BLOB))
    else:
        try:
            if compressed:
                with gzip.GzipFile(fileobj=_WindowFile(window), mode="rb") as unzipped:
                    stream = StreamSource(cast(IO[bytes], unzipped))
                    scan = scan_layer(stream, index, wants=wants, extract=extract)
            else:
                scan = scan_layer(window, index, wants=wants, extract=extract)
        except TarFormatError as exc:
            raise InspectError(
                f"{what} is not a readable tar: {exc}",
                hint="the archive is damaged or was cut short; save the image again",
            ) from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise InspectError(f"{what} is not a readable gzip stream: {exc}") from exc
    info = LayerInfo(index, diff_id, blob, size, compressed, scan.content_size)
    return info, scan


class _WindowFile(io.RawIOBase):
    """A window of the saved image as a sequential file, for ``gzip.GzipFile``."""

    def __init__(self, window: WindowSource) -> None:
        super().__init__()
        self._window = window
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._window.read_at(self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
