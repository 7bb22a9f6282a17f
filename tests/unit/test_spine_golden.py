"""The same inputs give the same SARIF, JSON and Markdown: `harden run` and `harden report`, pinned.

A deterministic fake engine and scanner drive the real orchestration (render check, base check,
build record, inspection of a synthetic image tar, every policy check, gate with a suppression,
report writers, history). The goldens were captured from the orchestration as it was before the
run plan and the stage registries existed; they pin that the restructuring changed no byte.
Set UPDATE_GOLDEN=1 to rewrite them after a deliberate output change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hardening.catalog import load_catalog
from hardening.report.registry import ReportFormat
from hardening.run.orchestrator import RunContext, execute
from hardening.run.plan import plan_run
from hardening.run.report import plan_report, report_scan
from hardening.run.store import new_run_dir
from hardening.scan.interface import ScanOptions, ScanTarget
from hardening.scan.service import write_scan_record
from tests.unit.fakerun import (
    GOLDEN,
    IMAGE_ID,
    IMAGE_TAR,
    TODAY,
    TOOL,
    UPDATE_GOLDEN,
    FakeEngine,
    FakeScanner,
    golden_repo_copy,
)


@pytest.fixture
def golden_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return golden_repo_copy(tmp_path, monkeypatch)


# How each JSON output is written, so that a document with the new tool fields taken out
# can be compared byte for byte with its golden.
SORTED = {"sort_keys": True, "ensure_ascii": True}
IN_ORDER = {"sort_keys": False, "ensure_ascii": False}


def _without_tool_fields(doc: Any, tools: set[str]) -> Any:
    """The document as it was before results carried their tool; the tool fields are checked."""
    if isinstance(doc, dict):
        if "tool" in doc:
            tool = doc.pop("tool")
            tools.add(tool if isinstance(tool, str) else json.dumps(tool, sort_keys=True))
        return {key: _without_tool_fields(value, tools) for key, value in doc.items()}
    if isinstance(doc, list):
        return [_without_tool_fields(item, tools) for item in doc]
    return doc


def _compare(
    actual: Path,
    golden: Path,
    *,
    style: dict[str, bool] | None = None,
    tools: set[str] | None = None,
    mask: tuple[str, ...] = (),
) -> None:
    """Byte for byte; for JSON (``style``) after removing ``mask`` keys and the tool fields."""
    text = actual.read_text(encoding="utf-8")
    if style is not None:
        doc = json.loads(text)
        for key in mask:
            doc.pop(key, None)
        found: set[str] = set()
        doc = _without_tool_fields(doc, found)
        assert found == (tools or set()), f"{actual}: tool fields {found}"
        text = json.dumps(doc, indent=2, **style) + "\n"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing; run with UPDATE_GOLDEN=1 once"
    assert text == golden.read_text(encoding="utf-8"), f"{actual} differs from {golden}"


def _history_line(path: Path) -> dict[str, Any]:
    (line,) = path.read_text(encoding="utf-8").splitlines()
    record: dict[str, Any] = json.loads(line)
    record.pop("date")
    assert record.pop("tool") == {"name": "Trivy", "version": "0.76.0"}
    return record


TRIVY_TOOL = json.dumps(TOOL.to_json(), sort_keys=True)


def test_run_outputs_match_the_goldens(golden_repo: Path) -> None:
    catalog = load_catalog(golden_repo / "hardening.toml")
    engine: Any = FakeEngine(catalog)
    options = ScanOptions(cache_dir=golden_repo / "trivy-cache", timeout=60)
    plan = plan_run(catalog, (), scanners=[FakeScanner()], options=options, record_history=True, today=TODAY)
    run = new_run_dir(catalog.output_dir)
    outcome = execute(RunContext(plan, engine, run))
    assert not outcome.passed  # gosu, a setuid binary, a token, a fixable high CVE
    image_dir = run.path / "app"
    expected = GOLDEN / "run"
    _compare(image_dir / "results.sarif", expected / "results.sarif")
    _compare(image_dir / "results.full.sarif", expected / "results.full.sarif")
    _compare(
        image_dir / "findings.json", expected / "findings.json", style=IN_ORDER, tools={"Trivy", "hardening"}
    )
    _compare(image_dir / "gate.json", expected / "gate.json", style=SORTED)
    _compare(image_dir / "check.json", expected / "check.json", style=SORTED, tools={"hardening"})
    _compare(
        image_dir / "scan.json",
        expected / "scan.json",
        style=SORTED,
        tools={"Trivy", TRIVY_TOOL},
        mask=("scanned_at",),
    )
    _compare(run.path / "summary.md", expected / "summary.md")
    history = _history_line(catalog.output_dir / "history" / "app.jsonl")
    if UPDATE_GOLDEN:
        (expected / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    assert history == json.loads((expected / "history.json").read_text())
    assert "golden/app:1.0" not in engine.tags  # a failed gate moves no release tag
    assert not (image_dir / "promotion.json").exists()


def test_report_outputs_match_the_goldens(golden_repo: Path, tmp_path: Path) -> None:
    catalog = load_catalog(golden_repo / "hardening.toml")
    scan_dir = tmp_path / "scan"
    scan_dir.mkdir()
    # What `harden scan --out` writes today, and a check record from before records named tools.
    target = ScanTarget("app", "golden/app:candidate", IMAGE_ID, tmp_path / "unused.tar")
    target.tar_path.write_bytes(IMAGE_TAR)
    options = ScanOptions(cache_dir=None, timeout=60)
    result = FakeScanner().scan(target, options)
    write_scan_record(scan_dir / "scan.json", "app", target.ref, IMAGE_ID, result, options, scanner="trivy")
    shutil.copy(GOLDEN / "run" / "check.json", scan_dir / "check.json")
    out = tmp_path / "out"
    outputs = {
        ReportFormat.SARIF: out / "app.sarif",
        ReportFormat.SARIF_FULL: out / "app.full.sarif",
        ReportFormat.MARKDOWN: out / "summary.md",
        ReportFormat.JSON: out / "app.json",
    }
    plan = plan_report(catalog, "app", scan_dir, outputs=outputs, history_dir=out / "history", today=TODAY)
    outcome = report_scan(plan)
    assert not outcome.decision.passed
    expected = GOLDEN / "report"
    _compare(out / "app.sarif", expected / "app.sarif")
    _compare(out / "app.full.sarif", expected / "app.full.sarif")
    _compare(out / "app.json", expected / "app.json", style=IN_ORDER, tools={"Trivy", "hardening"})
    _compare(out / "summary.md", expected / "summary.md")
    history = _history_line(out / "history" / "app.jsonl")
    if UPDATE_GOLDEN:
        (expected / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")
    assert history == json.loads((expected / "history.json").read_text())
