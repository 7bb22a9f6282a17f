"""Naive against hardened images, scanned with real vulnerability data: what hardening removes.

    .venv/bin/python bench/gosu_claim.py [--keep-images]

Both pairs start from the project's base image and are scanned by the pinned Trivy, offline,
against one DB built here from the repository's full OSV exports (advisories/upstream/Go.zip and
PyPI.zip; no Debian records, so the figures are the language packages alone):

* postgres: a naive image the way the official postgres image is made — Debian's PostgreSQL 15
  and gosu as a downloaded binary in /usr/local/bin that no package manager owns (here Debian
  bookworm's gosu, extracted from its .deb) — against postgres-secure (su-exec built from the
  repository's source, no gosu);
* python: Debian's CPython with a venv made by `python3 -m venv` (Debian's bootstrap pip 23.0.1
  and setuptools 66.1.1) against python-secure (pip and setuptools above the floors).

Prints a table of advisories per image, the packages they are reported against, and how many of
the naive image's advisories the hardened image no longer has. Reports only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hardening.build.wheelhouse import prepare_wheelhouse
from hardening.db.build import build_db
from hardening.scan.trivy import OFFLINE_FLAGS

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "hardening/debian:bookworm"
UPSTREAM = REPO_ROOT / "advisories" / "upstream"
TRIVY = Path(sys.executable).parent / "trivy"
TIMEOUT = 1800

NAIVE_POSTGRES = f"""\
FROM {BASE_IMAGE} AS fetch
WORKDIR /fetch
RUN apt-get update -q && apt-get download gosu && dpkg-deb -x gosu_*.deb /fetch/root
FROM {BASE_IMAGE}
RUN apt-get update -q && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=fetch /fetch/root/usr/sbin/gosu /usr/local/bin/gosu
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
CMD ["postgres"]
"""

NAIVE_PYTHON = f"""\
FROM {BASE_IMAGE}
RUN apt-get update -q && apt-get install -y --no-install-recommends python3 python3-venv \\
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
CMD ["python3"]
"""


@dataclass(frozen=True)
class Pair:
    name: str
    what: str
    naive_tag: str
    naive_dockerfile: str
    hardened_tag: str
    hardened_context: Path


PAIRS = (
    Pair(
        "postgres",
        "gosu (Debian bookworm's binary in /usr/local/bin) → su-exec",
        "hardening/bench-postgres-naive:gosu",
        NAIVE_POSTGRES,
        "hardening/postgres-secure:bench",
        REPO_ROOT / "dockerfiles" / "postgres-secure",
    ),
    Pair(
        "python",
        "bootstrap pip 23.0.1 / setuptools 66.1.1 in a venv → above the floors",
        "hardening/bench-python-naive:venv",
        NAIVE_PYTHON,
        "hardening/python-secure:bench",
        REPO_ROOT / "dockerfiles" / "python-secure",
    ),
)


def docker(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=TIMEOUT
    )
    if result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def scan(tag: str, cache: Path, scratch: Path) -> set[tuple[str, str, str, str]]:
    """(vulnerability id, package, installed version, severity) Trivy reports for ``tag``."""
    archive = scratch / "image.tar"
    docker("save", "--output", str(archive), tag)
    result = subprocess.run(
        [str(TRIVY), "image", "--input", str(archive), "--cache-dir", str(cache), *OFFLINE_FLAGS,
         "--scanners", "vuln", "--format", "json"],
        capture_output=True, text=True, check=False, timeout=TIMEOUT,
    )  # fmt: skip
    archive.unlink()
    if result.returncode != 0:
        raise SystemExit(f"trivy failed on {tag}:\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    return {
        (v["VulnerabilityID"], v["PkgName"], v["InstalledVersion"], v["Severity"])
        for r in report.get("Results", [])
        for v in r.get("Vulnerabilities") or []
    }


def packages(found: set[tuple[str, str, str, str]]) -> str:
    counts = Counter(f"{name} {version}" for _, name, version, _ in found)
    return ", ".join(f"{package}: {count}" for package, count in sorted(counts.items())) or "—"


def severities(found: set[tuple[str, str, str, str]]) -> str:
    counts = Counter(severity for *_, severity in found)
    order = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")
    return " / ".join(f"{counts.get(s, 0)}" for s in order)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-images", action="store_true", help="keep the naive images for a re-run")
    options = parser.parse_args()
    docker("image", "inspect", BASE_IMAGE)
    prepare_wheelhouse(REPO_ROOT / "dockerfiles" / "python-secure" / "requirements-3.11.lock",
                       REPO_ROOT / "dockerfiles" / "python-secure" / "wheels" / "3.11")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="gosu-claim-") as scratch_name:
        scratch = Path(scratch_name)
        info = build_db(
            [UPSTREAM / "Go.zip", UPSTREAM / "PyPI.zip"], scratch / "cache", now=datetime.now(UTC)
        )
        print(
            f"DB: {info.advisories} records from the Go and PyPA exports, data of {info.updated_at:%Y-%m-%d}"
        )
        for pair in PAIRS:
            with tempfile.TemporaryDirectory() as empty:
                docker(
                    "build",
                    "--quiet",
                    "--tag",
                    pair.naive_tag,
                    "--file",
                    "-",
                    empty,
                    stdin=pair.naive_dockerfile,
                )
            docker("build", "--quiet", "--tag", pair.hardened_tag, str(pair.hardened_context))
            naive = scan(pair.naive_tag, scratch / "cache", scratch)
            hardened = scan(pair.hardened_tag, scratch / "cache", scratch)
            fixed = {v[:2] for v in naive} - {v[:2] for v in hardened}
            rows.append((pair, naive, hardened, fixed))
            if not options.keep_images:
                docker("image", "rm", pair.naive_tag)
    print()
    print("| image | change | naive: advisories (C/H/M/L/U) | naive: reported against | "
          "hardened: advisories | fixed by hardening |")  # fmt: skip
    print("|---|---|---:|---|---:|---:|")
    for pair, naive, hardened, fixed in rows:
        print(
            f"| {pair.name} | {pair.what} | {len(naive)} ({severities(naive)}) | {packages(naive)} | "
            f"{len(hardened)} | {len(fixed)} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
