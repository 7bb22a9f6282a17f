"""Every registered report format has a writer and a place in the run directory of its own."""

from __future__ import annotations

import inspect

import pytest

from hardening.report.interface import Writer
from hardening.report.registry import ReportFormat, Scope


@pytest.mark.parametrize("fmt", list(ReportFormat), ids=lambda fmt: fmt.value)
def test_every_format_has_a_writer(fmt: ReportFormat) -> None:
    writer = fmt.writer()
    assert isinstance(writer, Writer)
    assert not inspect.isabstract(type(writer))


def test_formats_write_distinct_files() -> None:
    places = [(fmt.spec.scope, fmt.spec.run_file) for fmt in ReportFormat]
    assert len(places) == len(set(places))
    assert {fmt.spec.scope for fmt in ReportFormat} == set(Scope)


def test_report_requires_sarif_only() -> None:
    assert [fmt for fmt in ReportFormat if fmt.spec.required] == [ReportFormat.SARIF]
