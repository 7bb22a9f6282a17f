from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from hardening.catalog import load_catalog
from hardening.errors import ReportInputError, UsageError
from hardening.release import check_registry
from hardening.run.store import latest_decision


def test_registry_must_be_host_and_port() -> None:
    assert check_registry("127.0.0.1:5000") == "127.0.0.1:5000"
    assert check_registry("registry.example") == "registry.example"
    for bad in ("http://x:5000", "x:5000/path", "x y", "-x:1", ""):
        with pytest.raises(UsageError):
            check_registry(bad)


def test_latest_decision_reads_the_newest_run(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(make_repo())
    runs = catalog.output_dir / "runs"
    for run_id, passed in (("20260101T000000000000Z-aaaa", False), ("20260102T000000000000Z-bbbb", True)):
        image_dir = runs / run_id / "demo"
        image_dir.mkdir(parents=True)
        (image_dir / "gate.json").write_text(json.dumps({"passed": passed}))
        (image_dir / "build.json").write_text(json.dumps({"image_id": f"sha256:{run_id[-4:]}"}))
    found = latest_decision(catalog.output_dir, "demo")
    assert found is not None
    assert found.run.run_id.endswith("bbbb") and found.passed and found.image_id == "sha256:bbbb"
    assert found.decision["passed"] is True
    assert latest_decision(catalog.output_dir, "other") is None


def test_corrupt_run_record_is_bad_input(make_repo: Callable[..., Path]) -> None:
    catalog = load_catalog(make_repo())
    image_dir = catalog.output_dir / "runs" / "20260101T000000000000Z-aaaa" / "demo"
    image_dir.mkdir(parents=True)
    (image_dir / "gate.json").write_bytes(b"\xff\xfe not json")
    (image_dir / "build.json").write_text("{}")
    with pytest.raises(ReportInputError, match="cannot read the run record"):
        latest_decision(catalog.output_dir, "demo")
