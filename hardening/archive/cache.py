"""What the archive reader keeps between runs: verified indexes, changelogs, first sightings.

Indexes are stored by their SHA-256, which the signed Release of the day names: a run whose
``InRelease`` carries a new ``Date`` but the same index hash reuses the file, and a changed index
is a new file. Each entry is re-hashed when read, so a corrupt or foreign file is a miss (and
removed), never data. Changelogs are stored by the SHA-256 of the ``.deb`` they came from.

First sightings — the ``Date`` of the earliest Release under which a pocket was seen carrying a
source version — are what a patch-latency figure starts from; they live in one JSON file that
writers update under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hardening.atomic import write_bytes_atomic
from hardening.errors import ArchiveError

ENV_VAR = "HARDENING_ARCHIVE_CACHE"
_INDEXES = "indexes"
_CHANGELOGS = "changelogs"
_SIGHTINGS = "sightings.json"
_HINT = "check free space and permissions of the archive cache (--cache-dir)"
# Entries not used for this long are removed after a run; a point release replaces the big
# indexes every two months or so, the security pocket's change daily.
PRUNE_AFTER_SECONDS = 14 * 24 * 3600


def default_cache_dir() -> Path:
    """``$HARDENING_ARCHIVE_CACHE``, else ``~/.cache/hardening/archive``."""
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hardening" / "archive"


@dataclass(frozen=True)
class CachedChangelog:
    """A changelog taken from a ``.deb``: its gzip bytes, or None when that ``.deb`` has none.

    ``docs_link`` is the package whose documentation directory the ``.deb`` links to instead.
    """

    data: bytes | None
    docs_link: str | None = None


class ArchiveCache:
    """A cache directory; ``ArchiveCache(None)`` keeps nothing (every run downloads)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    # --- indexes ---------------------------------------------------------------------------

    def index(self, sha256: str) -> bytes | None:
        if self.root is None:
            return None
        path = self.root / _INDEXES / sha256
        data = _read(path)
        if data is None:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        _touch(path)
        return data

    def put_index(self, sha256: str, data: bytes) -> None:
        if self.root is not None:
            write_bytes_atomic(self.root / _INDEXES / sha256, data, error=ArchiveError, hint=_HINT)

    # --- changelogs ------------------------------------------------------------------------

    def changelog(self, deb_sha256: str) -> CachedChangelog | None:
        if self.root is None:
            return None
        folder = self.root / _CHANGELOGS
        absent = _read(folder / f"{deb_sha256}.none")
        if absent is not None:
            return CachedChangelog(None, absent.decode("utf-8", "replace").strip() or None)
        for path in folder.glob(f"{deb_sha256}.*.gz"):
            data = _read(path)
            expected = path.name.split(".")[1]
            if data is not None and hashlib.sha256(data).hexdigest() == expected:
                _touch(path)
                return CachedChangelog(data)
            with contextlib.suppress(OSError):
                path.unlink()
        return None

    def put_changelog(self, deb_sha256: str, entry: CachedChangelog) -> None:
        if self.root is None:
            return
        folder = self.root / _CHANGELOGS
        if entry.data is None:
            link = (entry.docs_link or "").encode()
            write_bytes_atomic(folder / f"{deb_sha256}.none", link, error=ArchiveError, hint=_HINT)
        else:
            name = f"{deb_sha256}.{hashlib.sha256(entry.data).hexdigest()}.gz"
            write_bytes_atomic(folder / name, entry.data, error=ArchiveError, hint=_HINT)

    # --- first sightings -------------------------------------------------------------------

    def first_seen(self, seen_now: Mapping[str, str]) -> dict[str, str]:
        """Record ``key → ISO date`` sightings; return each key's earliest recorded date.

        Without a cache directory, the answer is today's sighting itself.
        """
        if self.root is None:
            return dict(seen_now)
        path = self.root / _SIGHTINGS
        with self._locked(path):
            known = _load_sightings(path)
            changed = False
            for key, date in seen_now.items():
                if key not in known or date < known[key]:
                    known[key] = date
                    changed = True
            if changed:
                text = json.dumps(known, indent=0, sort_keys=True) + "\n"
                write_bytes_atomic(path, text.encode(), error=ArchiveError, hint=_HINT)
        return {key: known[key] for key in seen_now}

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock_path = path.with_name(path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = lock_path.open("a")
        except OSError as exc:
            raise ArchiveError(f"cannot lock {lock_path}: {exc.strerror or exc}", hint=_HINT) from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # --- housekeeping ----------------------------------------------------------------------

    def prune(self, *, now: float | None = None) -> int:
        """Remove index and changelog entries unused for ``PRUNE_AFTER_SECONDS``; count them.

        Reading an entry refreshes its modification time, so what a run used stays.
        """
        if self.root is None:
            return 0
        moment = time.time() if now is None else now
        removed = 0
        for folder in (self.root / _INDEXES, self.root / _CHANGELOGS):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.startswith("."):
                    continue
                with contextlib.suppress(OSError):
                    if moment - path.stat().st_mtime > PRUNE_AFTER_SECONDS:
                        path.unlink()
                        removed += 1
        return removed


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _touch(path: Path) -> None:
    # The modification time says when an entry was last used; pruning goes by it.
    with contextlib.suppress(OSError):
        os.utime(path)


def _load_sightings(path: Path) -> dict[str, str]:
    data = _read(path)
    if data is None:
        return {}
    try:
        loaded = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): v for k, v in loaded.items() if isinstance(v, str)}
