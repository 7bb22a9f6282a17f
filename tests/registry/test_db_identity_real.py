"""A DB pulled from a real registry names itself in every output of a real `harden run`.

A DB published to the suite's loopback registry stands in for the upstream one: `harden db pull`
fetches it and records the repository and manifest digest; `harden run` (real engine, real
Trivy) then writes them into the scan record, the SARIF run's properties, summary.md and the
history line. Merged with advisories/ (`harden db build --base-db`), the same outputs say it is
the upstream DB with the organisation's advisories on top, and name both.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hardening.db.build import build_db
from tests.conftest import REPO_ROOT
from tests.registry.server import RegistryServer
from tests.reliability.harness import GATE, Result, harden, make_repo

pytestmark = [pytest.mark.registry, pytest.mark.trivy, pytest.mark.docker]

# Today's date on a record of our own: the published DB is fresh, within the gate's 2 days.
UPSTREAM_RECORD = {
    "id": "GHSA-hrdn-tst0-0001",
    "aliases": ["CVE-2099-0001"],
    "summary": "a vulnerability published by the stand-in for the upstream DB",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "hardening-test-package"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}],
        }
    ],
}


@pytest.fixture
def published(tmp_path: Path, registry: RegistryServer) -> tuple[str, str]:
    """The stand-in upstream DB in the registry: its reference and manifest digest."""
    source = tmp_path / "upstream-advisories"
    source.mkdir()
    record = {**UPSTREAM_RECORD, "modified": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    (source / "GHSA-hrdn-tst0-0001.json").write_text(json.dumps(record))
    build_db([source], tmp_path / "upstream-build")
    ref = f"{registry.address}/hardening-test/trivy-db:2"
    pushed = harden(None, "db", "push", ref, "--cache-dir", str(tmp_path / "upstream-build"))
    assert pushed.code == 0, pushed.output
    found = re.search(r"@(sha256:[0-9a-f]{64})", pushed.stdout)
    assert found, pushed.stdout
    return ref, found.group(1)


@pytest.fixture
def repo(tmp_path: Path, base_image: str) -> Iterator[Path]:
    repository = f"hardening-test/db-identity-{uuid.uuid4().hex[:8]}"
    yield make_repo(tmp_path / "repo", gate=GATE + "max_db_age: 2d\n", repository=repository)
    for tag in ("candidate", "1"):
        subprocess.run(
            ["docker", "image", "rm", "--force", f"{repository}:{tag}"], capture_output=True, timeout=120
        )


def _run(repo: Path, cache: Path) -> tuple[Result, Path]:
    result = harden(repo, "run", "--cache-dir", str(cache), "--record-history", timeout=1200)
    assert result.code == 0, result.output
    found = re.search(r"^reports: (.+)$", result.stdout, re.MULTILINE)
    assert found, result.stdout
    return result, Path(found.group(1))


def _outputs(repo: Path, run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]:
    scan = json.loads((run_dir / "demo" / "scan.json").read_text())
    sarif = json.loads((run_dir / "demo" / "results.sarif").read_text())
    (trivy_run,) = [run for run in sarif["runs"] if run["tool"]["driver"]["name"] == "Trivy"]
    summary = (run_dir / "summary.md").read_text()
    history = json.loads((repo.parent / "scans" / "history" / "demo.jsonl").read_text().splitlines()[-1])
    return scan, trivy_run["properties"]["vulnerabilityDatabase"], summary, history


def test_a_pulled_db_and_a_merged_one_name_themselves_in_every_output(
    tmp_path: Path, repo: Path, published: tuple[str, str]
) -> None:
    ref, manifest = published
    pulled = tmp_path / "pulled"
    result = harden(None, "db", "pull", "--repository", ref, "--cache-dir", str(pulled), timeout=600)
    assert result.code == 0, result.output

    _, run_dir = _run(repo, pulled)
    scan, sarif, summary, history = _outputs(repo, run_dir)
    db = scan["tool"]["db"]
    assert (db["source"], db["repository"], db["manifest_digest"]) == ("pulled", ref, manifest)
    assert (scan["db_source"], scan["db_repository"], scan["db_manifest_digest"]) == ("pulled", ref, manifest)
    assert 0 <= db["age_seconds"] < 3600
    assert sarif == {
        "source": "pulled",
        "repository": ref,
        "manifestDigest": manifest,
        # What the stand-in was built from, as its metadata says: a site's own DB, pushed to its
        # mirror, says so when pulled.
        "inputs": [f"1 OSV records from {tmp_path / 'upstream-advisories'} (newest {db['updated_at']})"],
        "updatedAt": db["updated_at"],
        "nextUpdate": db["next_update"],
        "ageSecondsAtScan": db["age_seconds"],
        "contentDigest": db["digest"],
    }
    assert f"the DB pulled from `{ref}@{manifest}`; data updated {db['updated_at']}, **" in summary
    assert "Age limit: max_db_age 2d, policies/gate.yaml:6" in summary
    assert history["db"]["source"] == "pulled" and history["db"]["manifest_digest"] == manifest
    assert history["db_date"] is not None

    # The organisation's advisories merged on top: still the upstream artifact, plus what was added.
    merged = tmp_path / "merged"
    built = harden(
        None,
        "db",
        "build",
        str(REPO_ROOT / "advisories"),
        "--base-db",
        str(pulled),
        "--cache-dir",
        str(merged),
    )
    assert built.code == 0, built.output
    _, run_dir = _run(repo, merged)
    scan, sarif, summary, history = _outputs(repo, run_dir)
    db = scan["tool"]["db"]
    assert (db["source"], db["repository"], db["manifest_digest"]) == ("merged", ref, manifest)
    assert db["inputs"][0].startswith(f"base DB {ref}@{manifest} (updated ")
    ours = len(list((REPO_ROOT / "advisories").rglob("*.json")))  # hand-written and derived (debian/)
    assert db["inputs"][1].startswith(f"{ours} OSV records from ")
    assert sarif["source"] == "merged" and sarif["inputs"] == db["inputs"]
    assert f"the upstream DB `{ref}@{manifest}` with the organisation's advisories merged into it" in summary
    assert f"  - {ours} OSV records from " in summary
    assert history["db"]["source"] == "merged" and history["db"]["inputs"] == db["inputs"]
