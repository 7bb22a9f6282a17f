"""Read a ``docker save`` archive in place and merge its layers into one filesystem view.

Nothing is extracted: the outer archive and every uncompressed layer are read through seeks into
the one open file, and gzip layers are streamed once. The merged view follows overlay semantics
(whiteouts, opaque directories, a later layer replacing an earlier entry) and remembers which
layer last wrote each path. Hostile archives are expected: every oddity becomes an ``Anomaly``
instead of an exception, and only an archive that cannot be read at all raises ``InspectError``.

Callers choose which file contents matter through two callbacks: ``wants`` gives the byte budget
for an entry (0 = do not read it) and ``extract`` turns a bounded reader into whatever the caller
keeps. That keeps the expensive part — reading bytes — under the caller's control.

One module per job: ``entries`` what the reader hands out, ``view`` the merged tree and its
lookups, ``layer`` one pass over one layer tar, ``merge`` the layers stacked with overlay rules,
``outer`` the saved archive's two layouts and the image's descriptors, ``archive`` whole images.
"""

import importlib
from typing import TYPE_CHECKING, Any

from hardening.inspect.tarfs.entries import (
    Anomaly,
    AnomalyKind,
    FileEntry,
    FileKind,
    LayerInfo,
    RandomReader,
    Wants,
)
from hardening.inspect.tarfs.outer import MAX_JSON_BYTES, ImageDescriptors, LayerBlob, read_descriptors

if TYPE_CHECKING:
    from hardening.inspect.tarfs.archive import ImageArchive, read_image_stream, read_image_tar
    from hardening.inspect.tarfs.layer import MAX_STREAM_BUFFER
    from hardening.inspect.tarfs.view import SYMLINK_HOP_LIMIT, ImageFilesystem

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_STREAM_BUFFER",
    "SYMLINK_HOP_LIMIT",
    "Anomaly",
    "AnomalyKind",
    "FileEntry",
    "FileKind",
    "ImageArchive",
    "ImageDescriptors",
    "ImageFilesystem",
    "LayerBlob",
    "LayerInfo",
    "RandomReader",
    "Wants",
    "read_descriptors",
    "read_image_stream",
    "read_image_tar",
]

# The layer reader (scanning, merging, the merged view) loads when an image is first read, not
# with the package: a facts-cache hit needs only the entry types and ``read_descriptors``.
_LAZY = {
    "ImageArchive": "archive",
    "read_image_stream": "archive",
    "read_image_tar": "archive",
    "MAX_STREAM_BUFFER": "layer",
    "SYMLINK_HOP_LIMIT": "view",
    "ImageFilesystem": "view",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
