"""`make bench` runs every benchmark script in bench/ (its helpers aside)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELPERS = {"inspect_facts_ours.py"}  # the timed child of inspect_facts.py, not a benchmark


def test_make_bench_runs_every_benchmark_script() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target, "the Makefile has no bench target"
    run = set(re.findall(r"bench/([\w.]+\.py)", target.group(1)))
    scripts = {path.name for path in (REPO / "bench").glob("*.py")} - HELPERS
    assert run == scripts


def test_the_bench_readme_quotes_the_target_as_it_is() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    start = makefile.index("# Speed and size figures")
    quoted = makefile[start : makefile.index("\n\n", start)]
    assert quoted in (REPO / "bench/README.md").read_text(encoding="utf-8")
