"""README's naive-vs-hardened table is what bench/gosu_claim.py measured, not typed in.

The bench records its measurement (bench/results/naive-vs-hardened.json) and renders the table
from it; here the README's block must equal that rendering, and the record must hold what the
table claims (counts that add up, the diff's fixed count no larger than what the naive image had).
"""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

from tests.conftest import REPO_ROOT


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gosu_claim", REPO_ROOT / "bench" / "gosu_claim.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_recorded_measurement() -> None:
    bench = _bench()
    record = json.loads(bench.RECORD.read_text(encoding="utf-8"))
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert bench.readme_block(readme) == bench.render_table(record), (
        "README.md's naive-vs-hardened table is not the recorded measurement; "
        "run `.venv/bin/python bench/gosu_claim.py --readme`"
    )


def test_the_record_adds_up() -> None:
    record = json.loads(_bench().RECORD.read_text(encoding="utf-8"))
    assert [(row["naive"], row["hardened"]) for row in record["pairs"]] == [
        ("postgres-naive", "postgres-secure"),
        ("python-naive", "python-secure"),
    ]
    for row in record["pairs"]:
        naive = sum(row["naive_vulnerabilities"].values())
        assert sum(row["naive_reported_against"].values()) == naive
        assert 0 < row["fixed_vulnerabilities"] <= naive
        assert row["fixed"] == row["fixed_vulnerabilities"] + row["fixed_policy_findings"]
