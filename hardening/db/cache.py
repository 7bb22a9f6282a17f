"""The DB directory of a Trivy cache, replaced as a whole or not at all.

Trivy reads ``CACHE/db/trivy.db`` and ``CACHE/db/metadata.json`` as a pair. A new DB (built,
merged or pulled) is written into a staging directory beside ``db/``, checked, and then swapped
in with one ``renameat2(RENAME_EXCHANGE)``: a reader sees the old pair or the new pair, and a
failure anywhere before the swap (a full disk, a bad download, an interrupt) leaves the previous
DB exactly as it was. Where the filesystem cannot exchange (EINVAL), two renames are used and a
crash between them leaves ``db/`` missing — never a mixed pair — with the old DB kept aside.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hardening.errors import DatabaseError, Location

DB_DIR = "db"
_STAGE_PREFIX = ".db-stage-"
_LEFTOVER_PREFIXES = (_STAGE_PREFIX, ".db-download-", ".db-push-")
# A staging directory older than this was left by a process that was killed (SIGKILL, power
# loss); younger ones may belong to a pull running right now.
_STALE_SECONDS = 6 * 3600
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_HINT = "check free space and permissions of the cache directory; the previous DB is unchanged"


def db_dir(cache_dir: Path) -> Path:
    return cache_dir / DB_DIR


@contextlib.contextmanager
def staged_db(cache_dir: Path) -> Iterator[Path]:
    """A fresh directory to write a DB into; swapped in as ``cache_dir/db`` if the block succeeds."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        sweep(cache_dir)
        stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=cache_dir))
        stage.chmod(0o755)
    except OSError as error:
        raise DatabaseError(
            f"cannot create a directory: {error.strerror or error}", location=Location(cache_dir), hint=_HINT
        ) from error
    try:
        yield stage
        _sync_dir(stage)
        swap_in(stage, db_dir(cache_dir))
    finally:
        # After a swap the stage holds the previous DB; after a failure, the partial new one.
        shutil.rmtree(stage, ignore_errors=True)


def sweep(cache_dir: Path) -> None:
    """Remove what killed pulls and builds left beside ``db/`` (a crash skips every finally)."""
    now = time.time()
    for path in cache_dir.iterdir():
        if not path.name.startswith(_LEFTOVER_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            if now - path.lstat().st_mtime < _STALE_SECONDS:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink()


def swap_in(stage: Path, target: Path) -> None:
    """Make ``stage`` the directory at ``target``; the previous one ends up at ``stage``."""
    try:
        if not target.exists():
            stage.rename(target)
            stage.mkdir()
        elif not _exchange(stage, target):
            aside = stage.with_name(stage.name + ".old")
            target.rename(aside)
            stage.rename(target)
            aside.rename(stage)
        _sync_dir(target.parent)
    except OSError as error:
        raise DatabaseError(
            f"cannot put the new DB in place: {error.strerror or error}",
            location=Location(target),
            hint=_HINT,
        ) from error


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the kernel or filesystem cannot."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
