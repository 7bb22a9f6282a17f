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
import re
import subprocess

import pytest

from tests.registry.server import RegistryServer
from tests.registry.test_release_real import (  # noqa: F401 - repo and trivy_db: fixtures, used by name
    PASSING_TEMPLATE,
    ThrowawayRepo,
    _output,
    repo,
    trivy_db,
)

pytestmark = [pytest.mark.registry, pytest.mark.docker, pytest.mark.trivy, pytest.mark.mirror]

APT_TEMPLATE = PASSING_TEMPLATE.replace(
    "RUN echo",
    "# hadolint ignore=DL3008\n"
    "RUN apt-get update && apt-get install -y --no-install-recommends libjq1 "
    "&& rm -rf /var/lib/apt/lists/*\nRUN echo",
)
# A file no rule knows that records when it was built: every build differs in it.
STAMPED_TEMPLATE = PASSING_TEMPLATE.replace("RUN echo", "RUN date +%s%N > /srv/built-at && echo")


@pytest.fixture
def throwaway(request: pytest.FixtureRequest) -> ThrowawayRepo:
    found: ThrowawayRepo = request.getfixturevalue("repo")
    return found


def _release(checkout: ThrowawayRepo, registry: RegistryServer, template: str) -> str:
    checkout.set_template("good", template)
    ran, _ = checkout.run("good")
    assert ran.returncode == 0, _output(ran)
    released = checkout.release(registry.address, "good")
    assert released.returncode == 0, _output(released)
    return f"{registry.address}/{checkout.repository('good')}:1"


def _rebuild(checkout: ThrowawayRepo, ref: str) -> subprocess.CompletedProcess[str]:
    assert checkout.key is not None
    return checkout.harden(
        "verify", ref, "--key", str(checkout.key.public), "--rebuild", "--repo", str(checkout.root)
    )


def _rebuild_refs() -> list[str]:
    listed = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "hardening-rebuild/*"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return sorted(listed.stdout.split())


def test_a_released_image_rebuilds_to_the_same_image_and_a_vanished_package_version_stops_it(
    throwaway: ThrowawayRepo, registry: RegistryServer
) -> None:
    checkout = throwaway
    ref = _release(checkout, registry, APT_TEMPLATE)
    result = _rebuild(checkout, ref)

    assert result.returncode == 0, _output(result)
    found = re.search(r"ok     rebuild      same image id sha256:([0-9a-f]{12})", result.stdout)
    assert found, _output(result)
    assert "reproduced:" in result.stdout
    # The rebuild's private tags (named after the image) are gone.
    assert not [tag for tag in _rebuild_refs() if found.group(1) in tag]

    # The same image released again with a provenance naming a version the mirror never served.
    run_dir = sorted((checkout.root / "out" / "runs").glob("*/good/build.json"))[-1]
    record = json.loads(run_dir.read_text())
    (package,) = [p for p in record["inputs"]["debian_packages"] if p["name"] == "libjq1"]
    package["version"] = "1.6-2.1+not.served"
    run_dir.write_text(json.dumps(record))
    released = checkout.release(registry.address, "good")
    assert released.returncode == 0, _output(released)

    result = _rebuild(checkout, ref)

    assert result.returncode == 3, _output(result)
    assert "can no longer be had" in result.stderr
    assert "libjq1 1.6-2.1+not.served (amd64): the mirror now serves" in result.stderr
    assert "Successfully built" not in result.stdout + result.stderr  # stopped before building


def test_a_build_that_records_its_own_time_differs_in_a_named_layer_and_file(
    throwaway: ThrowawayRepo, registry: RegistryServer
) -> None:
    ref = _release(throwaway, registry, STAMPED_TEMPLATE)

    result = _rebuild(throwaway, ref)

    assert result.returncode == 1, _output(result)
    assert "the rebuilt image differs from the released one: layer 1 differs" in result.stderr
    assert "first differing file /srv/built-at (content)" in result.stderr
