"""Which vulnerability DB each workflow scans with: pulled daily for the scheduled scan, pulled
at the tagged commit for a release, built offline for pull requests — each read as GitHub would."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _jobs(name: str) -> dict[str, Any]:
    jobs: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())["jobs"]
    return jobs


def _runs(job: dict[str, Any]) -> list[str]:
    return [" ".join(step.get("run", "").split()) for step in job["steps"]]


def _index(runs: list[str], pattern: str) -> int:
    return next(i for i, run in enumerate(runs) if re.search(pattern, run))


def _pull_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if "harden db pull" in s.get("run", "")]
    return step


def test_the_scheduled_scan_pulls_once_a_day_merges_and_every_image_scans_that_db() -> None:
    jobs = _jobs("scan.yml")
    db, scan = jobs["db"], jobs["scan"]
    runs = _runs(db)
    pull, merge = _index(runs, r"harden db pull\b"), _index(runs, r"harden db build advisories/ --base-db")
    assert pull < merge
    assert _pull_step(db)["env"]["HARDENING_DB_REPOSITORIES"] == "${{ vars.TRIVY_DB_REPOSITORIES }}"
    (cache,) = [s for s in db["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["key"] == "${{ steps.key.outputs.key }}"
    assert "date -u +%Y-%m-%d" in runs[_index(runs, r"key=trivy-db-")]
    for step in (db["steps"][pull], db["steps"][merge]):
        assert step["if"] == "steps.db-cache.outputs.cache-hit != 'true'"
    # Every image's job restores exactly that DB, or fails: never a scan against no DB or another.
    assert "db" in scan["needs"]
    (restore,) = [s for s in scan["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert restore["with"] == {
        "path": ".trivy-cache/db",
        "key": "${{ needs.db.outputs.key }}",
        "fail-on-cache-miss": True,
    }
    assert not any("harden db build" in run or "harden db pull" in run for run in _runs(scan))
    # The gate's max_db_age applies: nothing lifts it.
    assert not any("--max-db-age" in run for job in jobs.values() for run in _runs(job))


def test_a_release_pulls_and_merges_fresh_before_the_gate() -> None:
    (job,) = _jobs("release.yml").values()
    runs = _runs(job)
    pull, merge = _index(runs, r"harden db pull\b"), _index(runs, r"harden db build advisories/ --base-db")
    assert pull < merge < _index(runs, r"harden run\b") < _index(runs, r"harden release\b")
    assert _pull_step(job)["env"]["HARDENING_DB_REPOSITORIES"] == "${{ vars.TRIVY_DB_REPOSITORIES }}"
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in job["steps"])
    assert not any("--max-db-age" in run for run in runs)


def test_pull_requests_scan_offline_and_say_the_limit_is_lifted() -> None:
    runs = [run for job in _jobs("ci.yml").values() for run in _runs(job)]
    assert not any("harden db pull" in run for run in runs)
    assert any(re.search(r"harden db build advisories/ --cache-dir", run) for run in runs)
    assert any(re.search(r"harden run .*--max-db-age none", run) for run in runs)


def test_the_default_gate_allows_two_days() -> None:
    from hardening.gate import load_gate

    gate = load_gate(REPO_ROOT / "policies" / "gate.yaml", REPO_ROOT)
    assert gate.age_limit().describe.startswith("max_db_age 2d, policies/gate.yaml:")
