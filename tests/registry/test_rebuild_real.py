"""`harden verify --rebuild` on a real registry: a released image built again from its provenance.

The image is run, released (signed provenance included) and verified with --rebuild: the
revision the provenance names is checked out into a temporary worktree and built again with an
empty cache. An image whose Dockerfile installs Debian packages rebuilds to the same image id;
once its provenance names a package version the mirror does not serve, the rebuild stops before
building with exit 3 and names it; an image that records its own build time differs, and the
first differing layer and file are named (exit 1).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.registry import test_release_real as release_tests
from tests.registry.server import RegistryServer
from tests.registry.test_release_real import PASSING_TEMPLATE, ThrowawayRepo, _output

# The release tests' throwaway repository (fixture `repo`) and Trivy DB, shared as they are.
_repo_fixture = release_tests.repo
_trivy_db_fixture = release_tests.trivy_db

pytestmark = [pytest.mark.registry, pytest.mark.docker, pytest.mark.trivy, pytest.mark.mirror]

APT_TEMPLATE = PASSING_TEMPLATE.replace(
    "RUN echo",
    "# hadolint ignore=DL3008\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends libjq1 "
    "&& rm -rf /var/lib/apt/lists/*\nRUN echo",
)
# A file no rule knows that records when it was built: every build differs in it.
STAMPED_TEMPLATE = PASSING_TEMPLATE.replace("RUN echo", "RUN date +%s%N > /srv/built-at && echo")


def _release(repo: ThrowawayRepo, registry: RegistryServer, template: str) -> str:
    repo.set_template("good", template)
    ran, _ = repo.run("good")
    assert ran.returncode == 0, _output(ran)
    released = repo.release(registry.address, "good")
    assert released.returncode == 0, _output(released)
    return f"{registry.address}/{repo.repository('good')}:1"


def _rebuild(repo: ThrowawayRepo, ref: str) -> subprocess.CompletedProcess[str]:
    assert repo.key is not None
    return repo.harden("verify", ref, "--key", str(repo.key.public), "--rebuild", "--repo", str(repo.root))


def _rebuild_refs_left() -> list[str]:
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "hardening-rebuild/*"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return sorted(listed.stdout.split())


def test_a_released_image_rebuilds_to_the_same_image_and_a_vanished_package_version_stops_it(
    repo: ThrowawayRepo, registry: RegistryServer
) -> None:
    ref = _release(repo, registry, APT_TEMPLATE)
    before = _rebuild_refs_left()

    result = _rebuild(repo, ref)

    assert result.returncode == 0, _output(result)
    assert "ok     rebuild      same image id sha256:" in result.stdout
    assert "reproduced:" in result.stdout
    assert _rebuild_refs_left() == before  # the rebuild's private tags are gone

    # The same image released again with a provenance naming a version the mirror never served.
    run_dir = sorted((repo.root / "out" / "runs").glob("*/good/build.json"))[-1]
    record = json.loads(run_dir.read_text())
    (package,) = [p for p in record["inputs"]["debian_packages"] if p["name"] == "libjq1"]
    package["version"] = "1.6-2.1+not.served"
    run_dir.write_text(json.dumps(record))
    released = repo.release(registry.address, "good")
    assert released.returncode == 0, _output(released)

    result = _rebuild(repo, ref)

    assert result.returncode == 3, _output(result)
    assert "can no longer be had" in result.stderr
    assert "libjq1 1.6-2.1+not.served (amd64): the mirror now serves" in result.stderr
    assert "Successfully built" not in result.stdout + result.stderr  # stopped before building


def test_a_build_that_records_its_own_time_differs_in_a_named_layer_and_file(
    repo: ThrowawayRepo, registry: RegistryServer
) -> None:
    ref = _release(repo, registry, STAMPED_TEMPLATE)

    result = _rebuild(repo, ref)

    assert result.returncode == 1, _output(result)
    assert "the rebuilt image differs from the released one: layer 1 differs" in result.stderr
    assert "first differing file /srv/built-at (content)" in result.stderr
