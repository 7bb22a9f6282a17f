"""Python distributions installed in an image, one environment per site-/dist-packages dir.

A distribution is recognised the way importlib.metadata finds it: a ``NAME-VERSION.dist-info``
directory with ``METADATA``, or an ``.egg-info`` directory with ``PKG-INFO`` or an ``.egg-info``
file that is itself the metadata. Only the RFC 822 header block is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENVIRONMENT_DIRS = frozenset({"site-packages", "dist-packages"})
# The header block of METADATA is small; the long description after it is never needed.
METADATA_BUDGET = 64 * 1024
_NORMALISE = re.compile(r"[-_.]+")
_PYTHON_VERSION = re.compile(r"/python(\d+\.\d+)/")


@dataclass(frozen=True)
class PythonDistribution:
    name: str
    version: str
    path: str
    raw_name: str = ""


@dataclass(frozen=True)
class PythonEnvironment:
    path: str
    distributions: tuple[PythonDistribution, ...]

    @property
    def python_version(self) -> str | None:
        """``3.11`` for ``/opt/venv/lib/python3.11/site-packages``; None when the path says nothing."""
        match = _PYTHON_VERSION.search(self.path + "/")
        return match.group(1) if match else None

    def get(self, name: str) -> PythonDistribution | None:
        wanted = normalise_name(name)
        return next((d for d in self.distributions if d.name == wanted), None)


def normalise_name(name: str) -> str:
    """PEP 503 normalisation: runs of ``-_.`` become ``-``, lower case."""
    return _NORMALISE.sub("-", name.strip()).lower()


def parse_metadata_headers(text: str) -> dict[str, str]:
    """The first value of each header of a METADATA / PKG-INFO document (keys lower-cased)."""
    headers: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if current is not None and current in headers:
                headers[current] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            current = None
            continue
        current = name.strip().lower()
        headers.setdefault(current, value.strip())
    return headers


def is_metadata_path(path: str) -> bool:
    """Whether ``path`` is a metadata file inside a site-/dist-packages directory."""
    parts = path.rsplit("/", 3)
    if len(parts) == 4 and parts[1] in ENVIRONMENT_DIRS:
        return (parts[2].endswith(".dist-info") and parts[3] == "METADATA") or (
            parts[2].endswith(".egg-info") and parts[3] == "PKG-INFO"
        )
    if len(parts) >= 3 and parts[-2] in ENVIRONMENT_DIRS:
        return parts[-1].endswith(".egg-info")
    return False


def distribution_from_metadata(path: str, text: str | None, entry_name: str) -> PythonDistribution:
    """A distribution from its metadata, falling back to the ``NAME-VERSION`` directory name."""
    headers = parse_metadata_headers(text) if text else {}
    stem = entry_name.rsplit(".", 1)[0]
    fallback_name, _, rest = stem.partition("-")
    fallback_version = rest.split("-", 1)[0]
    raw_name = headers.get("name") or fallback_name
    version = headers.get("version") or fallback_version
    return PythonDistribution(normalise_name(raw_name), version, path, raw_name)
