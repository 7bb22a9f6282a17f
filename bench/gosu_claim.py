"""Naive against hardened images, through `harden` itself, scanned with real vulnerability data.

    .venv/bin/python bench/gosu_claim.py [--readme] [--keep]

Both pairs start from the project's base image and are scanned by the pinned Trivy, offline,
against one DB built here from the repository's full OSV exports (advisories/upstream/Go.zip and
PyPI.zip; no Debian records, so the figures are the language packages alone):

* postgres: a naive image the way the official postgres image is made — Debian's PostgreSQL 15
  and gosu as a downloaded binary in /usr/local/bin that no package manager owns (here Debian
  bookworm's gosu, extracted from its .deb) — against postgres-secure (su-exec built from the
  repository's source, no gosu);
* python: Debian's CPython with a venv made by `python3 -m venv` (Debian's bootstrap pip 23.0.1
  and setuptools 66.1.1) against python-secure (pip and setuptools above the floors).

The way a user would: a throwaway repository holds the project's dockerfiles/ and policies/ and a
catalog of the four images (under private repository names, so no release tag of the shared
engine moves); `harden run` of the naive pair, `harden run` of the hardened pair, then
`harden diff NAIVE HARDENED --pair postgres-naive=postgres-secure --pair python-naive=python-secure`.
The diff's "fixed" count is the answer to "how many CVEs does replacing gosu with su-exec fix".

Writes bench/results/naive-vs-hardened.json (the measurement) and prints the README's table;
--readme rewrites that table in README.md. tests/unit/test_bench_tables.py holds the README to
the recorded measurement. Reports only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORD = REPO_ROOT / "bench" / "results" / "naive-vs-hardened.json"
README = REPO_ROOT / "README.md"
README_START, README_END = "<!-- naive-vs-hardened:start -->", "<!-- naive-vs-hardened:end -->"
UPSTREAM = REPO_ROOT / "advisories" / "upstream"
HARDEN = [sys.executable, "-m", "hardening"]
TIMEOUT = 3600
SEVERITIES = ("critical", "high", "medium", "low", "unknown")

NAIVE_POSTGRES = """\
FROM {{ base_image }} AS fetch
WORKDIR /fetch
RUN apt-get update -q && apt-get download gosu && dpkg-deb -x gosu_*.deb /fetch/root
FROM {{ base_image }}
RUN apt-get update -q && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=fetch /fetch/root/usr/sbin/gosu /usr/local/bin/gosu
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
CMD ["postgres"]
"""

NAIVE_PYTHON = """\
FROM {{ base_image }}
RUN apt-get update -q && apt-get install -y --no-install-recommends python3 python3-venv \\
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
CMD ["python3"]
"""

# naive image, its template, the hardened image it is compared with, what changes between them
PAIRS = (
    ("postgres-naive", NAIVE_POSTGRES, "postgres-secure", "gosu (Debian bookworm's) → su-exec"),
    (
        "python-naive",
        NAIVE_PYTHON,
        "python-secure",
        "bootstrap pip 23.0.1 / setuptools 66.1.1 → above the floors",
    ),
)


def harden(*args: str, ok: tuple[int, ...] = (0,), env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(
        [*HARDEN, *args], capture_output=True, text=True, check=False, timeout=TIMEOUT, env=env
    )
    if result.returncode not in ok:
        raise SystemExit(
            f"harden {' '.join(args[:3])} … exited {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return result.stdout


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def make_repository(root: Path, prefix: str) -> Path:
    """The project's dockerfiles/ and policies/, and a catalog of the naive and hardened images."""
    from hardening.catalog import load_catalog

    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    shutil.copytree(REPO_ROOT / "policies", root / "policies")
    lines = ['[project]\noutput_dir = "scans"\ndefault_base = "bookworm"\n']
    base = catalog.bases["bookworm"]
    policies = [p.relative_to(REPO_ROOT).as_posix() for p in base.policies]
    lines.append(
        f"[base.bookworm]\nrepository = {_toml(base.repository)}\ntag = {_toml(base.tag)}\n"
        f"suite = {_toml(base.suite)}\npolicies = {_toml(policies)}\n"
    )
    hardened = {spec.name: spec for spec in catalog.images}
    for naive, template, secure, _ in PAIRS:
        spec = hardened[secure]
        shutil.copytree(REPO_ROOT / spec.context_dir, root / spec.context_dir)
        naive_template = root / "naive" / naive / "Dockerfile.j2"
        naive_template.parent.mkdir(parents=True)
        naive_template.write_text(template)
        policy_files = _toml([p.as_posix() for p in spec.policies])
        lines.append(
            f'[[image]]\nname = "{naive}"\ntemplate = "naive/{naive}/Dockerfile.j2"\n'
            f'repository = "{prefix}/{naive}"\ntags = ["naive"]\npolicies = {policy_files}\n'
        )
        wheelhouse = f"wheelhouse = {_toml(spec.wheelhouse.as_posix())}\n" if spec.wheelhouse else ""
        variables = "".join(f"{key} = {_toml(value)}\n" for key, value in sorted(spec.variables.items()))
        lines.append(
            f'[[image]]\nname = "{secure}"\ntemplate = {_toml(spec.template.as_posix())}\n'
            f'repository = "{prefix}/{secure}"\ntags = ["hardened"]\npolicies = {policy_files}\n'
            f"{wheelhouse}\n[image.variables]\n{variables}"
        )
    (root / "hardening.toml").write_text("\n".join(lines))
    return root / "hardening.toml"


def run_dir(stdout: str) -> Path:
    found = re.search(r"^reports: (.+)$", stdout, re.MULTILINE)
    if not found:
        raise SystemExit(f"harden run named no run directory:\n{stdout[-3000:]}")
    return Path(found.group(1))


def vulnerabilities(run: Path, image: str) -> list[dict[str, Any]]:
    """The image's scanner findings, as its findings.json records them (suppressed ones too)."""
    doc = json.loads((run / image / "findings.json").read_text())
    return [f for f in doc["findings"] if f["origin"] == "scanner"]


def by_severity(findings: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(f["severity"] for f in findings)
    return {severity: counts.get(severity, 0) for severity in SEVERITIES}


def reported_against(findings: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(f"{f.get('package')} {f.get('installed_version')}" for f in findings)
    return dict(sorted(counts.items()))


def measure(work: Path, cache: Path) -> dict[str, Any]:
    prefix = f"hardening-bench-{os.getpid()}"
    catalog = make_repository(work / "repo", prefix)
    harden("--catalog", str(catalog), "render")
    common = ("--cache-dir", str(cache), "--max-db-age", "none")  # the exports are months old
    # A failing gate (exit 1) is a result: the naive images fail it by design.
    naive_run = run_dir(harden("--catalog", str(catalog), "run", *(n for n, *_ in PAIRS), *common, ok=(0, 1)))
    secure_run = run_dir(
        harden("--catalog", str(catalog), "run", *(s for _, _, s, _ in PAIRS), *common, ok=(0, 1))
    )
    pairs = [arg for naive, _, secure, _ in PAIRS for arg in ("--pair", f"{naive}={secure}")]
    diff_file = work / "diff.json"
    harden("diff", str(naive_run), str(secure_run), *pairs, "--json", str(diff_file))
    diff = json.loads(diff_file.read_text())
    compared = {(c["old"], c["new"]): c for c in diff["images"]["compared"]}
    scan = json.loads((secure_run / PAIRS[0][2] / "scan.json").read_text())
    rows = []
    for naive, _, secure, change in PAIRS:
        entry = compared[(naive, secure)]
        before, after = vulnerabilities(naive_run, naive), vulnerabilities(secure_run, secure)
        rows.append(
            {
                "naive": naive,
                "hardened": secure,
                "change": change,
                "naive_vulnerabilities": by_severity(before),
                "naive_reported_against": reported_against(before),
                "hardened_vulnerabilities": by_severity(after),
                "fixed": entry["counts"]["fixed"]["total"],
                "fixed_vulnerabilities": entry["by_origin"]["fixed"]["scanner"],
                "fixed_policy_findings": entry["by_origin"]["fixed"]["policy"],
                "new": entry["counts"]["new"]["total"],
                "unchanged": entry["counts"]["unchanged"]["total"],
            }
        )
    for naive, _, secure, _ in PAIRS:
        for name, tag in ((naive, "naive"), (secure, "hardened")):
            refs = [f"{prefix}/{name}:{tag}", f"{prefix}/{name}:candidate"]
            subprocess.run(["docker", "image", "rm", *refs], capture_output=True, check=False, timeout=300)
    db = scan["tool"]["db"]
    return {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
        "trivy": scan["tool"]["version"],
        "db": {
            "inputs": db["inputs"],
            "updated_at": db["updated_at"],
            "age_days_at_scan": db["age_seconds"] // 86400,
        },
        "pairs": rows,
    }


def render_table(record: Mapping[str, Any]) -> str:
    """The README's table, from the recorded measurement alone."""
    db = record["db"]
    inputs = "; ".join(db["inputs"])
    lines = [
        f"Measured on {record['measured']} by `bench/gosu_claim.py` with Trivy {record['trivy']}, offline, "
        f"against a DB built from the vendored exports ({inputs}; data of {db['updated_at'][:10]}, "
        f"{db['age_days_at_scan']} days old when scanned). Vulnerabilities are counted by severity "
        '(critical / high / medium / low / unknown); "fixed" is what `harden diff` reports for the pair.',
        "",
        "| naive image → hardened image | change | naive: vulnerabilities | reported against | "
        "hardened: vulnerabilities | fixed: vulnerabilities | fixed: policy findings | new |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in record["pairs"]:
        naive, hardened = row["naive_vulnerabilities"], row["hardened_vulnerabilities"]
        against = ", ".join(f"{package}: {count}" for package, count in row["naive_reported_against"].items())
        lines.append(
            f"| `{row['naive']}` → `{row['hardened']}` | {row['change']} | "
            f"{sum(naive.values())} ({' / '.join(str(naive[s]) for s in SEVERITIES)}) | {against or '—'} | "
            f"{sum(hardened.values())} | **{row['fixed_vulnerabilities']}** | "
            f"{row['fixed_policy_findings']} | {row['new']} |"
        )
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    return text[start:end].strip("\n") + "\n"


def write_readme(record: Mapping[str, Any]) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(README_START) + len(README_START), text.index(README_END)
    README.write_text(text[:start] + "\n" + render_table(record) + text[end:], encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="rewrite the table in README.md")
    parser.add_argument("--keep", type=Path, help="keep the work directory (runs, diff) here")
    options = parser.parse_args()
    from hardening.db.build import build_db

    # The DB names its inputs as given: relative to the repository, as the table shows them.
    os.chdir(REPO_ROOT)
    exports = [UPSTREAM.relative_to(REPO_ROOT) / name for name in ("Go.zip", "PyPI.zip")]
    with tempfile.TemporaryDirectory(prefix="naive-vs-hardened-") as scratch_name:
        work = (options.keep or Path(scratch_name)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        info = build_db(exports, work / "cache")
        print(
            f"DB: {info.advisories} records from the Go and PyPA exports, data of {info.updated_at:%Y-%m-%d}"
        )
        record = measure(work, work / "cache")
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(render_table(record))
    if options.readme:
        write_readme(record)
        print(f"README.md: the table between {README_START} and {README_END} rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
