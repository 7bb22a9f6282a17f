"""What a ``[base.*]`` table of the catalog asks for; ``hardening.base`` makes the image.

Apart from the builder so that the catalog, and everything that reads image specs, does not import
what building a base needs (the policy files its setuid allowlist comes from, among others).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BaseSpec:
    repository: str
    tag: str
    suite: str
    mirror: str | None = None
    security_mirror: str | None = None
    # Policy files (absolute paths) whose `setuid` check says which setuid/setgid bits stay.
    policies: tuple[Path, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"
