"""How much smaller is python-secure than the obvious single-stage image of the same software?

Both images start from the same local base and install the same locked wheels from the same host
wheelhouse; the naive one does it the way a first Dockerfile usually does (Debian's pip and
build-essential with recommends, apt lists and pip caches left in place, one stage).  Prints the
figures; the goal is hardened/naive <= 0.5, but nothing is asserted here.

    .venv/bin/python bench/image_size_python.py [--keep]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from hardening.build.wheelhouse import prepare_wheelhouse

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTEXT = REPO_ROOT / "dockerfiles" / "python-secure"
BASE_IMAGE = "hardening/debian:bookworm"
HARDENED_TAG = "hardening/python-secure:bench"
NAIVE_TAG = "hardening/python-secure:bench-naive"
BUILD_TIMEOUT = 1800

# The same lock and wheelhouse, installed by bookworm's own pip (which needs
# --break-system-packages to write outside a venv).
NAIVE_DOCKERFILE = f"""\
FROM {BASE_IMAGE}
RUN apt-get update && apt-get install -y python3 python3-pip python3-venv build-essential
COPY requirements-3.11.lock /wheels/requirements.lock
COPY wheels/3.11/ /wheels/
RUN pip install --break-system-packages --no-index --find-links /wheels \\
        --require-hashes -r /wheels/requirements.lock
CMD ["python3"]
"""


def docker(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:2])} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def build(tag: str, dockerfile: Path | None = None) -> float:
    started = time.monotonic()
    extra = ["--file", str(dockerfile)] if dockerfile else []
    docker("build", "--quiet", "--tag", tag, *extra, str(CONTEXT), timeout=BUILD_TIMEOUT)
    return time.monotonic() - started


def size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).strip())


def megabytes(value: int) -> str:
    return f"{value / 1e6:7.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the naive image afterwards")
    options = parser.parse_args()

    docker("image", "inspect", BASE_IMAGE)
    wheels = prepare_wheelhouse(CONTEXT / "requirements-3.11.lock", CONTEXT / "wheels" / "3.11")
    print(f"wheelhouse: {len(wheels.wheels)} wheels ({wheels.downloaded} downloaded, {wheels.reused} reused)")

    hardened_seconds = build(HARDENED_TAG)
    with tempfile.TemporaryDirectory() as scratch:
        naive_file = Path(scratch) / "Dockerfile.naive"
        naive_file.write_text(NAIVE_DOCKERFILE, encoding="utf-8")
        naive_seconds = build(NAIVE_TAG, naive_file)

    base, hardened, naive = size(BASE_IMAGE), size(HARDENED_TAG), size(NAIVE_TAG)
    print(f"base      {BASE_IMAGE:40} {megabytes(base)}")
    print(
        f"hardened  {HARDENED_TAG:40} {megabytes(hardened)}  (+{megabytes(hardened - base).strip()}"
        f" over base, built in {hardened_seconds:.1f} s)"
    )
    print(
        f"naive     {NAIVE_TAG:40} {megabytes(naive)}  (+{megabytes(naive - base).strip()}"
        f" over base, built in {naive_seconds:.1f} s)"
    )
    print(f"ratio hardened/naive: {hardened / naive:.3f}  (goal <= 0.5)")
    print(f"ratio of what each adds to the base: {(hardened - base) / (naive - base):.3f}")

    if not options.keep:
        docker("image", "rm", NAIVE_TAG)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
