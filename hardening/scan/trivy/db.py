"""The Trivy vulnerability DB a scan reads: present, of the schema Trivy 0.76 reads, identified."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from hardening.errors import ScannerError

DB_SCHEMA_VERSION = 2


@dataclass(frozen=True)
class DbState:
    updated_at: str | None
    digest: str | None  # identifies the DB content, for the result cache; None after an online scan


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
    digest = hashlib.sha256()
    digest.update(meta_bytes)
    try:
        with db_file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ScannerError(f"cannot read {db_file}: {exc}", hint=build_hint) from exc
    return DbState(updated_at=updated if isinstance(updated, str) else None, digest=digest.hexdigest())


def read_db_updated_at(cache_dir: Path) -> str | None:
    """The DB date after an online scan (Trivy may have downloaded a new DB)."""
    try:
        meta = json.loads((cache_dir / "db" / "metadata.json").read_bytes())
    except (OSError, ValueError):
        return None
    updated = meta.get("UpdatedAt") if isinstance(meta, dict) else None
    return updated if isinstance(updated, str) else None
