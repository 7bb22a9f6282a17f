"""Image facts from a saved image: our inspector against `trivy image --input` on the same tar.

    .venv/bin/python bench/inspect.py [--runs 5] [--image python-secure] [--image postgres-secure]

What is compared, per catalog image (`docker save` of `<repository>:candidate`, built with
`harden build` when missing):

* ours: `hardening.inspect.cache.inspect_cached` (dpkg packages, Python distributions of
  every environment, passwd/group, setuid files, binaries with Go build info) plus the package
  floors of the image's policies evaluated on those facts.  Timed in this process (imports
  already paid) and as a fresh `python` process per run, which is the fair figure against
  Trivy because both then pay for process start-up; each both cold (no facts cache: every
  layer read, `inspect_image_tar`) and cached (a private temporary facts cache that the warm-up
  filled, so a run reads only the archive's headers, its config and the cached facts);
* the peer: `trivy image --input TAR --scanners vuln --list-all-pkgs --format json`, fully
  offline, with the DB `harden db build advisories` made (copied into a private cache dir, so
  Trivy's layer cache starts empty and nothing of the shared cache is written).

Why it is fair: the same tar, in the page cache for both after an untimed warm-up of each; both
list every package of every kind.  The work differs a little and the report says how: Trivy also
matches the packages against its DB, we also read users, setuid files and binaries.  Trivy
caches layer analyses in its cache dir, so after the warm-up its runs reuse them; a run with
`--cache-backend memory` (no reuse) is printed too.  The ratio uses ours cached in a fresh
process against Trivy with its layer cache: both then reuse what an earlier run of the same
image learnt, which is what `harden run` does with `~/.cache/hardening/facts` and Trivy with its
cache dir.  Ours cold against Trivy without its layer cache is printed beside it.
Goal: ours/Trivy <= 1.0.  Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hardening.scan.trivy import OFFLINE_FLAGS  # the same switches harden passes

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = REPO_ROOT / ".venv" / "bin"
PYTHON = BIN / "python"
HARDEN = BIN / "harden"
TRIVY = BIN / "trivy"
DEFAULT_DB_CACHE = Path.home() / ".cache" / "hardening" / "trivy"
GOAL = 1.0
TIMEOUT = 900.0


def ours(tar: Path, image: str, cache_dir: Path | None) -> dict[str, int]:
    """Facts and package floors of one saved image, as `harden run` computes them."""
    from hardening.catalog import load_catalog
    from hardening.inspect.cache import inspect_cached
    from hardening.policy.config import load_policies
    from hardening.policy.interface import ImageContext
    from hardening.policy.package_floors import PackageFloors
    from hardening.policy.service import binary_names

    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    (spec,) = catalog.select([image])
    policy = load_policies(catalog.root, spec.policies)
    facts = inspect_cached(
        tar,
        reference=f"{spec.repository}:candidate",
        binary_names=binary_names(policy),
        cache_dir=cache_dir,
    )
    config = policy.config_of(PackageFloors)
    floors = PackageFloors().check_image(ImageContext(image, config, facts)) if config else []
    return {
        "dpkg": len(facts.dpkg_packages),
        "python": sum(len(env.distributions) for env in facts.python_envs),
        "users": len(facts.passwd),
        "floors_below": len(floors),
    }


def trivy_counts(report: bytes) -> dict[str, int]:
    data = json.loads(report)
    counts: dict[str, int] = {}
    for result in data.get("Results") or ():
        key = str(result.get("Type") or result.get("Class"))
        counts[key] = counts.get(key, 0) + len(result.get("Packages") or ())
    return counts


def run(argv: list[str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, check=False, timeout=TIMEOUT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace")[-3000:]
        raise SystemExit(f"{' '.join(argv[:3])} … exited with {result.returncode}:\n{tail}")
    return elapsed, result.stdout


def ensure_candidate(image: str, reference: str) -> None:
    probe = subprocess.run(["docker", "image", "inspect", reference], capture_output=True, check=False)
    if probe.returncode != 0:
        print(f"{reference} missing: harden build {image}")
        subprocess.run([str(HARDEN), "build", image], check=True, cwd=REPO_ROOT, timeout=3600)


def median_of(label: str, runs: int, once: Callable[[], float]) -> float:
    seconds = []
    for index in range(1, runs + 1):
        seconds.append(once())
        print(f"  {label} run {index}: {seconds[-1]:.3f} s")
    return statistics.median(seconds)


@dataclass(frozen=True)
class Figures:
    cold_inproc: float
    cold_fresh: float
    cached_inproc: float
    cached_fresh: float
    trivy: float
    trivy_memory: float


def bench_image(image: str, work: Path, cache: Path, runs: int) -> Figures:
    from hardening.catalog import load_catalog

    (spec,) = load_catalog(REPO_ROOT / "hardening.toml").select([image])
    reference = f"{spec.repository}:candidate"
    ensure_candidate(image, reference)
    tar = work / f"{image}.tar"
    subprocess.run(["docker", "save", "-o", str(tar), reference], check=True, timeout=TIMEOUT)
    print(f"{image}: {reference}, {tar.stat().st_size / 1e6:.0f} MB tar")

    facts_cache = work / "facts-cache"
    child = [str(PYTHON), "-P", str(Path(__file__).resolve()), "--child", str(tar), image]
    child_cached = [*child, "--child-cache", str(facts_cache)]
    peer = [
        str(TRIVY), "image", "--input", str(tar), "--scanners", "vuln", "--list-all-pkgs",
        "--format", "json", "--quiet", *OFFLINE_FLAGS, "--cache-dir", str(cache),
    ]  # fmt: skip
    peer_memory = [*peer, "--cache-backend", "memory"]

    # Untimed warm-up: page cache for the tar and both programs, our facts cache and Trivy's
    # layer cache filled.
    ours(tar, image, facts_cache)
    _, child_out = run(child)
    _, cached_out = run(child_cached)
    _, peer_out = run(peer)
    if cached_out != child_out:
        raise SystemExit(f"cached facts differ from fresh ones: {cached_out!r} != {child_out!r}")
    print(f"  ours found {json.loads(child_out)}; Trivy found packages {trivy_counts(peer_out)}")

    def in_process(cache_dir: Path | None) -> Callable[[], float]:
        def once() -> float:
            started = time.perf_counter()
            ours(tar, image, cache_dir)
            return time.perf_counter() - started

        return once

    figures = Figures(
        cold_inproc=median_of("ours cold in-process   ", runs, in_process(None)),
        cold_fresh=median_of("ours cold new process  ", runs, lambda: run(child)[0]),
        cached_inproc=median_of("ours cached in-process ", runs, in_process(facts_cache)),
        cached_fresh=median_of("ours cached new process", runs, lambda: run(child_cached)[0]),
        trivy=median_of("trivy                  ", runs, lambda: run(peer)[0]),
        trivy_memory=median_of("trivy memory cache     ", runs, lambda: run(peer_memory)[0]),
    )
    print(
        f"  medians: ours cold {figures.cold_fresh:.3f} s new process / {figures.cold_inproc:.3f} s "
        f"in-process, ours cached {figures.cached_fresh:.3f} s / {figures.cached_inproc:.3f} s, "
        f"trivy {figures.trivy:.3f} s, trivy without layer cache {figures.trivy_memory:.3f} s"
    )
    tar.unlink()
    shutil.rmtree(facts_cache)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", action="append", help="catalog image (default: both)")
    parser.add_argument("--db-cache", type=Path, default=DEFAULT_DB_CACHE, help="holds db/trivy.db")
    parser.add_argument("--child", nargs=2, metavar=("TAR", "IMAGE"), help=argparse.SUPPRESS)
    parser.add_argument("--child-cache", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        # The fresh-process side: everything from interpreter start to the facts counted.
        print(json.dumps(ours(Path(args.child[0]), args.child[1], args.child_cache)))
        return 0

    images = args.image or ["python-secure", "postgres-secure"]
    figures: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as scratch:
        work = Path(scratch)
        cache = work / "trivy-cache"
        shutil.copytree(args.db_cache / "db", cache / "db")
        for image in images:
            figures[image] = bench_image(image, work, cache, args.runs)

    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    def total(name: str) -> float:
        return sum(float(getattr(f, name)) for f in figures.values())

    for image, f in figures.items():
        print(
            f"{image}: ours cached {f.cached_fresh:.3f} s (in-process {f.cached_inproc:.3f} s), "
            f"ours cold {f.cold_fresh:.3f} s (in-process {f.cold_inproc:.3f} s), trivy {f.trivy:.3f} s "
            f"(no layer cache {f.trivy_memory:.3f} s), ratio {f.cached_fresh / f.trivy:.2f}"
        )
    print(f"ratio ours cached in-process/peer = {total('cached_inproc') / total('trivy'):.2f}")
    print(
        "ratio ours cold (no facts cache)/peer without Trivy's layer cache = "
        f"{total('cold_fresh') / total('trivy_memory'):.2f}"
    )
    print(f"ratio ours cold (no facts cache)/peer = {total('cold_fresh') / total('trivy'):.2f}")
    print(
        f"ratio ours/peer = {total('cached_fresh') / total('trivy'):.2f} (goal <= {GOAL}; ours with its "
        "facts cache against Trivy with its layer cache, both warmed by one untimed run)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
