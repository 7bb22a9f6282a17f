from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hardening.errors import ExitCode, ReportInputError
from hardening.findings import Finding, Origin, Severity
from hardening.history import (
    GateResult,
    HistoryRecord,
    ScanTool,
    SeverityCounts,
    append_record,
    history_path,
    load_file,
    load_history,
)

DIGEST = "sha256:" + "ab" * 32
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def record(day: int = 0, image: str = "python-secure", **counts: int) -> HistoryRecord:
    return HistoryRecord(
        date=START + timedelta(days=day),
        image=image,
        digest=DIGEST,
        counts=SeverityCounts(**counts),
        gate=GateResult.PASSED,
        db_date=START,
        trivy_version="0.76.0",
    )


def test_append_writes_one_compact_line_per_record(tmp_path: Path) -> None:
    path = append_record(tmp_path, record(0, high=2))
    append_record(tmp_path, record(1, critical=1))
    assert path == tmp_path / "python-secure.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {
        "date": "2026-03-01T06:00:00Z",
        "image": "python-secure",
        "digest": DIGEST,
        "counts": {"critical": 0, "high": 2, "medium": 0, "low": 0, "unknown": 0},
        "gate": "pass",
        "db_date": "2026-03-01T06:00:00Z",
        "trivy_version": "0.76.0",
    }
    assert " " not in lines[0]


def test_round_trip(tmp_path: Path) -> None:
    written = [record(2, low=3), record(0, high=1), record(1, medium=4, unknown=1)]
    for item in written:
        append_record(tmp_path, item)
    append_record(tmp_path, record(0, image="postgres-secure", critical=1))
    history = load_history(tmp_path)
    assert sorted(history) == ["postgres-secure", "python-secure"]
    # Chronological, whatever the append order.
    assert history["python-secure"] == sorted(written, key=lambda r: r.date)


def test_the_scanner_of_a_record_round_trips_and_old_records_have_none(tmp_path: Path) -> None:
    other = HistoryRecord(
        START, "python-secure", DIGEST, SeverityCounts(low=1), None, None, None, ScanTool("census", "1.2.3")
    )
    append_record(tmp_path, record(0, high=1))  # as written before records named their scanner
    append_record(tmp_path, other)
    lines = (tmp_path / "python-secure.jsonl").read_text().splitlines()
    assert "tool" not in json.loads(lines[0])
    assert json.loads(lines[1])["tool"] == {"name": "census", "version": "1.2.3"}
    old, new = load_history(tmp_path)["python-secure"]
    assert old.tool is None and new == other


def test_null_gate_and_db_date_round_trip(tmp_path: Path) -> None:
    item = HistoryRecord(START, "python-secure", DIGEST, SeverityCounts(), None, None, None)
    append_record(tmp_path, item)
    assert load_history(tmp_path)["python-secure"] == [item]


def test_counts_from_severities() -> None:
    counts = SeverityCounts.from_severities([Severity.HIGH, Severity.HIGH, Severity.UNKNOWN])
    assert counts == SeverityCounts(high=2, unknown=1)
    assert counts.total == 3
    with pytest.raises(ValueError, match="negative"):
        SeverityCounts(low=-1)


def test_counts_from_findings_leave_suppressed_out() -> None:
    def finding(severity: Severity, suppressed_by: str | None = None) -> Finding:
        return Finding(
            Origin.SCANNER, "CVE-2026-0001", severity, "m", "python-secure", suppressed_by=suppressed_by
        )

    findings = [
        finding(Severity.CRITICAL),
        finding(Severity.CRITICAL, "accepted until May"),
        finding(Severity.LOW),
    ]
    assert SeverityCounts.from_findings(findings) == SeverityCounts(critical=1, low=1)


def test_naive_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        HistoryRecord(datetime(2026, 1, 1), "x", DIGEST, SeverityCounts(), None, None, None)


def test_appends_from_threads_never_interleave(tmp_path: Path) -> None:
    def worker(offset: int) -> None:
        for i in range(25):
            append_record(tmp_path, record(offset * 100 + i, high=offset))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(load_file(history_path(tmp_path, "python-secure"))) == 100


def _write(tmp_path: Path, *lines: str, end: str = "\n") -> Path:
    path = tmp_path / "python-secure.jsonl"
    path.write_text("\n".join(lines) + end)
    return path


def _good() -> str:
    return record(0, high=1).to_line().rstrip("\n")


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ("{not json", None, "Invalid JSON"),
        ('{"date": 1}', "date", ""),
        (_good().replace('"gate":"pass"', '"gate":"maybe"'), "gate", ""),
        (_good().replace('"high":1', '"high":-1'), "counts.high", "greater than or equal"),
        (_good().replace('"high":1', '"high":"1"'), "counts.high", "integer"),
        (_good().replace('"low":0', '"low":0,"negligible":0'), "counts.negligible", "unknown field"),
        (_good().replace('"trivy_version"', '"colour":"red","trivy_version"'), "colour", "unknown field"),
        (_good().replace(',"db_date":"2026-03-01T06:00:00Z"', ""), "db_date", "missing"),
        (_good().replace("06:00:00Z", "06:00:00"), "date", "timezone"),
        (_good().replace(DIGEST, "latest"), "digest", "pattern"),
        ("", None, "empty line"),
    ],
)
def test_malformed_line_names_file_line_and_field(
    tmp_path: Path, bad: str, field: str | None, words: str
) -> None:
    path = _write(tmp_path, _good(), bad, _good())
    with pytest.raises(ReportInputError) as info:
        load_history(tmp_path)
    err = info.value
    assert err.exit_code == ExitCode.BAD_INPUT
    assert err.location is not None
    assert Path(err.location.path) == path
    assert err.location.line == 2
    if field is not None:
        assert err.location.field == field
    assert words in err.message
    assert f"{path}:2" in err.diagnostics()


def test_record_in_the_wrong_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, record(0, image="postgres-secure").to_line().rstrip("\n"))
    with pytest.raises(ReportInputError, match="postgres-secure") as info:
        load_history(tmp_path)
    assert info.value.location is not None and info.value.location.line == 1


def test_torn_last_line_is_reported_and_not_appended_to(tmp_path: Path) -> None:
    path = _write(tmp_path, _good(), _good()[:40], end="")
    with pytest.raises(ReportInputError, match="incomplete") as info:
        load_history(tmp_path)
    assert info.value.location is not None and info.value.location.line == 2
    before = path.read_bytes()
    with pytest.raises(ReportInputError, match="incomplete"):
        append_record(tmp_path, record(5))
    assert path.read_bytes() == before


def test_missing_directory_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="no scan history directory"):
        load_history(tmp_path / "nope")


def test_empty_directory_gives_empty_history(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a history")
    assert load_history(tmp_path) == {}


def test_new_file_is_created_with_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = append_record(tmp_path / "deep" / "history", record())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
