"""Text as SARIF and GitHub's Markdown want it: clipped, escaped, one line, PascalCase."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


@lru_cache(maxsize=256)
def pascal(text: str) -> str:
    return "".join(t[:1].upper() + t[1:] for t in re.split(r"[^0-9A-Za-z]+", text) if t)


# What urlsplit surely reads as http(s) with a host: an ASCII host name up to the path, query or
# fragment, nothing urlsplit strips or rejects (controls, spaces, brackets) before it.
_PLAIN_WEB_URI = re.compile(r"https?://[A-Za-z0-9.-]+(?:[/?#]|\Z)")


# Thousands of references per log, most of them plain; urlsplit was a tenth of the build.
@lru_cache(maxsize=8192)
def is_web_uri(value: str | None) -> bool:
    if not value:
        return False
    if _PLAIN_WEB_URI.match(value):
        return " " not in value
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def escape_message(text: str) -> str:
    # SARIF reads [text](n) in message text as an embedded link; literal brackets get a backslash
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def unescape_message(text: str) -> str:
    return re.sub(r"\\([\\\[\]])", r"\1", text)


# Markdown's special characters, each written after a backslash.
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>|#"})


def md(text: str) -> str:
    return text.translate(_MARKDOWN_ESCAPES)


def cell(text: str) -> str:
    return f"`{text}`".replace("|", "\\|") if text else "-"
