"""An image saved by the engine (`docker save`) to a private temporary tarball.

The inspector and the scanners read the image from this file, never from the repository. It
lives in a directory only we can read (an image can hold secrets the policy is looking for) and
is removed however the block ends. A full disk or a read-only TMPDIR is an ``OutputError`` that
says so, not a traceback.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hardening.errors import OutputError, UsageError

if TYPE_CHECKING:  # the docker SDK is slow to import; callers hand us a connected engine
    from hardening.engine.client import Engine, ImageInfo

TAR_NAME = "image.tar"


def require_image(engine: Engine, ref: str) -> ImageInfo:
    """The local image ``ref``; naming one the engine does not have is bad input (exit 2)."""
    info = engine.image(ref)
    if info is None:
        raise UsageError(
            f"no local image {ref}",
            hint="nothing can be pulled here; build or load the image first (`docker images` lists them)",
        )
    return info


@contextlib.contextmanager
def private_dir(prefix: str = "hardening-image-") -> Iterator[Path]:
    """A temporary directory readable by us alone, removed on exit."""
    try:
        context = tempfile.TemporaryDirectory(prefix=prefix)  # mkdtemp: mode 0700
    except OSError as exc:
        raise OutputError(
            f"cannot create a temporary directory: {exc.strerror or exc}",
            hint="check free space and permissions of the temporary directory (TMPDIR)",
        ) from exc
    with context as directory:
        yield Path(directory)


def save_image(engine: Engine, ref: str, tar_path: Path) -> None:
    """``docker save`` of ``ref`` into ``tar_path``."""
    try:
        with tar_path.open("wb") as handle:
            engine.save(ref, handle)
    except OSError as exc:
        raise OutputError(
            f"cannot write the image tarball of {ref} to {tar_path}: {exc.strerror or exc}",
            hint="check free space in the temporary directory (TMPDIR)",
        ) from exc


@contextlib.contextmanager
def saved_image(engine: Engine, ref: str, *, prefix: str = "hardening-image-") -> Iterator[Path]:
    """The path of ``ref`` saved as a tarball, for the duration of the block."""
    with private_dir(prefix) as directory:
        tar_path = directory / TAR_NAME
        save_image(engine, ref, tar_path)
        yield tar_path
