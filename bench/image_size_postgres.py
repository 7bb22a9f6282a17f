"""Size of postgres-secure against a naive single-stage PostgreSQL image on the same base.

    .venv/bin/python bench/image_size_postgres.py [--keep-images]

The naive image is what a first attempt commonly looks like: one stage, apt's stock behaviour
(the base's slim apt configuration removed, so recommends are installed and .deb caches and apt
lists stay in the layer), PostgreSQL, gcc/make left in after building something, and gosu from
apt. A second naive variant adds only --no-install-recommends, to show how much of the gap is
recommends. Prints figures; goal: hardened / naive <= 0.7.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = REPO_ROOT / "dockerfiles" / "postgres-secure"
BASE_IMAGE = "hardening/debian:bookworm"
HARDENED_TAG = "hardening/postgres-secure:bench"
POSTGRES_MAJOR = "15"

NAIVE_DOCKERFILE = """\
FROM {base}
RUN rm -f /etc/apt/apt.conf.d/90-hardening-slim \\
 && apt-get update \\
 && apt-get install -y {recommends}postgresql-{major} gcc make libc6-dev gosu
ENV PATH=/usr/lib/postgresql/{major}/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
CMD ["postgres"]
"""

NAIVE_VARIANTS = {
    "naive (apt defaults)": ("hardening/postgres-naive:bench", ""),
    "naive (no recommends)": ("hardening/postgres-naive:bench-norec", "--no-install-recommends "),
}


def docker(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=1800
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout


def size_bytes(tag: str) -> int:
    return int(json.loads(docker("image", "inspect", tag))[0]["Size"])


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep-images", action="store_true", help="keep the naive images for a re-run")
    args = parser.parse_args()

    docker("build", "--quiet", "--tag", HARDENED_TAG, str(CONTEXT))
    hardened = size_bytes(HARDENED_TAG)
    base = size_bytes(BASE_IMAGE)
    print(f"base      {BASE_IMAGE}: {mb(base)}")
    print(f"hardened  {HARDENED_TAG}: {mb(hardened)}")
    try:
        with tempfile.TemporaryDirectory() as empty_context:
            for label, (tag, recommends) in NAIVE_VARIANTS.items():
                dockerfile = NAIVE_DOCKERFILE.format(
                    base=BASE_IMAGE, major=POSTGRES_MAJOR, recommends=recommends
                )
                docker("build", "--quiet", "--tag", tag, "--file", "-", empty_context, stdin=dockerfile)
                naive = size_bytes(tag)
                print(f"{label:22} {tag}: {mb(naive)}  ratio hardened/naive = {hardened / naive:.3f}")
    finally:
        if not args.keep_images:
            for tag, _ in NAIVE_VARIANTS.values():
                subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, check=False)
    print("goal: ratio against the apt-defaults naive image <= 0.7")
    return 0


if __name__ == "__main__":
    sys.exit(main())
