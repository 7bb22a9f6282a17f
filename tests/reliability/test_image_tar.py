"""Hostile or damaged image tarballs fail closed: an anomaly the gate fails on, or InspectError
(exit 3: the engine gave us something unreadable, so the result is unknown). The reader's own
unit tests (tests/unit/test_inspect_tarfs.py) cover the mechanics; these follow each case on to
the gate's decision."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from hardening.errors import ExitCode, InspectError
from hardening.findings import Severity
from hardening.gate import GatePolicy, decide
from hardening.inspect.facts import inspect_stream
from hardening.policy.config import merge, parse_policy
from hardening.policy.service import run_checks
from tests.reliability import cases
from tests.reliability.cases import Case, params
from tests.unit.imagetar import directory, file, legacy_save, symlink

POLICY = "version: 1\nfail_level: high\nchecks:\n  anomalies: {severity: high}\n"
GATE = GatePolicy(
    fail_on=Severity.HIGH,
    only_fixable=False,
    max_counts={},
    policy_findings=True,
    suppressions=(),
    baseline_dir=None,
    source=Path("gate.yaml"),
)
MARKER = b"declared-size-marker"


def _with_huge_member() -> bytes:
    data = bytearray(legacy_save([[directory("etc"), file(MARKER.decode(), b"tiny")]]))
    at = data.index(MARKER + b"\0")
    assert at % 512 == 0
    header = data[at : at + 512]
    header[124:136] = b"%011o\0" % (8 << 30)  # 8 GiB declared, four bytes present
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    data[at : at + 512] = header
    return bytes(data)


def _archive(ident: str) -> bytes:
    if ident == "dot-dot-name":
        return legacy_save([[file("../../etc/cron.d/evil", "* * * * * root sh")]])
    if ident == "absolute-name":
        return legacy_save([[file("/etc/absolute", "abs")]])
    if ident == "symlink-loop":
        return legacy_save([[symlink("a", "b"), symlink("b", "a")]])
    if ident == "huge-declared-size":
        return _with_huge_member()
    if ident == "truncated-layer":
        whole = legacy_save([[directory("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n" * 200)]])
        return whole[: len(whole) * 2 // 3]
    assert ident == "no-manifest"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("layer.tar")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


@pytest.mark.parametrize("case", params(cases.IMAGE_TAR_CASES))
def test_hostile_image_tar_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    monkeypatch.chdir(tmp_path)
    data = _archive(case.id)
    policy = merge([("policy.yaml", parse_policy(POLICY, "policy.yaml"))])
    try:
        facts = inspect_stream(io.BytesIO(data), reference="example/app:1")
    except InspectError as exc:
        assert exc.exit_code == ExitCode.INFRASTRUCTURE
        # Names the archive it could not read (a path in the pipeline, <stream> here).
        assert "<stream>" in str(exc), str(exc)
    else:
        findings = run_checks(policy, image="demo", facts=facts, rendered=None)
        assert findings, f"{case.id}: read without an anomaly"
        decision = decide("demo", (), findings, GATE, policy_fail_level=Severity.HIGH)
        assert not decision.passed, f"{case.id}: the gate passed a hostile image"
    assert sorted(os.listdir(tmp_path)) == [], "the inspector wrote to disk"
