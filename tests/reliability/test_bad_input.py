"""Bad input is refused with exit 2, a message naming file, line and field, and nothing built,
tagged, pushed or written that reads as a verdict."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import cases
from tests.reliability.cases import Case, params
from tests.reliability.harness import (
    GATE,
    assert_fails_closed,
    harden,
    make_repo,
    repository_tags,
    stand_in,
    trivy_cache,
)

BAD_REPOSITORY = "hardening-reliability/bad-input"

# The gate names a suppressions file and a baseline directory, so both are read on every run.
BAD_INPUT_GATE = GATE + "suppressions: [policies/suppressions.yaml]\nbaseline_dir: scans/baselines\n"


def _write(path: Path, text: str) -> None:
    # surrogateescape lets a case carry bytes that are not UTF-8.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


def _apply(root: Path, case: Case) -> None:
    path = root / case.text("path")
    old, new = case.text("old"), case.text("new")
    if not old:
        _write(path, new)
        return
    text = path.read_text()
    assert old in text, f"{case.id}: {old!r} is not in {path.name}; the case is stale"
    _write(path, text.replace(old, new, 1))


EDIT_CASES = (
    cases.CATALOG_CASES
    + cases.TEMPLATE_CASES
    + cases.POLICY_CASES
    + cases.SUPPRESSION_CASES
    + cases.GATE_CASES
)


@pytest.mark.docker
@pytest.mark.parametrize("case", params(EDIT_CASES))
def test_bad_repository_input_exits_2_and_builds_nothing(tmp_path: Path, case: Case) -> None:
    root = tmp_path / "repo"
    catalog = make_repo(root, repository=BAD_REPOSITORY, gate=BAD_INPUT_GATE)
    _write(root / cases.SUPPRESSIONS_FILE, cases._SUPPRESSIONS)
    _apply(root, case)
    trivy = stand_in(tmp_path / "bin", "ok")
    before = repository_tags(BAD_REPOSITORY)
    result = harden(catalog, "run", "--trivy", str(trivy), "--cache-dir", str(trivy_cache(tmp_path / "c")))
    assert_fails_closed(result, 2, case.words(), root / "scans")
    assert repository_tags(BAD_REPOSITORY) == before, "bad input built or tagged an image"


# --- report files handed to the read-only commands --------------------------------------------------


@pytest.mark.parametrize("case", params(cases.TRIVY_JSON_CASES))
def test_bad_trivy_report_exits_2_and_writes_no_sarif(tmp_path: Path, case: Case) -> None:
    report = tmp_path / "report.json"
    _write(report, case.text("content"))
    out = tmp_path / "out" / "results.sarif"
    result = harden(None, "sarif", "--from-trivy", str(report), "-o", str(out), cwd=tmp_path)
    assert_fails_closed(result, 2, case.words(), tmp_path / "out")
    assert not out.exists()


@pytest.mark.parametrize("case", params(cases.OSV_CASES))
def test_bad_advisory_exits_2_and_writes_no_db(tmp_path: Path, case: Case) -> None:
    advisories = tmp_path / "advisories"
    _write(advisories / "GHSA-aaaa-bbbb-cccc.json", case.text("content"))
    cache = tmp_path / "cache"
    result = harden(None, "db", "build", str(advisories), "--cache-dir", str(cache), cwd=tmp_path)
    assert_fails_closed(result, 2, case.words(), cache)
    assert not (cache / "db" / "trivy.db").exists()
    assert not (cache / "db" / "metadata.json").exists()


def _valid_report() -> dict[str, Any]:
    from hardening.findings import Finding, Origin, Severity
    from hardening.report.jsonreport import build_report

    finding = Finding(
        origin=Origin.SCANNER, rule_id="CVE-2024-1", severity=Severity.LOW, message="m", image="demo"
    )
    return build_report("demo", [finding])


def _mutate(ident: str) -> str | None:
    doc = _valid_report()
    mutations: dict[str, Callable[[dict[str, Any]], object]] = {
        "not-json": lambda d: "{",
        "not-an-object": lambda d: [],
        "other-schema-version": lambda d: {**d, "schema_version": 99},
        "unknown-field": lambda d: {**d, "verdict": "pass"},
        "findings-not-a-list": lambda d: {**d, "findings": {}},
        "counts-do-not-add-up": lambda d: {**d, "counts": {**d["counts"], "high": 3}},
        "bad-severity": lambda d: {**d, "findings": [{**d["findings"][0], "severity": "dire"}]},
        "missing": lambda d: None,
    }
    assert set(mutations) == {c.id for c in cases.RUN_JSON_CASES}
    changed = mutations[ident](doc)
    if changed is None or isinstance(changed, str):
        return changed
    return json.dumps(changed, indent=2)


@pytest.mark.parametrize("case", params(cases.RUN_JSON_CASES))
def test_bad_run_directory_exits_2_and_writes_no_diff(tmp_path: Path, case: Case) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    _write(old / "demo" / "findings.json", json.dumps(_valid_report()))
    content = _mutate(case.id)
    if content is not None:
        _write(new / "demo" / "findings.json", content)
    out = tmp_path / "out"
    result = harden(
        None,
        "diff",
        str(old),
        str(new),
        "--json",
        str(out / "d.json"),
        "--markdown",
        str(out / "d.md"),
        cwd=tmp_path,
    )
    assert_fails_closed(result, 2, case.words(), out)
    assert not out.exists() or not any(out.iterdir())
