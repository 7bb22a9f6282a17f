"""Atomic writes: an output file is either complete or absent, never half-written.

Every file a reader could take for a result (reports, the Trivy DB, records) goes through here:
a temporary file beside the target, fsync, then rename over it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hardening.errors import InfrastructureError, Location, OutputError

_HINT = "check free space and permissions of the output directory"


def write_bytes_atomic(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o644,
    error: type[InfrastructureError] = OutputError,
    hint: str = _HINT,
) -> None:
    """Write ``data`` to ``path``; failures raise ``error`` naming the file."""
    with open_atomic(path, mode=mode, error=error, hint=hint) as handle:
        handle.write(data)


def write_text_atomic(
    path: Path,
    text: str,
    *,
    mode: int = 0o644,
    error: type[InfrastructureError] = OutputError,
    hint: str = _HINT,
) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode, error=error, hint=hint)


def write_json(
    path: Path,
    data: object,
    *,
    sort_keys: bool = True,
    ensure_ascii: bool = True,
    mode: int = 0o644,
    error: type[InfrastructureError] = OutputError,
) -> None:
    """A JSON document for people and tools: indented, keys sorted unless the order means
    something (the findings report keeps its field order), one trailing newline, atomic."""
    text = json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n"
    write_text_atomic(path, text, mode=mode, error=error)


@contextlib.contextmanager
def open_atomic(
    path: Path,
    *,
    mode: int = 0o644,
    error: type[InfrastructureError] = OutputError,
    hint: str = _HINT,
) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` when the block ends without an error.

    For outputs too large to hold in memory (a vulnerability DB written as it is produced).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise error(f"cannot write: {exc.strerror or exc}", location=Location(path), hint=hint) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as handle:
            # mkstemp creates 0600; outputs are read by CI steps and tools running as other users
            os.fchmod(handle.fileno(), mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise error(f"cannot write: {exc.strerror or exc}", location=Location(path), hint=hint) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
