"""Size of postgres-secure, every catalog variant, against the official postgres image of the same
PostgreSQL major and Debian suite, and against a naive single-stage image on our own base.

    .venv/bin/python bench/image_size_postgres.py [--keep-images] [--no-naive]

The official images cannot be pulled here, so their on-disk sizes are the ones docker-library
publishes for amd64 (github.com/docker-library/repo-info, repos/postgres/local/<tag>.md,
"Virtual Size ... total size of all layers on-disk"): postgres:15-bookworm (15.18) 428.86 MB,
postgres:17-trixie (17.10) 453.54 MB. Goal: ours / official <= 0.5 for each.

The naive image is what a first attempt commonly looks like: one stage, apt's stock behaviour
(the base's slim apt configuration removed, so recommends are installed and .deb caches and apt
lists stay in the layer), PostgreSQL, gcc/make left in after building something, and gosu from
apt. A second naive variant adds only --no-install-recommends, to show how much of the gap is
recommends. They are built for the first variant (bookworm) only; goal: ours / naive <= 0.7.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hardening.catalog import ImageSpec, load_catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = REPO_ROOT / "dockerfiles" / "postgres-secure"
HARDENED_REPOSITORY = "hardening/postgres-secure"
OFFICIAL_GOAL = 0.5
# PostgreSQL major -> (official tag, its on-disk size in bytes), see the module docstring.
OFFICIAL = {"15": ("postgres:15-bookworm", 428_860_000), "17": ("postgres:17-trixie", 453_540_000)}

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


def bench_tag(spec: ImageSpec) -> str:
    return f"{HARDENED_REPOSITORY}:bench" + (f"-{spec.variant}" if spec.variant else "")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep-images", action="store_true", help="keep the naive images for a re-run")
    parser.add_argument("--no-naive", action="store_true", help="compare with the official images only")
    args = parser.parse_args()

    catalog = load_catalog(REPO_ROOT / "hardening.toml")
    specs = [spec for spec in catalog.images if spec.template.parent == Path("dockerfiles/postgres-secure")]
    sizes: dict[str, int] = {}
    for spec in specs:
        tag = bench_tag(spec)
        docker("build", "--quiet", "--tag", tag, "--file", str(REPO_ROOT / spec.dockerfile), str(CONTEXT))
        sizes[spec.name] = size_bytes(tag)
        major = str(spec.variables["postgres_major"])
        print(f"base      {spec.base.ref}: {mb(size_bytes(spec.base.ref))}")
        print(
            f"hardened  {tag} ({spec.name}, PostgreSQL {major} on {spec.base.suite}): {mb(sizes[spec.name])}"
        )
        if major in OFFICIAL:
            official, official_size = OFFICIAL[major]
            ratio = sizes[spec.name] / official_size
            print(
                f"official  {official} (published on-disk size): {mb(official_size)}  "
                f"ratio hardened/official = {ratio:.3f} (goal <= {OFFICIAL_GOAL})"
            )
        else:
            print(f"official  no published size recorded for PostgreSQL {major}")
    if args.no_naive or not specs:
        return 0
    first = specs[0]
    major = str(first.variables["postgres_major"])
    try:
        with tempfile.TemporaryDirectory() as empty_context:
            for label, (tag, recommends) in NAIVE_VARIANTS.items():
                dockerfile = NAIVE_DOCKERFILE.format(base=first.base.ref, major=major, recommends=recommends)
                docker("build", "--quiet", "--tag", tag, "--file", "-", empty_context, stdin=dockerfile)
                naive = size_bytes(tag)
                ratio = sizes[first.name] / naive
                print(f"{label:22} {tag}: {mb(naive)}  ratio {first.name}/naive = {ratio:.3f}")
    finally:
        if not args.keep_images:
            for tag, _ in NAIVE_VARIANTS.values():
                subprocess.run(["docker", "rmi", "--force", tag], capture_output=True, check=False)
    print("goal: ratio against the apt-defaults naive image <= 0.7")
    return 0


if __name__ == "__main__":
    sys.exit(main())
