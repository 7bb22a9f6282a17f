"""`harden db build` refuses a bad OSV export, naming the zip (and member), writing no DB."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from tests.reliability import cases
from tests.reliability.cases import Case, params
from tests.reliability.harness import assert_fails_closed, harden
from tests.unit.test_db_sources import go_record


def _export(path: Path, case: str) -> Path:
    if case == "not-a-zip":
        path.write_text("<html>429 Too Many Requests</html>")
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("GO-2024-0001.json", json.dumps(go_record("GO-2024-0001")))
        if case == "malformed-member":
            archive.writestr("GO-2024-0002.json", json.dumps({"id": "GO-2024-0002", "affected": []}))
    if case == "member-declares-gigabytes":
        data = bytearray(path.read_bytes())
        struct.pack_into("<I", data, data.index(b"PK\x01\x02") + 24, 3 << 30)
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("case", params(cases.OSV_EXPORT_CASES))
def test_a_bad_export_is_refused(tmp_path: Path, case: Case) -> None:
    export = _export(tmp_path / "Go.zip", case.id)
    cache = tmp_path / "cache"
    result = harden(None, "db", "build", str(export), "--cache-dir", str(cache), cwd=tmp_path)
    assert_fails_closed(result, 2, case.words(), cache)
    assert not (cache / "db").exists()
