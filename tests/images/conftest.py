"""Images built from the committed, rendered Dockerfiles, for behavioural tests.

For now the docker CLI builds them; the fixture moves to the build driver once it exists.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_CONTEXT = REPO_ROOT / "dockerfiles" / "postgres-secure"
POSTGRES_TEST_TAG = "hardening/postgres-secure:test"
BASE_IMAGE = "hardening/debian:bookworm"


def _docker(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    except FileNotFoundError:
        pytest.fail("tests marked docker need the docker CLI on PATH and a running engine")


@pytest.fixture(scope="module")
def postgres_image(request: pytest.FixtureRequest) -> str:
    """postgres-secure built from dockerfiles/postgres-secure/Dockerfile; returns its tag."""
    engine = _docker("version", "--format", "{{.Server.Version}}", timeout=60)
    if engine.returncode != 0:
        pytest.fail(f"tests marked docker need a running engine: {engine.stderr.strip()}")
    # The shared fixture builds the base from the Debian archive; only pay for it when missing.
    if _docker("image", "inspect", BASE_IMAGE, timeout=60).returncode != 0:
        request.getfixturevalue("base_image")
    result = _docker("build", "--quiet", "--tag", POSTGRES_TEST_TAG, str(POSTGRES_CONTEXT), timeout=1200)
    if result.returncode != 0:
        pytest.fail(f"docker build of {POSTGRES_CONTEXT} failed:\n{result.stderr[-4000:]}")
    return POSTGRES_TEST_TAG
