"""The repository stands alone and names no package registry: mirrors and indexes come from the
machine's configuration, test data is vendored."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# Package registries' hosts, any subdomain included. Written as patterns (escaped dots) so that
# this file does not match itself. Advisory trackers and mailing lists of the same projects are
# not registries and stay allowed (the advisories cite them).
REGISTRY_HOSTS = re.compile(
    rb"(?<![\w.-])(?:[\w-]+\.)*"
    rb"(?:"
    # Debian's archive
    rb"(?:deb|security|ftp(?:\.[a-z]{2})?|httpredir|snapshot|archive|incoming)\.debian\.org"
    rb"|(?:archive|security|ports)\.ubuntu\.com"  # Ubuntu's archive
    rb"|pypi\.org|pypi\.python\.org|pythonhosted\.org"  # PyPI
    rb"|registry\.npmjs\.(?:org|com)|registry\.yarnpkg\.com"  # npm
    rb")(?![\w-])",
    re.IGNORECASE,
)


def tracked_files() -> list[Path]:
    git = shutil.which("git")
    assert git, "git is needed to list the repository's files"
    result = subprocess.run(
        [git, "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    files = [REPO_ROOT / name.decode() for name in result.stdout.split(b"\0") if name]
    assert len(files) > 50
    return [path for path in files if path.is_file()]  # a deletion not yet committed


@pytest.mark.parametrize(
    "text",
    [
        "http://" + "deb.debian" + ".org/debian",
        "deb http://" + "security.debian" + ".org/debian-security bookworm-security main",
        "http://" + "ftp.de.debian" + ".org/debian",
        "http://" + "cdn-fastly.deb.debian" + ".org/debian",
        "http://" + "archive.ubuntu" + ".com/ubuntu",
        "--index-url https://" + "pypi" + ".org/simple",
        "https://" + "test.pypi" + ".org/simple",
        "https://" + "files.pythonhosted" + ".org/packages/x.whl",
        "https://" + "registry.npmjs" + ".org/@scope/pkg",
    ],
)
def test_the_pattern_finds_registry_hosts(text: str) -> None:
    assert REGISTRY_HOSTS.search(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "https://" + "security-tracker.debian" + ".org/tracker/CVE-2024-6345",
        "https://" + "metadata.ftp-master.debian" + ".org/changelogs/main/p/perl/stable_changelog",
        "Debian Developers <debian-devel@" + "lists.debian" + ".org>",
        "https://" + "salsa.debian" + ".org/security-tracker-team/security-tracker",
        "http://<debian-mirror>/debian",
        "https://index.example/simple",
    ],
)
def test_the_pattern_spares_what_is_not_a_registry(text: str) -> None:
    assert not REGISTRY_HOSTS.search(text.encode())


def test_no_package_registry_host_in_the_repository() -> None:
    """Examples use placeholders such as `<debian-mirror>`; locks are written without index lines."""
    found = []
    for path in tracked_files():
        data = path.read_bytes()
        for match in REGISTRY_HOSTS.finditer(data):
            line = data.count(b"\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(REPO_ROOT)}:{line}: {match.group().decode(errors='replace')}")
    assert not found, "package registry hosts in tracked files:\n" + "\n".join(found)
