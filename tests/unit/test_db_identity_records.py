"""Which DB a scan used, carried from the cache into the scan record, SARIF and the history.

The Trivy scanner reads the identity `harden db build` and `harden db pull` leave in the cache;
these tests build real DBs (no Trivy needed to read their identity) and write a pull record as
`harden db pull` does. The real pull, scan and run are in tests/registry/test_db_identity_real.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hardening.db.build import build_db
from hardening.db.identity import PullRecord, write_pull_record
from hardening.errors import ReportInputError
from hardening.findings import DbIdentity, ToolInfo
from hardening.history import (
    GateResult,
    HistoryRecord,
    ScanDb,
    ScanTool,
    SeverityCounts,
    append_record,
    load_file,
)
from hardening.run.report import _scan_record
from hardening.scan.interface import ScanOptions, ScanResult
from hardening.scan.service import write_scan_record
from hardening.scan.trivy.db import check_db
from hardening.scan.trivy.scanner import tool_info
from tests.unit.test_db_sources import export, go_record

DIGEST = "sha256:" + "ab" * 32
MANIFEST = "sha256:" + "cd" * 32
PULLED = DbIdentity(
    updated_at="2026-11-30T06:00:00Z",
    next_update="2026-12-01T06:00:00Z",
    digest="0" * 64,
    source="pulled",
    repository="ghcr.io/aquasecurity/trivy-db:2",
    manifest_digest=MANIFEST,
    age_seconds=3600,
)


def test_an_identity_reads_back_as_written_and_nothing_else() -> None:
    built = DbIdentity(updated_at="2026-08-21T20:38:00Z", source="built", inputs=("1 OSV records from x",))
    for identity in (PULLED, built, DbIdentity()):
        assert DbIdentity.from_json(json.loads(json.dumps(identity.to_json()))) == identity
    for bad, field in [
        ({"colour": "red"}, "colour"),
        ({"source": "downloaded"}, "source"),
        ({"updated_at": 5}, "updated_at"),
        ({"inputs": "x"}, "inputs"),
        ({"age_seconds": -1}, "age_seconds"),
        ({"age_seconds": 1.5}, "age_seconds"),
        ({"age_seconds": True}, "age_seconds"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}: "):
            DbIdentity.from_json(bad)


def _osv_cache(tmp_path: Path) -> Path:
    modified = "2024-05-03T03:30:46Z"
    zipped = export(tmp_path / "Go.zip", go_record("GO-2024-0001", modified=modified))
    cache = tmp_path / "cache"
    build_db([zipped], cache, now=datetime(2026, 12, 1, tzinfo=UTC))
    return cache


def test_a_built_db_is_named_by_its_inputs_and_dated_by_its_data(tmp_path: Path) -> None:
    cache = _osv_cache(tmp_path)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    db = tool_info("0.76.0", check_db(cache), now=now).db
    assert db is not None
    assert db.source == "built" and db.repository is None
    assert db.updated_at == "2024-05-03T03:30:46Z"
    assert db.inputs == (f"1 OSV records from {tmp_path / 'Go.zip'} (newest 2024-05-03T03:30:46Z)",)
    assert db.age_seconds == int((now - datetime(2024, 5, 3, 3, 30, 46, tzinfo=UTC)).total_seconds())
    assert db.digest is not None and len(db.digest) == 64


def test_a_pulled_db_is_named_by_its_repository_and_manifest(tmp_path: Path) -> None:
    cache = _osv_cache(tmp_path)
    size = (cache / "db" / "trivy.db").stat().st_size
    record = PullRecord("ghcr.io/aquasecurity/trivy-db:2", MANIFEST, DIGEST, 10, size, datetime.now(UTC))
    write_pull_record(cache / "db", record)
    db = tool_info("0.76.0", check_db(cache)).db
    assert db is not None
    assert (db.source, db.repository, db.manifest_digest) == ("pulled", record.repository, MANIFEST)
    # Replaced since (Trivy's own downloader, an online scan): the stale pull record is not believed.
    (cache / "db" / "trivy.db").write_bytes(b"\0" * (size + 4096))
    db = tool_info("0.76.0", check_db(cache)).db
    assert db is not None and (db.source, db.repository) == ("built", None)


def test_a_db_whose_metadata_says_little_is_scanned_as_of_unknown_origin(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "trivy.db").write_bytes(b"\0" * 4096)
    (tmp_path / "db" / "metadata.json").write_text(
        json.dumps({"Version": 2, "UpdatedAt": "2026-01-01T00:00:00Z"})
    )
    db = tool_info("0.76.0", check_db(tmp_path)).db
    assert db is not None and db.source == "unknown" and db.updated_at == "2026-01-01T00:00:00Z"


def _result(db: DbIdentity | None) -> ScanResult:
    return ScanResult(
        (), ToolInfo("Trivy", "0.76.0", "https://trivy.dev", db), None, None, cached=False, packages=3
    )


def test_the_scan_record_carries_the_identity_whole_and_flat(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    options = ScanOptions(cache_dir=None, timeout=60)
    write_scan_record(path, "app", "app:1", "sha256:" + "a" * 64, _result(PULLED), options, scanner="trivy")
    record = json.loads(path.read_text())
    assert record["tool"]["db"] == PULLED.to_json()
    # The flat fields the release's gate record collects (every db_* key).
    assert {k: v for k, v in record.items() if k.startswith("db_")} == {
        "db_updated_at": "2026-11-30T06:00:00Z",
        "db_next_update": "2026-12-01T06:00:00Z",
        "db_source": "pulled",
        "db_repository": "ghcr.io/aquasecurity/trivy-db:2",
        "db_manifest_digest": MANIFEST,
    }
    assert _scan_record(path).tool.db == PULLED  # and `harden report` reads it back whole
    write_scan_record(path, "app", "app:1", "sha256:" + "a" * 64, _result(None), options, scanner="trivy")
    assert [k for k in json.loads(path.read_text()) if k.startswith("db_")] == ["db_updated_at"]


def test_report_refuses_an_identity_it_does_not_understand(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    options = ScanOptions(cache_dir=None, timeout=60)
    write_scan_record(path, "app", "app:1", "sha256:" + "a" * 64, _result(PULLED), options, scanner="trivy")
    record = json.loads(path.read_text())
    record["tool"]["db"]["mood"] = "fresh"
    path.write_text(json.dumps(record))
    with pytest.raises(ReportInputError) as caught:
        _scan_record(path)
    assert str(caught.value.location) == f"{path}: tool.db.mood"


# --- the history line ------------------------------------------------------------------------------


def _record(db: ScanDb | None) -> HistoryRecord:
    start = datetime(2026, 11, 30, 7, tzinfo=UTC)
    return HistoryRecord(
        date=start,
        image="python-secure",
        digest=DIGEST,
        counts=SeverityCounts(high=1),
        gate=GateResult.PASSED,
        db_date=start - timedelta(hours=1),
        trivy_version="0.76.0",
        tool=ScanTool("Trivy", "0.76.0"),
        db=db,
    )


def test_history_lines_carry_the_db_and_old_lines_still_read(tmp_path: Path) -> None:
    old_line = _record(None).to_line()
    assert '"db"' not in old_line  # a line without provenance is written as before
    pulled = ScanDb(
        "pulled", "ghcr.io/aquasecurity/trivy-db:2", MANIFEST, (), datetime(2026, 12, 1, 6, tzinfo=UTC), 3600
    )
    built = ScanDb(
        "built", inputs=("4291 OSV records from advisories/upstream/Go.zip",), age_seconds=9 * 86400
    )
    for db in (pulled, built):
        append_record(tmp_path, _record(db))
    path = tmp_path / "python-secure.jsonl"
    path.write_text(old_line + path.read_text())
    records = load_file(path)
    assert [r.db for r in records] == [None, pulled, built]
    assert json.loads(path.read_text().splitlines()[1])["db"] == {
        "source": "pulled",
        "repository": "ghcr.io/aquasecurity/trivy-db:2",
        "manifest_digest": MANIFEST,
        "next_update": "2026-12-01T06:00:00Z",
        "age_seconds": 3600,
    }


@pytest.mark.parametrize(
    ("db", "field"),
    [
        ({"source": "downloaded"}, "db.source"),
        ({"source": "pulled", "manifest_digest": "latest"}, "db.manifest_digest"),
        ({"source": "pulled", "age_seconds": -5}, "db.age_seconds"),
        ({"source": "built", "inputs": ["a\nb"]}, "db.inputs[0]"),
        ({"source": "built", "colour": "red"}, "db.colour"),
        ({"repository": "x"}, "db.source"),
    ],
)
def test_a_bad_db_in_a_history_line_names_the_field(tmp_path: Path, db: dict[str, Any], field: str) -> None:
    line = json.loads(_record(None).to_line())
    line["db"] = db
    path = tmp_path / "python-secure.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(ReportInputError) as caught:
        load_file(path)
    assert caught.value.location is not None and caught.value.location.field == field
