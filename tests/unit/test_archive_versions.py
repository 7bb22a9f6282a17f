"""Debian version ordering: python-debian (what the archive reader uses) against dpkg itself.

dpkg is the reference: ``dpkg --compare-versions`` decides what apt upgrades to. The pairs are
hand-written edge cases (epochs, ``~``, ``+deb12u1``, binNMUs, letters against digits) and pairs
drawn from 642 real version strings of bookworm's indexes (tests/data/archive/debian-versions.txt):
every neighbour in python-debian's sorted order, plus random pairs from a fixed seed.
"""

from __future__ import annotations

import functools
import itertools
import random
import subprocess
from pathlib import Path

from debian.debian_support import Version

from hardening.archive.changelog import CVE_ID

VERSIONS_FILE = Path(__file__).resolve().parents[1] / "data" / "archive" / "debian-versions.txt"

EDGE_CASES = [
    ("1:1.0", "2.0"),  # an epoch outranks any upstream version
    ("1:3.0-2", "3.5-1"),
    ("0:1.0", "1.0"),  # epoch 0 is no epoch
    ("1.0~rc1-1", "1.0-1"),  # ~ sorts before anything, even the end of the string
    ("1.0~~a", "1.0~"),
    ("1.0~", "1.0"),
    ("1.0-1", "1.0-1+deb12u1"),  # a stable update is newer than the release
    ("1.0-1+deb12u1", "1.0-1+deb12u2"),
    ("1.0-1+deb12u9", "1.0-1+deb12u10"),  # digits compare as numbers
    ("1.0-1+b1", "1.0-1+deb12u1"),  # a binNMU against a stable update
    ("1.0-1~deb12u1", "1.0-1"),  # a backport-style ~ sorts below the release
    ("3.0.14-1~deb12u2", "3.0.15-1~deb12u1"),
    ("2.36-9+deb12u3", "2.36-9+deb12u13"),
    ("1.0a", "1.0+"),  # letters sort before non-letters
    ("1.0", "1.0.0"),
    ("1.0-0", "1.0"),
    ("10", "9"),
    ("1.2.3", "1.2.3"),
    ("2:0.1", "1:9.9"),
    ("1.0+dfsg-1", "1.0-1"),
    ("1.0.0~git20200101-1", "1.0.0-1"),
    ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12"),
    ("252.30-1~deb12u2", "252.31-1~deb12u1"),
    ("1:2.38.1-5+deb12u1", "1:2.38.1-5+deb12u3"),
]


def _python(a: str, b: str) -> str:
    left, right = Version(a), Version(b)
    return "lt" if left < right else "gt" if left > right else "eq"


def _dpkg(pairs: list[tuple[str, str]]) -> list[str]:
    """dpkg's verdict for every pair, in one shell loop (a fork per comparison, no Python each)."""
    script = (
        'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo lt; '
        'elif dpkg --compare-versions "$a" eq "$b"; then echo eq; else echo gt; fi; done'
    )
    result = subprocess.run(
        ["sh", "-c", script],
        input="".join(f"{a} {b}\n" for a, b in pairs),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return result.stdout.split()


def _real_versions() -> list[str]:
    lines = VERSIONS_FILE.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_edge_cases_agree_with_dpkg() -> None:
    pairs = EDGE_CASES + [(b, a) for a, b in EDGE_CASES]
    assert [_python(a, b) for a, b in pairs] == _dpkg(pairs)


def test_real_versions_agree_with_dpkg() -> None:
    versions = _real_versions()
    assert len(versions) > 600
    ordered = sorted(versions, key=functools.cmp_to_key(lambda a, b: -1 if Version(a) < Version(b) else 1))
    pairs = list(itertools.pairwise(ordered))
    rnd = random.Random(14)
    pairs += [(rnd.choice(versions), rnd.choice(versions)) for _ in range(400)]
    expected = _dpkg(pairs)
    actual = [_python(a, b) for a, b in pairs]
    disagreements = [(a, b, p, d) for (a, b), p, d in zip(pairs, actual, expected, strict=True) if p != d]
    assert disagreements == []
    assert len(pairs) > 1000
    # Every kind of version the archive uses is represented.
    assert any(":" in v for v in versions) and any("~" in v for v in versions)
    assert any("+deb12u" in v for v in versions) and any("+b" in v for v in versions)


def test_cve_id_pattern() -> None:
    text = "Fix CVE-2024-1234 and CVE-2021-44228, (CVE-2023-123456). Not CVE-24-1 nor XCVE-2024-1111x."
    assert CVE_ID.findall(text) == ["CVE-2024-1234", "CVE-2021-44228", "CVE-2023-123456"]
