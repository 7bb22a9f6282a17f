"""Start-up time of postgres-secure: `docker run` until SELECT 1 succeeds, first start (initdb) each time.

    .venv/bin/python bench/postgres_start.py [--runs 5] [--image NAME]...

For every postgres-secure image of the catalog (15 on bookworm, 17 on trixie; --image picks some),
builds the image from its committed, rendered Dockerfile first (a cached build takes well under a
second). Every run uses a fresh container and a fresh anonymous volume, so each one pays for initdb.
SELECT 1 goes over TCP with the password, exactly as a client would. Goal: median <= 5 s each.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from hardening.catalog import load_catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = REPO_ROOT / "dockerfiles" / "postgres-secure"
# Throwaway containers, but still no password literal in the repository.
PASSWORD = secrets.token_urlsafe(18)
BUDGET_SECONDS = 60.0
POLL_SECONDS = 0.05


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=1200)


def time_to_select_1(image: str) -> float:
    name = f"pgsec-bench-{uuid.uuid4().hex[:12]}"
    start = time.monotonic()
    try:
        docker("run", "--detach", "--name", name, "--env", f"POSTGRES_PASSWORD={PASSWORD}", image)
        while time.monotonic() - start < BUDGET_SECONDS:
            result = docker(
                "exec", "--env", f"PGPASSWORD={PASSWORD}", name,
                "psql", "--host=127.0.0.1", "--username=postgres", "--no-psqlrc", "-tAc", "SELECT 1",
                check=False,
            )  # fmt: skip
            if result.returncode == 0 and result.stdout.strip() == "1":
                return time.monotonic() - start
            time.sleep(POLL_SECONDS)
        logs = docker("logs", name, check=False)
        raise RuntimeError(f"no SELECT 1 within {BUDGET_SECONDS} s:\n{logs.stdout}{logs.stderr}")
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", action="append", default=[], help="catalog image name (default: all)")
    args = parser.parse_args()

    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    specs = [
        spec for spec in catalog.select(args.image) if spec.template.parent == CONTEXT.relative_to(REPO_ROOT)
    ]
    for spec in specs:
        tag = "hardening/postgres-secure:bench" + (f"-{spec.variant}" if spec.variant else "")
        docker("build", "--quiet", "--tag", tag, "--file", str(REPO_ROOT / spec.dockerfile), str(CONTEXT))
        seconds = []
        for run in range(1, args.runs + 1):
            elapsed = time_to_select_1(tag)
            seconds.append(elapsed)
            print(f"{spec.name} run {run}: {elapsed:.2f} s")
        median = statistics.median(seconds)
        # Other builds on a shared 2-core machine move these figures by seconds; say how busy it was.
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print(
            f"{spec.name}: median from docker run to SELECT 1 (first start, initdb included): "
            f"{median:.2f} s (goal <= 5 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
