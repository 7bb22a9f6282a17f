"""The vulnerability DB at real size: build, merge, pull, cache hit — times, peak memory, sizes.

    .venv/bin/python bench/db_build_pull.py [--runs 3] [--scale 0]

* build: `harden db build` of both full OSV exports (advisories/upstream/Go.zip and PyPI.zip,
  about 7,000 records): wall time and peak memory of the process, DB size; the pinned Trivy then
  opens it (an offline rootfs scan of an empty directory);
* merge: `harden db build advisories --base-db` onto that DB (the streaming merge). With
  `--scale N` also onto a synthetic base N times the size (the exports' advisory buckets copied
  N times under other package names, written by the same streaming writer), to show how time and
  memory grow towards the ~700 MB of the upstream DB;
* pull: a real docker-registry on a loopback port serves the built DB; time from `harden db
  pull` into an empty cache to a usable DB, against Trivy's own downloader (`trivy image
  --download-db-only --db-repository`) as the peer, and the cost of a pull that is a cache hit
  (a manifest request and a digest comparison).

Each figure is taken in a fresh process (peak memory from wait4's rusage); medians of --runs.
Reports only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = REPO_ROOT / "advisories" / "upstream"
VENV_BIN = Path(sys.executable).parent
HARDEN = [sys.executable, "-m", "hardening"]
TRIVY = VENV_BIN / "trivy"
REGISTRY = Path("/usr/bin/docker-registry")
OFFLINE = [
    "--skip-db-update", "--skip-java-db-update", "--skip-check-update", "--skip-version-check",
    "--disable-telemetry", "--offline-scan",
]  # fmt: skip


def measured(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one fresh process; fails loudly if it fails."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} … exited {process.returncode}:\n{output.decode()[-3000:]}")
    return elapsed, usage.ru_maxrss * 1024


def report(label: str, runs: list[tuple[float, int]], extra: str = "") -> float:
    times = [t for t, _ in runs]
    peak = max(m for _, m in runs)
    print(
        f"{label:44} " + " ".join(f"{t:6.2f}" for t in times)
        + f"  median {statistics.median(times):6.2f} s  peak {peak / 2**20:6.1f} MiB {extra}"
    )  # fmt: skip
    return statistics.median(times)


def size_of(cache: Path) -> str:
    return f"{(cache / 'db' / 'trivy.db').stat().st_size / 1e6:.1f} MB"


def scaled_base(source: Path, target: Path, scale: int) -> None:
    """A base DB ``scale`` times the exports' DB (every bucket's keys copied under suffixed names),
    streamed, never held in memory."""
    code = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO_ROOT)!r})
from hardening.db import bbolt
from hardening.db.bboltread import BoltFile

def copies(view, scale):
    items = list(view)  # package buckets of one advisory bucket: names only, values lazy
    for copy in range(scale):
        for key, value in items:
            yield (key + b"~" + str(copy).zfill(4).encode(), value)

def tree(root, scale):
    for key, value in root:
        if key == b"data-source":
            yield key, value
        else:
            yield key, ((k, v) for k, v in sorted(copies(value, scale)))

with BoltFile(Path({str(source)!r})) as bolt:
    bbolt.write(Path({str(target)!r}), tree(bolt.root, {scale}))
"""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=7200)
    shutil.copy(source.parent / "metadata.json", target.parent / "metadata.json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def registry(workdir: Path) -> Iterator[str]:
    port = free_port()
    config = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (workdir / "config.yml").write_text(json.dumps(config))
    process = subprocess.Popen(
        [str(REGISTRY), "serve", str(workdir / "config.yml")], stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def pull_runs(ref: str, scratch: Path, label: str, runs: int) -> None:
    """Ours and Trivy's downloader into empty caches, then our cache hit."""
    ours: list[tuple[float, int]] = []
    peer: list[tuple[float, int]] = []
    for run in range(runs):
        ours.append(
            measured([*HARDEN, "db", "pull", "--repository", ref, "--cache-dir", str(scratch / f"p{run}")])
        )
        peer.append(measured([str(TRIVY), "image", "--download-db-only", "--db-repository", ref,
                              "--cache-dir", str(scratch / f"t{run}"), "--skip-java-db-update",
                              "--disable-telemetry"]))  # fmt: skip
        shutil.rmtree(scratch / f"t{run}")
        if run:
            shutil.rmtree(scratch / f"p{run}")
    ours_median = report(f"pull ({label}): empty cache → usable DB (harden)", ours)
    peer_median = report(f"pull ({label}): empty cache → usable DB (trivy, peer)", peer)
    print(f"ratio ours/peer = {ours_median / peer_median:.2f}")
    hits = [
        measured([*HARDEN, "db", "pull", "--repository", ref, "--cache-dir", str(scratch / "p0")])
        for _ in range(runs)
    ]
    report(f"pull ({label}): cache hit (manifest + digest check)", hits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=0, help="also merge onto a base this many times larger")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="db-bench-") as scratch_name:
        scratch = Path(scratch_name)
        exports = [str(UPSTREAM / "Go.zip"), str(UPSTREAM / "PyPI.zip")]
        cache = scratch / "exports"
        build = [
            measured([*HARDEN, "db", "build", *exports, "--cache-dir", str(cache)])
            for _ in range(options.runs)
        ]
        report("build: both exports", build, f"→ {size_of(cache)}")
        empty = scratch / "empty-root"
        empty.mkdir()
        opened = [measured([str(TRIVY), "rootfs", "--cache-dir", str(cache), *OFFLINE, str(empty)])]
        report("trivy opens it (offline rootfs scan)", opened)

        merged = scratch / "merged"
        merge = [
            measured([*HARDEN, "db", "build", str(REPO_ROOT / "advisories"), "--base-db", str(cache),
                      "--cache-dir", str(merged)])
            for _ in range(options.runs)
        ]  # fmt: skip
        report("merge: advisories/ onto that DB", merge, f"→ {size_of(merged)}")
        if options.scale:
            big = scratch / "big"
            started = time.monotonic()
            scaled_base(cache / "db" / "trivy.db", big / "db" / "trivy.db", options.scale)
            took = time.monotonic() - started
            print(f"synthetic base x{options.scale}: {size_of(big)}, written in {took:.1f} s")
            big_merge = [
                measured([*HARDEN, "db", "build", str(REPO_ROOT / "advisories"), "--base-db", str(big),
                          "--cache-dir", str(scratch / "big-merged")])
                for _ in range(max(1, options.runs // 2))
            ]  # fmt: skip
            report(
                f"merge: advisories/ onto the x{options.scale} base",
                big_merge,
                f"→ {size_of(scratch / 'big-merged')}",
            )
            shutil.rmtree(scratch / "big-merged")

        (scratch / "registry").mkdir()
        with registry(scratch / "registry") as address:
            sources = [("exports", cache)] + (
                [(f"x{options.scale}", scratch / "big")] if options.scale else []
            )
            for label, source in sources:
                ref = f"{address}/bench/trivy-db-{label}:2"
                push = [measured([*HARDEN, "db", "push", ref, "--cache-dir", str(source)])]
                report(f"push ({label}): harden db push", push)
                pull_runs(ref, scratch / label, label, options.runs if label == "exports" else 1)
                shutil.rmtree(scratch / label)
            version = [measured([*HARDEN, "--version"]) for _ in range(options.runs)]
            report("(harden --version: interpreter start-up)", version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
