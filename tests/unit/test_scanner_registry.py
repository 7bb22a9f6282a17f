"""Every registered scanner kind yields a working Scanner: the registry has no dead entries."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hardening.errors import UsageError
from hardening.scan.interface import Scanner
from hardening.scan.registry import ScannerKind, ScannerRegistry, ScannerSettings


@pytest.mark.parametrize("kind", list(ScannerKind), ids=lambda kind: kind.value)
def test_every_kind_creates_its_scanner(kind: ScannerKind, tmp_path: Path) -> None:
    scanner = kind.create(ScannerSettings({kind.value: tmp_path / "not-run"}))
    assert isinstance(scanner, Scanner)
    assert not inspect.isabstract(type(scanner))
    assert scanner.name == kind.value
    # Creating a scanner runs nothing: the binary is only looked at when a scan starts.
    assert not (tmp_path / "not-run").exists()


def test_kinds_have_distinct_values() -> None:
    values = [kind.value for kind in ScannerKind]
    assert len(values) == len(set(values))


def test_default_registry_holds_every_kind_and_an_extra_entry_stays_local() -> None:
    default = ScannerRegistry.default()
    assert default.names == tuple(kind.value for kind in ScannerKind)
    extended = default.with_scanner("other", lambda settings: ScannerKind.TRIVY.create(settings))
    assert extended.names == (*default.names, "other")
    assert ScannerRegistry.default().names == default.names
    with pytest.raises(UsageError, match="no scanner named 'nope'") as caught:
        default.create("nope", ScannerSettings())
    assert "trivy" in (caught.value.hint or "")
