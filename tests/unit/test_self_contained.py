"""The repository stands alone and names no package registry: mirrors and indexes come from the
machine's configuration, test data is vendored."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import REPO_ROOT, SARIF_SCHEMA

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


# -- nothing outside the checkout ----------------------------------------------------------------

# What the code, tests and scripts may not reach for: the workplace's shared folder beside the
# checkout, whether as a relative path, as the repository root's parent joined with that name, or
# as the workplace's absolute path. Written as patterns, so that this file does not match itself.
OUTSIDE = re.compile(
    r"\.\./+shared\b"
    r"|\bparents?\b[^\n]*[\"']shared[\"']"
    r"|/work/+shared\b"
)
SELF_CONTAINED = ("hardening", "tests", "bench", "scripts", ".ci", "Makefile")


@pytest.mark.parametrize(
    "text",
    [
        'SCHEMA = ROOT / "..' + '/shared/schemas/sarif-schema-2.1.0.json"',
        'SHARED = REPO_ROOT.parent / "sha' + 'red"',
        "osv = Path(__file__).parents[3] / 'sha" + "red' / 'osv'",
        "cp /work" + "/shared/osv/Go.zip .",
    ],
)
def test_the_pattern_finds_reads_outside_the_checkout(text: str) -> None:
    assert OUTSIDE.search(text)


def test_nothing_reads_beside_the_checkout() -> None:
    """A clone of the repository alone runs its tests, benchmarks and scripts: test data is vendored."""
    found = []
    for path in tracked_files():
        relative = path.relative_to(REPO_ROOT)
        if relative.parts[0] not in SELF_CONTAINED:
            continue
        text = path.read_text(errors="replace")
        for match in OUTSIDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{relative}:{line}: {match.group()}")
    assert not found, "reads outside the repository (vendor the data instead):\n" + "\n".join(found)


def test_the_vendored_sarif_schema_is_the_official_one() -> None:
    """The copy is unmodified (tests/data/schemas/README.md gives its source and licence)."""
    data = SARIF_SCHEMA.read_bytes()
    assert hashlib.sha256(data).hexdigest() == (
        "6352a05f9d03f181b8d9c71a46bdacc4fcff9d8ade5364858b425ba0c0994ed7"
    )
    schema = json.loads(data)
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    assert SARIF_SCHEMA.is_relative_to(REPO_ROOT)
