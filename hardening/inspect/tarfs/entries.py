"""What the reader hands out: entries of the merged view, layers, anomalies, and the callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class AnomalyKind(StrEnum):
    """What was odd about an archive entry."""

    ABSOLUTE_PATH = "absolute-path"
    PATH_TRAVERSAL = "path-traversal"
    SYMLINK_LOOP = "symlink-loop"
    SYMLINK_ESCAPES_ROOT = "symlink-escapes-root"
    DEVICE_FILE = "device-file"
    HARDLINK_MISSING_TARGET = "hardlink-missing-target"
    DUPLICATE_ENTRY = "duplicate-entry"
    NON_DIRECTORY_PARENT = "non-directory-parent"
    INVALID_WHITEOUT = "invalid-whiteout"
    UNSUPPORTED_ENTRY = "unsupported-entry"
    MISSING_END_OF_ARCHIVE = "missing-end-of-archive"
    EMPTY_LAYER_BLOB = "empty-layer-blob"
    CONTENT_TRUNCATED = "content-truncated"


@dataclass(frozen=True)
class Anomaly:
    """A suspicious entry. ``layer`` is the layer index, or None for the archive itself."""

    path: str
    layer: int | None
    kind: AnomalyKind
    detail: str = ""


class FileKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    FIFO = "fifo"


@dataclass(frozen=True)
class FileEntry:
    """One path of the merged view.

    ``mode`` holds the permission bits only (including setuid, setgid and sticky). A hard link is
    reported as the file it links to, with ``hardlink_to`` naming that file. ``implicit`` marks a
    directory no layer listed but some entry needed as a parent.
    """

    path: str
    kind: FileKind
    mode: int
    uid: int
    gid: int
    size: int
    layer: int
    linkname: str = ""
    hardlink_to: str = ""
    implicit: bool = False

    @property
    def is_executable(self) -> bool:
        return self.kind is FileKind.FILE and bool(self.mode & 0o111)


@dataclass(frozen=True)
class LayerInfo:
    """A layer as the archive lists it; ``index`` 0 is the base."""

    index: int
    diff_id: str
    blob: str
    blob_size: int
    compressed: bool
    content_size: int


class RandomReader(Protocol):
    """Bounded random access to one file's content for an ``extract`` callback."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset``; shorter at the end of the file or the budget."""
        ...


Wants = Callable[[FileEntry], int]


def nothing_wanted(entry: FileEntry) -> int:
    return 0


def extract_nothing(entry: FileEntry, reader: RandomReader) -> None:
    return None
