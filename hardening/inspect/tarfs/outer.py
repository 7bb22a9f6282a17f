"""The outer ``docker save`` archive: its two layouts (legacy ``manifest.json``, OCI ``index.json``).

The outer tar's headers are read once with seeks; JSON documents are read whole (they are
small) and layer blobs are handed out as windows of the one open file (``archive`` scans them).
``read_descriptors`` stops there: the image config and the layer blobs, no layer read, which is
what the facts cache needs to name an image. Nothing here imports the layer reader.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hardening.errors import InspectError
from hardening.inspect.tarfs.entries import Anomaly, AnomalyKind
from hardening.inspect.tarstream import WindowSource

# JSON documents in a docker save archive are a few kilobytes; anything bigger is not ours.
MAX_JSON_BYTES = 16 * 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = tarfile.BLOCKSIZE


def load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"{what} is not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class LayerBlob:
    """A layer blob as the outer archive stores it, known without reading the layer."""

    blob: str
    size: int
    compressed: bool


@dataclass(frozen=True)
class ImageDescriptors:
    """An image's config and layer blobs, and what was odd about the archive around them."""

    config_bytes: bytes
    layers: tuple[LayerBlob, ...]
    anomalies: tuple[Anomaly, ...]


@dataclass(frozen=True)
class Layout:
    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]


class OuterArchive:
    def __init__(self, handle: IO[bytes], name: str) -> None:
        self.handle = handle
        self.name = name
        size = handle.seek(0, 2)
        handle.seek(0)
        try:
            # Closed with ``handle`` by the caller; a TarFile on a fileobj owns nothing to close.
            self.tar = tarfile.open(fileobj=handle, mode="r:")  # noqa: SIM115
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InspectError(
                f"{name} is not a readable tar archive: {exc}",
                hint="pass the output of `docker save IMAGE -o image.tar`",
            ) from exc
        self.anomalies = _check_end(handle, self.tar.offset, size, f"{name} is truncated", layer=None)
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            if member.offset_data + member.size > size:
                raise InspectError(f"{name} is truncated inside {member.name}")
            self.members[posixpath.normpath(member.name.lstrip("/"))] = member

    def _member(self, blob: str) -> tarfile.TarInfo:
        name = posixpath.normpath(blob.lstrip("/"))
        # docker 20.10 stores a repeated layer once and links the other copies to it.
        for _ in range(8):
            member = self.members.get(name)
            if member is None:
                raise InspectError(f"{self.name}: {blob} is listed but missing from the archive")
            if member.issym():
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            elif member.islnk():
                name = posixpath.normpath(member.linkname.lstrip("/"))
            else:
                return member
        raise InspectError(f"{self.name}: {blob} is a chain of links")

    def _open(self, blob: str) -> IO[bytes]:
        member = self._member(blob)
        try:
            stream = self.tar.extractfile(member)
        except (KeyError, tarfile.TarError) as exc:
            raise InspectError(f"{self.name}: cannot read {blob}: {exc}") from exc
        if stream is None:
            raise InspectError(f"{self.name}: {blob} is not a file")
        return stream

    def window(self, blob: str) -> WindowSource:
        """Random access to a blob's bytes, in place in the archive."""
        member = self._member(blob)
        return WindowSource(self.handle, member.offset_data, member.size)

    def layer_blob(self, blob: str) -> LayerBlob:
        window = self.window(blob)
        return LayerBlob(blob, window.size or 0, window.read_at(0, len(GZIP_MAGIC)) == GZIP_MAGIC)

    def read_json_bytes(self, blob: str) -> bytes:
        with self._open(blob) as stream:
            data = stream.read(MAX_JSON_BYTES + 1)
        if len(data) > MAX_JSON_BYTES:
            raise InspectError(f"{self.name}: {blob} is larger than {MAX_JSON_BYTES} bytes")
        return data

    def layout(self, reference: str | None) -> Layout:
        if "manifest.json" in self.members:
            return self._docker_layout(reference)
        if "index.json" in self.members:
            return self._oci_layout(reference)
        raise InspectError(
            f"{self.name} has neither manifest.json nor index.json",
            hint="this is a tar archive but not one written by `docker save`",
        )

    def _docker_layout(self, reference: str | None) -> Layout:
        manifest = load_json(self.read_json_bytes("manifest.json"), f"{self.name}: manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise InspectError(f"{self.name}: manifest.json is not a non-empty list")
        chosen = _choose(
            manifest,
            lambda item: tuple(t for t in item.get("RepoTags") or () if isinstance(t, str)),
            reference,
            self.name,
        )
        config = chosen.get("Config")
        layers = chosen.get("Layers")
        if not isinstance(config, str) or not isinstance(layers, list):
            raise InspectError(f"{self.name}: manifest.json entry lacks Config or Layers")
        if not all(isinstance(layer, str) for layer in layers):
            raise InspectError(f"{self.name}: manifest.json Layers must be strings")
        tags = tuple(t for t in chosen.get("RepoTags") or () if isinstance(t, str))
        return Layout(config, tuple(layers), tags)

    def _oci_layout(self, reference: str | None) -> Layout:
        document = load_json(self.read_json_bytes("index.json"), f"{self.name}: index.json")
        names: tuple[str, ...] = ()
        # An index may point at further indexes (multi-platform); follow them a few levels.
        for _ in range(4):
            entries = document.get("manifests") if isinstance(document, dict) else None
            if not isinstance(entries, list) or not entries:
                raise InspectError(f"{self.name}: an OCI index has no manifests")
            chosen = _choose(entries, _oci_names, reference, self.name)
            names = names or _oci_names(chosen)
            blob = _blob_path(chosen.get("digest"), self.name)
            document = load_json(self.read_json_bytes(blob), f"{self.name}: {blob}")
            if isinstance(document, dict) and "layers" in document:
                break
        if not isinstance(document, dict) or not isinstance(document.get("layers"), list):
            raise InspectError(f"{self.name}: no image manifest found through index.json")
        config = document.get("config")
        if not isinstance(config, dict):
            raise InspectError(f"{self.name}: the OCI manifest has no config descriptor")
        layers = tuple(
            _blob_path(layer.get("digest") if isinstance(layer, dict) else None, self.name)
            for layer in document["layers"]
        )
        return Layout(_blob_path(config.get("digest"), self.name), layers, names)


def _check_end(handle: IO[bytes], offset: int, size: int, message: str, layer: int | None) -> list[Anomaly]:
    """Tell a complete archive from one cut short: tarfile stops quietly at either."""
    handle.seek(offset)
    block = handle.read(_BLOCK)
    if not block and offset == size:
        # Complete members but no end-of-archive blocks: readable, yet not what docker writes.
        return [Anomaly("", layer, AnomalyKind.MISSING_END_OF_ARCHIVE)]
    if len(block) < _BLOCK:
        raise InspectError(message, hint="the file was cut short; save the image again")
    if block.count(0) != _BLOCK:
        raise InspectError(
            message.replace("is truncated", "has unreadable data"),
            details=f"no valid tar header at byte {offset}",
        )
    return []


def _choose(
    items: list[Any],
    names: Callable[[dict[str, Any]], tuple[str, ...]],
    reference: str | None,
    archive: str,
) -> dict[str, Any]:
    candidates = [item for item in items if isinstance(item, dict)]
    if reference:
        matching = [item for item in candidates if reference in names(item)]
        if matching:
            return matching[0]
    if len(candidates) == 1:
        return candidates[0]
    known = ", ".join(sorted({n for item in candidates for n in names(item)})) or "none"
    raise InspectError(
        f"{archive} holds {len(candidates)} images and none is named {reference!r}",
        hint=f"names in the archive: {known}",
    )


def _oci_names(item: dict[str, Any]) -> tuple[str, ...]:
    annotations = item.get("annotations")
    if not isinstance(annotations, dict):
        return ()
    keys = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
    return tuple(annotations[k] for k in keys if isinstance(annotations.get(k), str))


def _blob_path(digest: object, archive: str) -> str:
    if not isinstance(digest, str) or ":" not in digest:
        raise InspectError(f"{archive}: invalid digest {digest!r} in an OCI descriptor")
    algorithm, _, encoded = digest.partition(":")
    if not algorithm.isalnum() or not encoded.isalnum():
        raise InspectError(f"{archive}: invalid digest {digest!r} in an OCI descriptor")
    return f"blobs/{algorithm}/{encoded}"


def read_descriptors(path: Path, *, reference: str | None = None) -> ImageDescriptors:
    """The image config and its layer blobs as the archive at ``path`` lists them.

    No layer is read: only the outer headers, the manifest, the config and the first bytes of
    each layer blob. This names the image (its config) and the archive around it (blob names,
    sizes, compression) for a fraction of what ``read_image_tar`` costs.
    """
    with open_archive(path) as handle:
        outer = OuterArchive(handle, str(path))
        layout = outer.layout(reference)
        return ImageDescriptors(
            config_bytes=outer.read_json_bytes(layout.config),
            layers=tuple(outer.layer_blob(blob) for blob in layout.layers),
            anomalies=tuple(outer.anomalies),
        )


def open_archive(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InspectError(
            f"cannot open image archive {path}: {exc.strerror or exc}",
            hint="pass the path of a tar written by `docker save`",
        ) from exc
