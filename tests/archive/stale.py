"""A base package put back behind the archive's security pocket, from the live indexes."""

from __future__ import annotations

import subprocess

import pytest
from debian.debian_support import Version

from hardening.aptsources import debian_mirror, read_sources, security_mirror
from hardening.archive.cache import ArchiveCache
from hardening.archive.fetch import Fetcher
from hardening.archive.release import DEFAULT_KEYRING
from hardening.archive.snapshot import ArchiveTarget, Pocket, open_snapshot


def docker(*args: str, stdin: str | None = None, timeout: float = 900) -> str:
    result = subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def behind(base_image: str) -> tuple[str, str, str]:
    """(package, source, point-release version) of a base package the security pocket updated."""
    listing = docker("run", "--rm", base_image, "dpkg-query", "-W", "-f", "${Package} ${source:Package}\\n")
    sources: dict[str, list[str]] = {}
    for line in listing.splitlines():
        package, source = line.split()
        sources.setdefault(source, []).append(package)
    mirrors = read_sources()
    mirror, security = debian_mirror("bookworm", mirrors), security_mirror(mirrors)
    assert mirror and security
    singles = {packages[0]: source for source, packages in sources.items() if len(packages) == 1}
    snapshot = open_snapshot(
        ArchiveTarget("bookworm", mirror, security, "options"),
        Fetcher(timeout=120),
        ArchiveCache(None),
        [DEFAULT_KEYRING],
        packages=set(singles),
    )
    for package in sorted(singles):
        versions = snapshot.versions(package, "amd64")
        released = [Version(c.version) for c, pocket in versions if pocket is Pocket.RELEASE]
        secured = [Version(c.version) for c, pocket in versions if pocket is Pocket.SECURITY]
        if released and secured and max(secured) > max(released):
            return package, singles[package], str(max(released))
    pytest.fail("the security pocket updates no single-binary package of the base today; widen the search")
