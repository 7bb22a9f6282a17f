"""The ``db.tar.gz`` layer of Trivy's DB artifact: packed for a push, checked while unpacking.

The layer holds exactly ``trivy.db`` and ``metadata.json``. Unpacking trusts nothing in it: every
member must be one of those two names as a regular file (a path that would leave the directory,
a link or a device is refused), the total is capped, a truncated or damaged stream is an error,
``metadata.json`` must say schema 2 and ``trivy.db`` must open as a bbolt file. Nothing is written
outside the directory given, and the caller swaps that directory in only after all of it passed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from hardening.db.bboltread import BoltFile
from hardening.db.metadata import DB_NAME, METADATA_NAME, Metadata, read_metadata
from hardening.errors import DatabaseError, DatabaseInvalid, Location

LAYER_MEDIA_TYPE = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.aquasec.trivy.config.v1+json"
LAYER_TITLE = "db.tar.gz"
# Today's upstream DB unpacks to under 1 GB; a layer inflating past this is not a DB.
MAX_UNPACKED_BYTES = 16 << 30
_MEMBERS = (DB_NAME, METADATA_NAME)
_CHUNK = 1 << 20
_LOCAL_HINT = "check free space and permissions of the cache directory; the previous DB is unchanged"


@dataclass(frozen=True)
class Packed:
    path: Path
    digest: str  # sha256:<hex>
    size: int


def pack(db_dir: Path, out: Path) -> Packed:
    """Write ``out`` as the layer of ``db_dir``'s DB: the same bytes for the same DB.

    Members carry no owner names and the DB's UpdatedAt as their time, so pushing one DB twice
    gives one digest. gzip level 6: level 9 made the layer 2 % smaller and packing a 700 MB DB
    several times slower.
    """
    metadata = read_metadata(db_dir / METADATA_NAME)
    mtime = int(metadata.updated_at.timestamp()) if metadata.updated_at.year > 1970 else 0
    try:
        with (
            out.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped,
            tarfile.open(fileobj=zipped, mode="w|", format=tarfile.PAX_FORMAT) as archive,
        ):
            for name in _MEMBERS:
                path = db_dir / name
                info = tarfile.TarInfo(name)
                info.size = path.stat().st_size
                info.mode = 0o644
                info.mtime = mtime
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
    except OSError as error:
        raise DatabaseError(
            f"cannot pack the DB: {error.strerror or error}", location=Location(out), hint=_LOCAL_HINT
        ) from error
    digest = hashlib.sha256()
    with out.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return Packed(out, f"sha256:{digest.hexdigest()}", out.stat().st_size)


def unpack(layer: Path, dest: Path, *, limit: int = MAX_UNPACKED_BYTES) -> Metadata:
    """Unpack ``layer`` into the empty directory ``dest`` and check what came out.

    ``DatabaseInvalid`` when the layer is not a sound Trivy DB (the registry's fault: try
    another); ``DatabaseError`` when this machine cannot write it (a full disk: stop).
    """
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(layer, mode="r|gz") as archive:
            for member in archive:
                name = _member_name(member, layer)
                if name in seen:
                    raise _invalid(f"the layer holds {name} twice", layer)
                seen.add(name)
                total += member.size
                if total > limit:
                    raise _invalid(f"the layer inflates past {limit} bytes", layer)
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have content
                    raise _invalid(f"{name} has no content", layer)
                _copy(source, dest / name, member.size, layer)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise _invalid(f"the layer is truncated or damaged: {error}", layer) from error
    for name in _MEMBERS:
        if name not in seen:
            raise _invalid(f"the layer holds no {name}", layer)
    metadata = read_metadata(dest / METADATA_NAME)
    with BoltFile(dest / DB_NAME):
        pass  # opening checks the bbolt meta pages
    return metadata


def _member_name(member: tarfile.TarInfo, layer: Path) -> str:
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise _invalid(f"member {member.name!r} escapes the directory; refused", layer)
    name = "/".join(part for part in path.parts if part != ".")
    if not member.isfile():
        raise _invalid(f"member {member.name!r} is not a regular file; refused", layer)
    if name not in _MEMBERS:
        raise _invalid(
            f"unexpected member {member.name!r} (a DB layer holds {' and '.join(_MEMBERS)})", layer
        )
    return name


def _copy(source: IO[bytes], target: Path, size: int, layer: Path) -> None:
    written = 0
    try:
        with target.open("xb") as out:
            for block in iter(lambda: source.read(_CHUNK), b""):
                written += len(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except gzip.BadGzipFile as error:  # an OSError, but the layer's fault, not this machine's
        raise _invalid(f"the layer is damaged: {error}", layer) from error
    except OSError as error:
        raise DatabaseError(
            f"cannot unpack the DB: {error.strerror or error}", location=Location(target), hint=_LOCAL_HINT
        ) from error
    if written != size:
        raise _invalid(f"{target.name} is {written} bytes, its header says {size}", layer)


def _invalid(message: str, layer: Path) -> DatabaseInvalid:
    return DatabaseInvalid(message, location=Location(layer))
