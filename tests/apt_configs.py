"""The apt configurations of the CI jobs' machines, as files, for tests that reproduce those machines.

Hosts are placeholders: the repository names no package registry. Only the shape matters to
`hardening.aptsources` (deb822 or one-line, the URI's path, the suites).
"""

from __future__ import annotations

from pathlib import Path

# GitHub's ubuntu-24.04 runner: deb822 Ubuntu sources, the old sources.list left as a pointer, and
# a vendor repository in one-line format.
UBUNTU_RUNNER = {
    "sources.list": "# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources\n",
    "sources.list.d/ubuntu.sources": (
        "Types: deb\n"
        "URIs: http://<ubuntu-mirror>/ubuntu/\n"
        "Suites: noble noble-updates noble-backports\n"
        "Components: main restricted universe multiverse\n"
        "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"
        "\n"
        "Types: deb\n"
        "URIs: http://<ubuntu-security-mirror>/ubuntu/\n"
        "Suites: noble-security\n"
        "Components: main restricted universe multiverse\n"
        "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"
    ),
    "sources.list.d/microsoft-prod.list": (
        "deb [arch=amd64,armhf,arm64] https://<vendor-repository>/ubuntu/24.04/prod noble main\n"
    ),
}


def debian_image(mirror: str, security: str) -> dict[str, str]:
    """The official debian:bookworm image's apt configuration (the job container's), with the
    mirrors given: deb822, no sources.list."""
    return {
        "sources.list.d/debian.sources": (
            "Types: deb\n"
            f"URIs: {mirror}\n"
            "Suites: bookworm bookworm-updates\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            "\n"
            "Types: deb\n"
            f"URIs: {security}\n"
            "Suites: bookworm-security\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        ),
    }


def write_apt_dir(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
