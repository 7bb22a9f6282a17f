"""The Trivy vulnerability DB a scan reads: present, of the schema Trivy 0.76 reads, identified.

Identified twice over: by a digest of its content (the result cache's key) and by where its data
came from and how old it is (``hardening.db.identity``: pulled from which repository and
manifest, or built from which inputs), which every scan record and report carries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from hardening.errors import DatabaseInvalid, ScannerError
from hardening.findings import DbIdentity

DB_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class DbState:
    updated_at: str | None
    digest: str | None  # identifies the DB content, for the result cache; None after an online scan
    next_update: str | None = None
    # Where the data came from; None for a DB this tool cannot tell the origin of.
    provenance: DbIdentity | None = None

    def identity(self) -> DbIdentity:
        """The DB as records name it (without its age, which depends on when it is used)."""
        known = self.provenance or DbIdentity(source="unknown")
        return DbIdentity(
            updated_at=self.updated_at,
            next_update=self.next_update,
            digest=self.digest,
            source=known.source,
            repository=known.repository,
            manifest_digest=known.manifest_digest,
            inputs=known.inputs,
        )


def check_db(cache_dir: Path) -> DbState:
    """Refuse to scan offline without a DB Trivy 0.76 can read: it would find nothing."""
    db_dir = cache_dir / "db"
    db_file = db_dir / "trivy.db"
    meta_file = db_dir / "metadata.json"
    build_hint = f"run `harden db build advisories --cache-dir {cache_dir}`"
    missing = [p.name for p in (db_file, meta_file) if not p.is_file()]
    if missing:
        raise ScannerError(
            f"no Trivy vulnerability DB in {cache_dir} ({' and '.join('db/' + m for m in missing)} missing)",
            hint=build_hint,
        )
    try:
        meta_bytes = meta_file.read_bytes()
        db_size = db_file.stat().st_size
    except OSError as exc:
        raise ScannerError(f"cannot read the Trivy DB in {db_dir}: {exc}", hint=build_hint) from exc
    try:
        meta = json.loads(meta_bytes)
    except ValueError:
        raise ScannerError(f"{meta_file} is not valid JSON", hint=build_hint) from None
    version = meta.get("Version") if isinstance(meta, dict) else None
    if type(version) is not int or version != DB_SCHEMA_VERSION:
        raise ScannerError(
            f"{meta_file} says DB schema Version {version!r}; "
            f"Trivy 0.76 reads only Version {DB_SCHEMA_VERSION}",
            hint=build_hint,
        )
    if db_size == 0:
        raise ScannerError(f"{db_file} is empty", hint=build_hint)
    updated = meta.get("UpdatedAt")
    next_update = meta.get("NextUpdate")
    digest = hashlib.sha256()
    digest.update(meta_bytes)
    try:
        with db_file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ScannerError(f"cannot read {db_file}: {exc}", hint=build_hint) from exc
    return DbState(
        updated_at=updated if isinstance(updated, str) else None,
        digest=digest.hexdigest(),
        next_update=next_update if isinstance(next_update, str) else None,
        provenance=read_provenance(cache_dir),
    )


def read_provenance(cache_dir: Path) -> DbIdentity | None:
    """Source, repository and manifest digest, or inputs, as `harden db` recorded them.

    None when the metadata is not complete enough to tell (Trivy itself needs only ``Version``):
    the scan goes ahead, and its records say the source is unknown.
    """
    from hardening.db.identity import read_identity

    try:
        identity = read_identity(cache_dir)
    except DatabaseInvalid:
        return None
    return DbIdentity(
        source=identity.source.value,
        repository=identity.repository,
        manifest_digest=identity.manifest_digest,
        inputs=identity.contents,
    )


def read_db_updated_at(cache_dir: Path) -> str | None:
    """The DB date after an online scan (Trivy may have downloaded a new DB)."""
    return read_db_after_online_scan(cache_dir).updated_at


def read_db_after_online_scan(cache_dir: Path) -> DbState:
    """What Trivy left in the cache after an online scan: it may have downloaded a new DB."""
    try:
        meta = json.loads((cache_dir / "db" / "metadata.json").read_bytes())
    except (OSError, ValueError):
        return DbState(updated_at=None, digest=None)
    if not isinstance(meta, dict):
        return DbState(updated_at=None, digest=None)
    updated, next_update = meta.get("UpdatedAt"), meta.get("NextUpdate")
    return DbState(
        updated_at=updated if isinstance(updated, str) else None,
        digest=None,
        next_update=next_update if isinstance(next_update, str) else None,
        provenance=read_provenance(cache_dir),
    )
