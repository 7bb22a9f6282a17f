"""Each shortcut the SARIF writer takes answers as the slow way it replaces."""

from __future__ import annotations

import json
import random
import re
import struct
from urllib.parse import urlsplit

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hardening.report.sarif.serialise import _spelt_otherwise, dumps, plain_number
from hardening.report.sarif.text import is_web_uri, md


def by_urlsplit(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


_url_parts = st.sampled_from(
    [
        *("http", "https", "HTTPS", "ftp", ":", "//", "/", "?", "#", "@", "[", "]"),
        *(" ", "\t", "\n", "\x00", "é", "example.org", "a.b-c", "x", "1.2.3.4", ":8080", "path", "q=1", ""),
    ]
)


@given(st.lists(_url_parts, max_size=8).map("".join) | st.text(max_size=30))
def test_web_uri_check_agrees_with_urlsplit(value: str) -> None:
    is_web_uri.cache_clear()
    try:
        expected = by_urlsplit(value)
    except ValueError:
        # urlsplit refuses it (a broken IPv6 host); the check must not answer either
        try:
            is_web_uri(value)
        except ValueError:
            return
        raise AssertionError(f"{value!r}: urlsplit raises, the check answered") from None
    assert is_web_uri(value) == expected, value


def test_web_uri_check_on_common_references() -> None:
    for value in (
        "https://nvd.nist.gov/vuln/detail/CVE-2024-6345",
        "https://github.com/pypa/setuptools/commit/88807c7062788254f654ea8c03427adc859321f0",
        "http://example.org",
        "https://example.org?x",
        "https://example.org/a b",
        "https://[::1]/",
        " https://lead.ing/space",
        "https:///nohost",
    ):
        assert is_web_uri(value) == by_urlsplit(value), value


def _floats() -> list[float]:
    rng = random.Random(2026)
    values = [float(f"{m}e{e}") for e in range(-325, 309) for m in (1, 1.5, 9.99)]
    values += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(20_000)]
    values += [rng.uniform(0, 10) for _ in range(20_000)] + [rng.uniform(-1e-3, 1e-3) for _ in range(5_000)]
    return [v for v in values if v == v and abs(v) != float("inf")]


def test_every_float_msgspec_spells_otherwise_is_noticed() -> None:
    for value in _floats():
        for doc in ([value], {"a": value}, {"a": [1, value, "x"], "b": {}}):
            python = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
            ours = msgspec.json.encode(doc)
            if python != ours:
                assert _spelt_otherwise(ours), (value, python, ours)
                assert not plain_number(value), value


def test_numbers_inside_strings_cost_only_speed() -> None:
    doc = {"runs": [{"results": [], "note": ':1e5,"', "hash": "6e20aa", "v": 10.00001}]}
    assert dumps(doc) == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@given(st.text(max_size=60))
def test_markdown_escaping_is_the_regular_expression_it_replaced(text: str) -> None:
    assert md(text) == re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", text)
