"""What the driver adds: a warm `harden run` against the bare docker build + save + trivy it wraps.

    .venv/bin/python bench/run_warm.py [--runs 5] [--cache-dir ~/.cache/hardening/trivy]

What is compared, on an unchanged tree where everything is cached (one untimed warm-up of each
side first):

* ours: `harden run --cache-dir DB` (every catalog image, temporary output dir): render check,
  build through the docker SDK (cached), one `docker save` per image, inspection and policy
  checks, scan (Trivy, or its cached result for the same image id and DB), SARIF/JSON/Markdown,
  gate and promotion;
* bare: for each image `DOCKER_BUILDKIT=0 /usr/bin/docker build -q -f
  dockerfiles/<img>/Dockerfile dockerfiles/<img>` (the same classic builder, so the same layer
  cache), `docker save` of the result (Trivy needs a tar) and `trivy image --input TAR --scanners
  vuln --list-all-pkgs --format json` offline with the same DB.

Why it is fair: same Dockerfiles, same engine and build cache, same DB, both warm; the bare side
is the least a shell script would run to get a scan of each image, and it gets Trivy's own layer
cache (a private copy of the DB's cache dir) as ours gets its scan cache.  Ours does more
(policies, reports, gate): that is the overhead being measured.  Runs go to a temporary
output dir, so scans/ (runs, baselines, history) is not touched; promotion re-tags the
images only when the gate passes, to the same image ids an unchanged tree rebuilds.
Goal: ours/bare <= 1.3.  Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hardening.scan.trivy import OFFLINE_FLAGS  # the same switches harden passes

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = REPO_ROOT / ".venv" / "bin"
HARDEN = BIN / "harden"
TRIVY = BIN / "trivy"
DOCKER = "/usr/bin/docker"
IMAGES = ("python-secure", "postgres-secure")
DEFAULT_CACHE = Path.home() / ".cache" / "hardening" / "trivy"
GOAL = 1.3
TIMEOUT = 3600.0


def run(argv: list[str], *, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=TIMEOUT, env=env, cwd=REPO_ROOT
    )
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])} … exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


def ours_command(cache_dir: Path, output_dir: Path) -> tuple[list[str], dict[str, str]]:
    """`harden run` writing to ``output_dir``: a global option (HARDENING_OUTPUT_DIR) in newer
    trees, an option of `run` in older ones; whichever this tree has."""
    argv = [str(HARDEN), "run", "--cache-dir", str(cache_dir)]
    if "--output-dir" in run([str(HARDEN), "run", "--help"]):
        argv += ["--output-dir", str(output_dir)]
    # The DB `make db` builds is dated by the vendored exports, older than the gate allows;
    # older trees ignore the variable.
    return argv, {**os.environ, "HARDENING_OUTPUT_DIR": str(output_dir), "HARDENING_MAX_DB_AGE": "none"}


def ours(command: tuple[list[str], dict[str, str]]) -> float:
    started = time.perf_counter()
    # A failing gate (exit 1) is a result, not a reason to stop measuring.
    run(command[0], env=command[1], ok=(0, 1))
    return time.perf_counter() - started


def bare(work: Path, trivy_cache: Path) -> float:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    started = time.perf_counter()
    for image in IMAGES:
        context = f"dockerfiles/{image}"
        image_id = run([DOCKER, "build", "-q", "-f", f"{context}/Dockerfile", context], env=env).strip()
        tar = work / f"{image}.tar"
        run([DOCKER, "save", "-o", str(tar), image_id])
        run(
            [
                str(TRIVY), "image", "--input", str(tar), "--scanners", "vuln", "--list-all-pkgs",
                "--format", "json", "--quiet", "--output", str(work / f"{image}.json"),
                *OFFLINE_FLAGS, "--cache-dir", str(trivy_cache),
            ]
        )  # fmt: skip
        tar.unlink()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="Trivy cache holding db/")
    args = parser.parse_args()

    ours_seconds: list[float] = []
    bare_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-warm-") as scratch:
        work = Path(scratch)
        output_dir = work / "scans"
        trivy_cache = work / "trivy-cache"
        shutil.copytree(args.cache_dir / "db", trivy_cache / "db")
        command = ours_command(args.cache_dir, output_dir)
        print(f"warm-up: ours {ours(command):.2f} s, bare {bare(work, trivy_cache):.2f} s")
        for index in range(1, args.runs + 1):
            # Alternate the order so that load from other users of the machine hits both sides.
            if index % 2:
                ours_seconds.append(ours(command))
                bare_seconds.append(bare(work, trivy_cache))
            else:
                bare_seconds.append(bare(work, trivy_cache))
                ours_seconds.append(ours(command))
            print(f"run {index}: ours {ours_seconds[-1]:.2f} s   bare {bare_seconds[-1]:.2f} s")

    ours_median, bare_median = statistics.median(ours_seconds), statistics.median(bare_seconds)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"median ours (harden run, warm): {ours_median:.2f} s")
    print(f"median bare (docker build + save + trivy, warm): {bare_median:.2f} s")
    print(f"ratio ours/peer = {ours_median / bare_median:.2f} (goal <= {GOAL})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
