"""The workflows' jobs on GitHub's hosted runners, reproduced as far as this machine allows.

A hosted runner is Ubuntu, its user is not root, and its apt configuration names Ubuntu's archive.
The jobs that build the base image or run the tests therefore run in a Debian job container as
root, with an engine of their own (.github/workflows/ci.yml, .ci/debian-job). Here we reproduce:
the runner's apt configuration and its user (each must fail clearly, naming the fix), the job
container's apt configuration on real Debian 12 (it must reach the mirror and install what the
jobs need), and the step that detaches the runner's Docker socket. What only GitHub can show is
listed in the README ("GitHub-hosted runners").
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hardening.aptsources import debian_mirror, read_sources, security_mirror
from tests.apt_configs import UBUNTU_RUNNER, debian_image, write_apt_dir
from tests.conftest import REPO_ROOT

DEBIAN_JOB = REPO_ROOT / ".ci" / "debian-job"


def _require_root() -> None:
    # CI runs as root; these tests switch users and mount namespaces.
    if os.geteuid() != 0:
        pytest.fail("reproducing the CI jobs needs root (CI runs as root)", pytrace=False)


def _with_apt_dir(apt_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run argv with apt_dir bind-mounted over /etc/apt in a private mount namespace: the process
    sees that apt configuration and nothing else on the machine changes."""
    script = 'mount --bind "$1" /etc/apt && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(apt_dir), *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _machine_mirrors() -> tuple[str, str | None]:
    sources = read_sources()
    mirror = debian_mirror("bookworm", sources)
    assert mirror, "this machine's apt configuration names no Debian mirror"
    return mirror, security_mirror(sources)


@pytest.mark.docker
def test_on_the_runners_apt_configuration_harden_base_names_the_fix(engine: object, tmp_path: Path) -> None:
    """`make base` straight on ubuntu-24.04: a clear error (exit 2), never a traceback."""
    _require_root()
    apt_dir = write_apt_dir(tmp_path / "apt", UBUNTU_RUNNER)
    result = _with_apt_dir(apt_dir, sys.executable, "-m", "hardening", "base")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "no Debian archive mirror is configured" in output
    assert "http://<ubuntu-mirror>/ubuntu/" in output  # what it read
    assert "Debian job container" in output and "--mirror" in output  # the ways out


@pytest.mark.docker
def test_as_the_runners_user_harden_base_says_it_needs_root(engine: object, base_image: str) -> None:
    """`make base` as a user who is not root but reaches the engine, as the runner's user does:
    exit 3 naming root and the job container, before anything is built. The user is root's own
    unmapped identity in a new user namespace: not root there (uid 65534), yet the owner of the
    files and the socket it needs, whatever this machine's permissions."""
    _require_root()
    mirror, _ = _machine_mirrors()
    result = subprocess.run(
        [
            *("unshare", "--user"),
            *(sys.executable, "-m", "hardening", "base", "--force", "--mirror", mirror),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Traceback" not in output
    assert "needs root" in output and "Debian job container" in output


@pytest.mark.docker
@pytest.mark.slow
def test_a_debian_job_container_reaches_the_mirror_and_gets_its_packages(
    engine: object, base_image: str
) -> None:
    """Debian 12 (our base image: debootstrap's bookworm, what debian:bookworm is) with the apt
    configuration the official image ships: .ci/debian-job installs what the jobs need from the
    mirror, every package of the test profile resolves, and harden finds the mirror there."""
    mirror, security = _machine_mirrors()
    files = debian_image(mirror, security or mirror + "-security")
    if security is None:  # keep only the archive's stanza
        files = {k: v.split("\n\n")[0] + "\n" for k, v in files.items()}
    ((name, text),) = files.items()
    probe = (
        "import sys; sys.path.insert(0, '/src');"
        "from hardening.aptsources import debian_mirror, read_sources;"
        "print('mirror', debian_mirror('bookworm', read_sources()))"
    )
    script = "\n".join(
        [
            "set -euo pipefail",
            "rm -f /etc/apt/sources.list",
            f"mkdir -p /etc/apt/{Path(name).parent}",
            f"cat > /etc/apt/{name} <<'SOURCES'",
            text.rstrip("\n"),
            "SOURCES",
            "/src/.ci/debian-job run",
            "/src/.ci/debian-job test --simulate > /dev/null",
            "command -v git make python3 > /dev/null",
            "python3 -m venv /tmp/venv",
            f'python3 -c "{probe}"',
        ]
    )
    container = f"hardening-test-debian-job-{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run(
            [
                *("docker", "run", "--name", container, "-v", f"{REPO_ROOT}:/src:ro"),
                *(base_image, "bash", "-c", script),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert f"mirror {mirror}" in result.stdout.splitlines()


def test_the_runners_docker_socket_is_detached_only_when_bind_mounted(tmp_path: Path) -> None:
    """The runner bind-mounts its engine's socket into job containers; .ci/debian-job detaches it
    so that `harden engine up` starts the job's own engine. A socket that is not a mount stays."""
    _require_root()
    host_socket = tmp_path / "host.sock"
    host_socket.write_text("the runner's engine")
    mounted = tmp_path / "docker.sock"
    mounted.touch()  # the mount point docker creates in the container
    script = (
        'mount --bind "$1" "$2" && mountpoint -q "$2" '
        '&& HARDENING_HOST_DOCKER_SOCKET="$2" "$3" detach-socket && ! mountpoint -q "$2"'
    )
    result = subprocess.run(
        [
            *("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"),
            *(str(host_socket), str(mounted), str(DEBIAN_JOB)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "detached the runner's Docker socket" in result.stdout
    assert not mounted.exists()
    assert host_socket.read_text() == "the runner's engine"  # the runner's side untouched

    own = tmp_path / "own.sock"
    own.touch()
    result = subprocess.run(
        [str(DEBIAN_JOB), "detach-socket"],
        env=dict(os.environ, HARDENING_HOST_DOCKER_SOCKET=str(own)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert own.exists() and result.stdout == ""
