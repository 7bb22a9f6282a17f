"""The gate's limit on the age of the vulnerability data: parsing, the rule, and the commands.

The real Trivy with an old DB is in tests/trivy/test_db_age_real.py; here a stand-in Trivy
(which never reads the DB) shows that `harden run`, `scan` and `report` check the age before
anything is built, scanned or written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hardening.errors import DatabaseStale, ExitCode, PolicyError
from hardening.findings import DbIdentity, ToolInfo
from hardening.freshness import (
    NO_LIMIT,
    AgeLimit,
    age_of,
    describe_age,
    format_age_limit,
    parse_age,
    require_fresh,
    with_age,
)
from hardening.gate import load_gate
from hardening.report.markdown import ImageSummary, render_summary
from tests.reliability.harness import GATE, assert_fails_closed, harden, make_repo, stand_in

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def tool(updated_at: str | None, **db: object) -> ToolInfo:
    return ToolInfo("Trivy", "0.76.0", "https://trivy.dev", DbIdentity(updated_at=updated_at, **db))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2d", timedelta(days=2)), ("36h", timedelta(hours=36)), ("400d", timedelta(days=400))],
)
def test_ages_are_whole_days_or_hours(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected
    assert format_age_limit(expected) == text


@pytest.mark.parametrize("text", ["2", "2 days", "1.5d", "0d", "-1d", "2D", "d", "2w", " 2d", "02d", ""])
def test_anything_else_is_not_an_age(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 2d or 36h"):
        parse_age(text)


def test_ages_read_as_people_say_them() -> None:
    assert describe_age(timedelta(days=102, hours=5)) == "102 days"
    assert describe_age(timedelta(hours=47)) == "47 hours"
    assert describe_age(timedelta(hours=1)) == "1 hour"
    assert describe_age(timedelta(minutes=3)) == "3 minutes"


def test_the_age_is_the_datas_not_the_files() -> None:
    db = DbIdentity(updated_at="2026-11-21T12:00:00.123456789Z")
    assert age_of(db, NOW) == timedelta(days=10) - timedelta(microseconds=123456)
    aged = with_age(db, NOW)
    assert aged.age_seconds == 10 * 86400 - 1  # whole seconds, never rounded up to fresher
    # Once recorded, the age at scan time is what counts, whatever the clock says later.
    assert age_of(aged, NOW + timedelta(days=30)) == timedelta(seconds=aged.age_seconds)
    assert age_of(DbIdentity(), NOW) is None and age_of(DbIdentity(updated_at="garbage"), NOW) is None


def test_an_old_db_is_refused_with_its_age_and_what_to_do() -> None:
    limit = AgeLimit(timedelta(days=2), "policies/gate.yaml:9")
    with pytest.raises(DatabaseStale) as caught:
        require_fresh([tool("2026-08-21T20:38:00Z")], limit, now=NOW, cache_dir="/c")
    error = caught.value
    assert error.exit_code == ExitCode.INFRASTRUCTURE
    assert error.message == (
        "the vulnerability DB is 101 days old (updated 2026-08-21T20:38:00Z), older than the gate "
        "allows (max_db_age 2d, policies/gate.yaml:9); run harden db pull"
    )
    assert "harden db pull --cache-dir /c" in (error.hint or "")
    assert "--max-db-age none" in (error.hint or "")


def test_a_fresh_db_passes_and_no_limit_passes_anything() -> None:
    limit = AgeLimit(timedelta(days=2), "gate")
    require_fresh([tool("2026-11-30T06:00:00Z")], limit, now=NOW)
    require_fresh([tool("2001-01-01T00:00:00Z")], NO_LIMIT, now=NOW)
    require_fresh([tool(None)], AgeLimit(None, "--max-db-age none"), now=NOW)
    # A tool that reads no vulnerability data (a policy check, a secret scanner) is not judged.
    require_fresh([ToolInfo("census", "1", "https://example.invalid")], limit, now=NOW)


def test_a_db_of_unknown_age_is_refused_under_a_limit() -> None:
    with pytest.raises(DatabaseStale, match="age of Trivy's vulnerability DB is unknown"):
        require_fresh([tool(None)], AgeLimit(timedelta(days=2), "gate"), now=NOW)


def test_the_gate_reads_max_db_age_and_the_command_line_replaces_it(tmp_path: Path) -> None:
    gate_file = tmp_path / "policies" / "gate.yaml"
    gate_file.parent.mkdir()
    gate_file.write_text("version: 1\nfail_on: high\nmax_db_age: 36h\n")
    gate = load_gate(gate_file, tmp_path)
    assert gate.max_db_age == timedelta(hours=36)
    assert gate.age_limit() == AgeLimit(timedelta(hours=36), "policies/gate.yaml:3")
    lifted = AgeLimit(None, "--max-db-age none")
    assert gate.age_limit(lifted) is lifted
    gate_file.write_text("version: 1\n")
    assert load_gate(gate_file, tmp_path).age_limit() == NO_LIMIT


@pytest.mark.parametrize(
    ("value", "words"),
    [("2 days", ("'2 days' is not an age", "2d or 36h")), ("2", ("valid string",)), ("0d", ("not an age",))],
)
def test_a_bad_max_db_age_names_the_file_line_and_field(
    tmp_path: Path, value: str, words: tuple[str]
) -> None:
    gate_file = tmp_path / "gate.yaml"
    gate_file.write_text(f"version: 1\nfail_on: high\nmax_db_age: {value}\n")
    with pytest.raises(PolicyError) as caught:
        load_gate(gate_file, tmp_path)
    assert str(caught.value.location) == f"{gate_file}:3: max_db_age"
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    for word in words:
        assert word in caught.value.message


# --- the summary says how old the data is ---------------------------------------------------------


def _summary(db: DbIdentity, limit: AgeLimit) -> str:
    trivy = ToolInfo("Trivy", "0.76.0", "https://trivy.dev", db)
    return render_summary([ImageSummary("app", (), True, (), (trivy,), limit)])


def test_the_summary_says_plainly_how_old_built_data_is_and_that_no_limit_applied() -> None:
    db = DbIdentity(
        updated_at="2026-08-21T20:38:00Z",
        next_update="2036-11-28T00:00:00Z",
        source="built",
        inputs=(
            "4291 OSV records from advisories/upstream/Go.zip (newest 2026-08-21T20:38:00Z)",
            "11 OSV records from advisories (newest 2026-11-26T00:00:00Z)",
        ),
        age_seconds=101 * 86400 + 3600,
    )
    text = _summary(db, AgeLimit(None, "--max-db-age none"))
    assert (
        "- Trivy 0.76.0: the DB built from 2 inputs, no upstream DB; data updated "
        "2026-08-21T20:38:00Z, **101 days old** when scanned.\n"
        "  - 4291 OSV records from advisories/upstream/Go.zip (newest 2026-08-21T20:38:00Z)\n"
        "  - 11 OSV records from advisories (newest 2026-11-26T00:00:00Z)\n"
    ) in text
    assert "2036" not in text  # a built DB's NextUpdate only keeps Trivy from replacing it
    assert (
        "**No limit on the data's age applied** (no limit, lifted by --max-db-age none): these "
        "results know nothing of advisories published after 2026-08-21T20:38:00Z."
    ) in text


def test_the_summary_names_a_merged_dbs_upstream_and_the_limit_in_force() -> None:
    digest = "sha256:" + "e" * 64
    db = DbIdentity(
        updated_at="2026-11-30T06:00:00Z",
        next_update="2026-12-01T06:00:00Z",
        source="merged",
        repository="mirror.gcr.io/aquasec/trivy-db:2",
        manifest_digest=digest,
        inputs=(
            f"base DB mirror.gcr.io/aquasec/trivy-db:2@{digest} (updated …)",
            "11 OSV records from advisories",
        ),
        age_seconds=30 * 3600,
    )
    text = _summary(db, AgeLimit(timedelta(days=2), "policies/gate.yaml:18"))
    assert (
        f"the DB the upstream DB `mirror.gcr.io/aquasec/trivy-db:2@{digest}` with the organisation's "
        "advisories merged into it; data updated 2026-11-30T06:00:00Z, **30 hours old** when scanned; "
        "next update 2026-12-01T06:00:00Z."
    ) in text
    assert "  - 11 OSV records from advisories\n" in text and "  - base DB" not in text
    assert "Age limit: max_db_age 2d, policies/gate.yaml:18; older data stops the scan." in text


def test_a_summary_without_vulnerability_data_is_as_before() -> None:
    census = ToolInfo("census", "1", "https://example.invalid")
    text = render_summary([ImageSummary("app", (), True, (), (census,), NO_LIMIT)])
    assert text == render_summary([ImageSummary("app", (), True)])
    assert "Vulnerability data" not in text


# --- the commands check before they build, scan or write --------------------------------------------


def _cache(directory: Path, updated_at: str) -> Path:
    (directory / "db").mkdir(parents=True)
    (directory / "db" / "trivy.db").write_bytes(b"\0" * 4096)
    meta = {"Version": 2, "NextUpdate": "2036-01-01T00:00:00Z", "UpdatedAt": updated_at}
    (directory / "db" / "metadata.json").write_text(json.dumps(meta))
    return directory


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", gate=GATE + "max_db_age: 2d\n")


def test_run_and_scan_refuse_an_old_db_before_the_engine_is_asked(repo: Path, tmp_path: Path) -> None:
    trivy = stand_in(tmp_path / "bin", "ok")
    cache = _cache(tmp_path / "cache", "2024-05-03T03:30:46Z")
    # DOCKER_HOST at nothing: had the engine been asked, the message would say so.
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    for command in ("run", "scan"):
        result = harden(repo, command, "--trivy", str(trivy), "--cache-dir", str(cache), env=env)
        words = ("days old (updated 2024-05-03T03:30:46Z)", "max_db_age 2d, policies/gate.yaml:6")
        assert_fails_closed(result, 3, (*words, "run harden db pull"), repo.parent / "scans")
        assert "engine" not in result.output.lower()
        assert not (repo.parent / "scans" / "runs").exists()


def test_the_command_line_lifts_or_tightens_the_gates_limit(repo: Path, tmp_path: Path) -> None:
    trivy = stand_in(tmp_path / "bin", "ok")
    cache = _cache(tmp_path / "cache", "2024-05-03T03:30:46Z")
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    lifted = harden(
        repo, "run", "--trivy", str(trivy), "--cache-dir", str(cache), "--max-db-age", "none", env=env
    )
    assert lifted.code == 3 and "engine" in lifted.output.lower()  # past the check, stopped by the engine
    via_env = harden(
        repo,
        "scan",
        "--trivy",
        str(trivy),
        "--cache-dir",
        str(cache),
        env={**env, "HARDENING_MAX_DB_AGE": "none"},
    )
    assert "engine" in via_env.output.lower() and "days old" not in via_env.output
    fresh = _cache(tmp_path / "fresh", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    tightened = harden(
        repo, "run", "--trivy", str(trivy), "--cache-dir", str(fresh), "--max-db-age", "1h", env=env
    )
    assert "engine" in tightened.output.lower()  # minutes old: within the hour
    bad = harden(
        repo, "run", "--trivy", str(trivy), "--cache-dir", str(fresh), "--max-db-age", "soon", env=env
    )
    assert bad.code == 2 and "'soon' is not an age" in bad.output


def _scan_record(directory: Path, db: dict[str, object]) -> Path:
    directory.mkdir(parents=True)
    record = {
        "schema_version": 1,
        "image": "hardening-reliability/demo:1",
        "ref": "hardening-reliability/demo:1",
        "image_id": "sha256:" + "a" * 64,
        "scanner": "trivy",
        "tool": {"name": "Trivy", "version": "0.76.0", "information_uri": "https://trivy.dev", "db": db},
        "trivy_version": "0.76.0",
        "db_updated_at": db.get("updated_at"),
        "scanned_at": "2026-11-30T10:00:00Z",
        "findings": [],
    }
    (directory / "scan.json").write_text(json.dumps(record))
    return directory


def test_report_refuses_a_scan_made_with_old_data_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    old = _scan_record(tmp_path / "old", {"updated_at": "2026-11-20T10:00:00Z", "age_seconds": 10 * 86400})
    out = tmp_path / "out"
    args = ("report", "demo", "--sarif", str(out / "demo.sarif"), "--markdown", str(out / "summary.md"))
    refused = harden(repo, *args, "--scan-dir", str(old), "--history-dir", str(out / "history"))
    assert_fails_closed(refused, 3, ("the vulnerability DB of", "is 10 days old", "harden db pull"), out)
    assert not out.exists()
    # A record from before records said the age: the age at its scan time, from scanned_at.
    legacy = _scan_record(tmp_path / "legacy", {"updated_at": "2026-11-20T10:00:00Z"})
    refused = harden(repo, *args, "--scan-dir", str(legacy))
    assert refused.code == 3 and "is 10 days old" in refused.output
    fresh = _scan_record(tmp_path / "fresh", {"updated_at": "2026-11-30T06:00:00Z", "age_seconds": 4 * 3600})
    passed = harden(repo, *args, "--scan-dir", str(fresh))
    assert passed.code == 0, passed.output
    summary = (out / "summary.md").read_text()
    assert "**4 hours old** when scanned" in summary
    assert "Age limit: max_db_age 2d, policies/gate.yaml:6" in summary
    sarif = json.loads((out / "demo.sarif").read_text())
    assert sarif["runs"][1]["properties"]["vulnerabilityDatabase"] == {
        "updatedAt": "2026-11-30T06:00:00Z",
        "ageSecondsAtScan": 14400,
    }
