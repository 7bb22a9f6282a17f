"""`harden base --if-outdated` on the real engine and this machine's mirror.

A base whose package was put back to the point release's version (chosen from the live indexes,
as the nightly-rebuild test does) stands in for a base built before a security upload: without
the flag it is kept, with it the archive is asked and the base is bootstrapped again; a base the
archive cannot be asked about is kept, and the output says why.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian.debian_support import Version

from hardening.engine.client import Engine
from tests.archive.stale import behind, docker

pytestmark = [pytest.mark.docker, pytest.mark.mirror, pytest.mark.slow]


def _harden(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hardening", "--catalog", str(root / "hardening.toml"), *args]
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=1800, check=False)


@pytest.fixture
def stale_base(base_image: str, engine: Engine, tmp_path: Path) -> Iterator[tuple[Path, str, str, str]]:
    """(catalog root, base ref, package, version put back) of a base behind the security pocket."""
    package, _, old = behind(base_image)
    repository = f"hardening-test-{uuid.uuid4().hex[:8]}/debian"
    ref = f"{repository}:bookworm"
    context = tmp_path / "stale"
    context.mkdir()
    # Built FROM the base, the image keeps its labels: to `harden base` it is a current base.
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN apt-get update -qq && apt-get install -y -qq --allow-downgrades "
        f"{package}={old} && rm -rf /var/lib/apt/lists/*\n"
    )
    docker("build", "-q", "-t", ref, str(context))
    root = tmp_path / "repo"
    (root / "dockerfiles/demo").mkdir(parents=True)
    (root / "dockerfiles/demo/Dockerfile.j2").write_text("FROM {{ base_image }}\nUSER 65534:65534\n")
    (root / "hardening.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            output_dir = "scans"

            [base.bookworm]
            repository = "{repository}"
            tag = "bookworm"
            suite = "bookworm"

            [[image]]
            name = "demo"
            template = "dockerfiles/demo/Dockerfile.j2"
            repository = "hardening-test/base-freshness"
            tags = ["1"]
            """
        )
    )
    try:
        yield root, ref, package, old
    finally:
        engine.remove_image(ref, missing_ok=True)


def test_if_outdated_bootstraps_a_base_the_security_pocket_moved_past(
    stale_base: tuple[Path, str, str, str], engine: Engine
) -> None:
    root, ref, package, old = stale_base
    stale = engine.image(ref)
    assert stale is not None

    kept = _harden(root, "base")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert f"base {ref}: up to date" in kept.stdout  # labels match: without the flag it stays
    assert engine.image(ref).id == stale.id  # type: ignore[union-attr]

    rebuilt = _harden(root, "base", "--if-outdated")
    output = rebuilt.stdout + rebuilt.stderr
    assert rebuilt.returncode == 0, output
    assert "security updates pending" in output and f"{package} {old} → " in output, output
    assert f"base {ref}: built" in rebuilt.stdout, output
    fresh = engine.image(ref)
    assert fresh is not None and fresh.id != stale.id
    installed = docker("run", "--rm", ref, "dpkg-query", "-W", "-f", "${Version}", package)
    assert Version(installed) > Version(old)

    again = _harden(root, "base", "--if-outdated")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no security update pending" in again.stdout and f"base {ref}: up to date" in again.stdout


def test_a_base_the_archive_cannot_be_asked_about_is_kept_and_said_so(
    stale_base: tuple[Path, str, str, str], engine: Engine, tmp_path: Path
) -> None:
    root, ref, _, _ = stale_base
    stale = engine.image(ref)
    assert stale is not None
    # Every download goes through a proxy that refuses connections; no index is cached.
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp_path),
        "HARDENING_ARCHIVE_CACHE": str(tmp_path / "no-cache"),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    kept = _harden(root, "base", "--if-outdated", env=env)
    output = kept.stdout + kept.stderr
    assert kept.returncode == 0, output
    assert f"base {ref}: kept, the archive could not be checked" in output, output
    assert "Traceback" not in output
    assert engine.image(ref).id == stale.id  # type: ignore[union-attr]
