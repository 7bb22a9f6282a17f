"""The final filesystem of a saved image, read from its `docker save` tarball (layers applied in
order, whiteouts honoured), for tests that judge what an image contains."""

from __future__ import annotations

import json
import posixpath
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

GO_BUILDINFO = b"\xff Go buildinf:"
ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ImageEntry:
    mode: int
    kind: str  # file, dir, link, other
    go_binary: bool
    link_target: str = ""
    content: bytes | None = None  # only for the paths the caller asked to keep


def _contains_go_buildinfo(stream: IO[bytes]) -> bool:
    head = stream.read(len(ELF_MAGIC))
    if head != ELF_MAGIC:
        return False
    tail = head
    while chunk := stream.read(1 << 20):
        window = tail + chunk
        if GO_BUILDINFO in window:
            return True
        tail = window[-len(GO_BUILDINFO) :]
    return False


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym() or member.islnk():
        return "link"
    return "file" if member.isfile() else "other"


def index_image(saved: Path, keep: Callable[[str], bool] = lambda _path: False) -> dict[str, ImageEntry]:
    """Path → entry of every file of the image; ``keep(path)`` files carry their content."""
    entries: dict[str, ImageEntry] = {}
    with tarfile.open(saved) as image:
        manifest_file = image.extractfile("manifest.json")
        assert manifest_file is not None
        layers: list[str] = json.load(manifest_file)[0]["Layers"]
        for layer in layers:
            layer_file = image.extractfile(layer)
            assert layer_file is not None
            with tarfile.open(fileobj=layer_file) as members:
                for member in members:
                    path = posixpath.normpath("/" + member.name)
                    parent, base = posixpath.split(path)
                    if base.startswith(".wh."):
                        gone = parent if base == ".wh..wh..opq" else posixpath.join(parent, base[4:])
                        entries = {p: e for p, e in entries.items() if not p.startswith(gone + "/")}
                        if base != ".wh..wh..opq":
                            entries.pop(gone, None)
                        continue
                    go = False
                    content = None
                    if member.isfile():
                        stream = members.extractfile(member)
                        if stream is not None and keep(path):
                            content = stream.read()
                        elif stream is not None:
                            go = _contains_go_buildinfo(stream)
                    target = member.linkname if member.issym() else ""
                    entries[path] = ImageEntry(member.mode, _kind(member), go, target, content)
    return entries


def save_and_index(
    image: str, directory: Path, keep: Callable[[str], bool] = lambda _path: False
) -> dict[str, ImageEntry]:
    saved = directory / "image.tar"
    subprocess.run(["docker", "save", "--output", str(saved), image], check=True, timeout=300)
    try:
        return index_image(saved, keep)
    finally:
        saved.unlink()
