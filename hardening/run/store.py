"""The run-directory store: ``<output_dir>/runs/<UTC time>-<id>/<image>/<record>``.

Every command that writes a record (build, check, scan, run, release) writes it here, and every
command that reads an earlier record (scan and check read the latest build, release reads the
latest gate decision, baseline the latest findings) finds it through here. Nothing in this
module knows about stages, so any stage may import it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hardening.errors import Location, OutputError, ReportInputError, UsageError
from hardening.userfile import read_user_json

# The records of one image in a run directory.
BUILD_FILE = "build.json"
CHECK_FILE = "check.json"
SCAN_FILE = "scan.json"
PENDING_FILE = "pending.json"  # what the update sources found (hardening.pending.record)
SBOM_FILE = "sbom.cdx.json"
FINDINGS_FILE = "findings.json"
SARIF_FILE = "results.sarif"  # for GitHub code scanning: what the gate counts
SARIF_FULL_FILE = "results.full.sarif"  # every result, accepted ones marked
GATE_FILE = "gate.json"
PROMOTION_FILE = "promotion.json"
RELEASE_FILE = "release.json"
# One per run directory.
SUMMARY_FILE = "summary.md"
LATEST = "latest"


def scan_file(scanner: str, *, primary: bool) -> str:
    """The scan record of one scanner: ``scan.json`` for the first, ``scan.<name>.json`` after it."""
    return SCAN_FILE if primary else f"scan.{scanner}.json"


def sbom_file(scanner: str, *, primary: bool) -> str:
    return SBOM_FILE if primary else f"sbom.{scanner}.cdx.json"


def scan_records(directory: Path) -> list[Path]:
    """Every scan record in an image directory, the first scanner's first."""
    others = sorted(p for p in directory.glob("scan.*.json") if p.name != SCAN_FILE)
    return [directory / SCAN_FILE, *others]


@dataclass(frozen=True)
class RunDir:
    path: Path
    run_id: str

    def image_dir(self, image: str) -> Path:
        return self.path / image


@dataclass(frozen=True)
class BuildRecord:
    """The newest build of an image: where it was recorded and what was built."""

    run: RunDir
    image_id: str
    candidate_ref: str
    data: Mapping[str, object]


def runs_root(output_dir: Path) -> Path:
    return output_dir / "runs"


def latest_run(output_dir: Path) -> Path:
    """The ``latest`` link of the runs directory (it may not exist yet)."""
    return runs_root(output_dir) / LATEST


def new_run_dir(output_dir: Path, *, now: datetime | None = None) -> RunDir:
    moment = now or datetime.now(UTC)
    # Microseconds keep run ids in the order the runs started, so "latest" is really the latest.
    run_id = f"{moment.strftime('%Y%m%dT%H%M%S')}{moment.microsecond:06d}Z-{secrets.token_hex(2)}"
    root = runs_root(output_dir)
    path = root / run_id
    try:
        path.mkdir(parents=True)
        tmp_link = root / f".{LATEST}-{run_id}"
        tmp_link.symlink_to(run_id)
        tmp_link.replace(root / LATEST)
    except OSError as exc:
        raise OutputError(f"cannot create the run directory {path}: {exc}") from exc
    return RunDir(path, run_id)


def _runs_newest_first(output_dir: Path) -> list[Path]:
    root = runs_root(output_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True)


def latest_build(output_dir: Path, image: str) -> BuildRecord | None:
    """The newest readable build record of ``image`` among the run directories."""
    for run in _runs_newest_first(output_dir):
        record = run / image / BUILD_FILE
        if not record.is_file():
            continue
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # a record torn by a crash is skipped; an older intact one still counts
        if not isinstance(data, dict):
            continue
        image_id = data.get("image_id")
        ref = data.get("candidate_ref")
        if not isinstance(image_id, str) or not isinstance(ref, str) or not image_id or not ref:
            raise ReportInputError(
                "the build record has no image_id or candidate_ref",
                location=Location(record),
                hint=f"run `harden build {image}` again",
            )
        return BuildRecord(RunDir(run, run.name), image_id, ref, data)
    return None


def require_build(output_dir: Path, image: str) -> BuildRecord:
    """The newest build record of ``image``; no build at all is a usage error (exit 2)."""
    found = latest_build(output_dir, image)
    if found is None:
        raise UsageError(
            f"no build of {image}; run `harden build {image}` first",
            hint=f"build records are looked up in {runs_root(output_dir)}",
        )
    return found


@dataclass(frozen=True)
class DecisionRecord:
    """The newest gate decision of an image, with the id of the image it was about."""

    run: RunDir
    decision: Mapping[str, object]
    image_id: str

    @property
    def passed(self) -> bool:
        return self.decision.get("passed") is True


def latest_decision(output_dir: Path, image: str) -> DecisionRecord | None:
    """The newest run with both a gate decision and a build record for ``image``."""
    for run in _runs_newest_first(output_dir):
        gate_file = run / image / GATE_FILE
        build_file = run / image / BUILD_FILE
        if not gate_file.is_file() or not build_file.is_file():
            continue
        decision = read_user_json(gate_file, error=ReportInputError, what="the run record")
        build = read_user_json(build_file, error=ReportInputError, what="the run record")
        image_id = build.get("image_id") if isinstance(build, dict) else None
        if not isinstance(decision, dict) or not isinstance(image_id, str):
            raise ReportInputError("not a gate decision and build record", location=Location(gate_file))
        return DecisionRecord(RunDir(run, run.name), decision, image_id)
    return None
