"""Every registered scanner kind yields a working Scanner: the registry has no dead entries."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hardening.scan.interface import Scanner, ScannerKind


@pytest.mark.parametrize("kind", list(ScannerKind), ids=lambda kind: kind.value)
def test_every_kind_creates_its_scanner(kind: ScannerKind, tmp_path: Path) -> None:
    scanner = kind.create(binary=tmp_path / "not-run")
    assert isinstance(scanner, Scanner)
    assert not inspect.isabstract(type(scanner))
    # Creating a scanner runs nothing: the binary is only looked at when a scan starts.
    assert not (tmp_path / "not-run").exists()


def test_kinds_have_distinct_values() -> None:
    values = [kind.value for kind in ScannerKind]
    assert len(values) == len(set(values))
