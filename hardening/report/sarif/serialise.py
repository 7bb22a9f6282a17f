"""The log as bytes: compact for machines, indented for people, and the size GitHub measures.

msgspec's encoder writes what ``json.dumps(..., ensure_ascii=False)`` writes, byte for byte,
at about ten times the speed, with one exception: floats that Python spells with an exponent
(below 1e-4, from 1e16) msgspec spells otherwise (``0.00001``, ``1e-7``, ``1e16`` for Python's
``1e-05``, ``1e-07``, ``1e+16``). Our logs carry floats only as CVSS scores (0.1-10); a log with
any number that could be spelt otherwise goes through ``json`` instead, so the output never
depends on which encoder wrote it. (Not a number and infinity, which no log of ours holds, are
the other difference: ``json`` writes ``NaN``, which is not JSON, msgspec ``null``.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from hardening.atomic import write_bytes_atomic
from hardening.report import github_rules as limits
from hardening.report.sarif.vocabulary import SARIF_VERSION, SCHEMA_URI

# Above this many results the file is for machines (GitHub); below it, for people to read.
_INDENTED_RESULTS = 1000

_ENCODER = msgspec.json.Encoder()

# Every digit made 0, so that a few literal searches find every candidate number.
_ZEROED = bytes.maketrans(b"123456789", b"000000000")


def _spelt_otherwise(data: bytes) -> bool:
    """Whether compact JSON from msgspec holds a number Python would spell otherwise: one with
    an exponent (msgspec writes ``e`` and ``-``, never ``E`` or ``+``) or a fraction starting
    with four zeros. Digit-e-digit is common in hashes inside strings; a candidate counts only
    when it is a whole value in the JSON's syntax, which a string can still fake: that costs the
    slower encoder, never a wrong byte."""
    zeroed = data.translate(_ZEROED)
    for needle in (b"0e0", b"0e-", b"0.0000"):
        at = zeroed.find(needle)
        while at != -1:
            start = at
            while start > 0 and zeroed[start - 1] in b"0.-":
                start -= 1
            end = at + len(needle)
            while end < len(zeroed) and zeroed[end] in b"0.e-":
                end += 1
            whole = start > 0 and zeroed[start - 1] in b":,[" and end < len(zeroed) and zeroed[end] in b",}]"
            if whole and (needle != b"0.0000" or data.startswith((b"0.0000", b"-0.0000"), start)):
                return True
            at = zeroed.find(needle, at + 1)
    return False


def sarif_log_json(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    # $schema and version first: that is where people and sniffers look
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": list(runs)}


def plain_number(value: float) -> bool:
    """Whether msgspec and json spell ``value`` alike: Python writes it without an exponent."""
    return value == 0.0 or 1e-4 <= abs(value) < 1e16


def _compact(doc: Mapping[str, Any], *, numbers_checked: bool = False) -> bytes | None:
    """The compact JSON of ``doc`` as ``json.dumps`` writes it; None when only ``json`` can say.

    ``numbers_checked``: the caller knows every float in ``doc`` is a ``plain_number``.
    """
    data = _ENCODER.encode(doc)
    return None if not numbers_checked and _spelt_otherwise(data) else data


def gzip_size(doc: Mapping[str, Any], *, limit: int, numbers_checked: bool = False) -> int:
    """``github_rules.gzip_size(doc, limit=limit)``: same text measured, written faster."""
    compact = _compact(doc, numbers_checked=numbers_checked)
    if compact is None:
        return limits.gzip_size(doc, limit=limit)
    # json.dumps's default separators, ", " and ": ", which is what GitHub's limit is checked on
    return limits.gzip_size_of(msgspec.json.format(compact, indent=0), limit=limit)


def _results(sarif: Mapping[str, Any]) -> int:
    runs = sarif.get("runs") or []
    return sum(len(run.get("results") or []) for run in runs if isinstance(run, Mapping))


def encode(sarif: Mapping[str, Any]) -> bytes:
    """The file's bytes: compact above ``_INDENTED_RESULTS`` results, else indented by two."""
    indented = _results(sarif) <= _INDENTED_RESULTS
    compact = _compact(sarif)
    if compact is None:
        if indented:
            text = json.dumps(sarif, indent=2, ensure_ascii=False)
        else:
            text = json.dumps(sarif, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"
    if indented:
        return msgspec.json.format(compact, indent=2) + b"\n"
    return compact + b"\n"


def dumps(sarif: Mapping[str, Any]) -> str:
    return encode(sarif).decode("utf-8")


def write_sarif(path: Path, sarif: dict[str, Any]) -> None:
    """Write atomically (temporary file in the same directory, then ``os.replace``)."""
    write_bytes_atomic(path, encode(sarif))
