"""Read the machine's apt configuration to find the Debian mirror, so no host is written in code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _one_line_sources(text: str) -> Iterable[AptSource]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):  # options such as [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            yield AptSource(words[0], (words[1],), tuple(words[2:]))


def _deb822_sources(text: str) -> Iterable[AptSource]:
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for raw in stanza.splitlines():
            if raw.startswith("#") or ":" not in raw or raw[:1].isspace():
                continue
            key, value = raw.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield AptSource(
                uri, tuple(fields.get("suites", "").split()), tuple(fields.get("components", "").split())
            )


def parse_sources(name: str, text: str) -> list[AptSource]:
    """The sources in one apt file: one-line format for ``*.list``, deb822 for ``*.sources``."""
    if name.endswith(".list"):
        return list(_one_line_sources(text))
    if name.endswith(".sources"):
        return list(_deb822_sources(text))
    return []


def read_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    found: list[AptSource] = []
    legacy = apt_dir / "sources.list"
    if legacy.is_file():
        found.extend(parse_sources(legacy.name, legacy.read_text(errors="replace")))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            found.extend(parse_sources(path.name, path.read_text(errors="replace")))
    return found


def _is_archive(uri: str) -> bool:
    return uri.rstrip("/").endswith("/debian")


def debian_mirror(suite: str, sources: list[AptSource]) -> str | None:
    """The archive mirror serving ``suite``, else any Debian archive mirror configured."""
    archives = [s for s in sources if _is_archive(s.uri)]
    for source in archives:
        if suite in source.suites:
            return source.uri
    return archives[0].uri if archives else None


def security_mirror(sources: list[AptSource]) -> str | None:
    for source in sources:
        if source.uri.rstrip("/").endswith("/debian-security"):
            return source.uri
    return None
