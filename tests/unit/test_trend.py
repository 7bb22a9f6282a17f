from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import pytest

from hardening.cli import main
from hardening.errors import ExitCode, ReportInputError
from hardening.findings import Severity
from hardening.history import GateResult, HistoryRecord, SeverityCounts, append_record, load_history
from hardening.pending.updates import known_sightings, latencies, load_updates
from hardening.trend import COLOURS, nice_step, render_markdown, render_svg, write_trends
from tests.conftest import REPO_ROOT

NS = {"svg": "http://www.w3.org/2000/svg"}
IMAGE = "python-secure"
START = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
LABELS = ("critical", "high", "medium", "low", "unknown")

# (critical, high, medium, low, unknown) per scan, chronological; values chosen so that every
# severity rises and falls and several severities tie on some dates.
SERIES = [
    (0, 1, 6, 14, 2),
    (0, 3, 7, 14, 2),
    (1, 3, 7, 15, 2),
    (0, 0, 4, 13, 1),
    (2, 1, 4, 13, 0),
    (0, 0, 3, 12, 0),
]


def make_records(series: list[tuple[int, int, int, int, int]] = SERIES) -> list[HistoryRecord]:
    return [
        HistoryRecord(
            date=START + timedelta(days=3 * i, hours=i),
            image=IMAGE,
            digest="sha256:" + f"{i:02x}" * 32,
            counts=SeverityCounts(*values),
            gate=GateResult.FAILED if values[0] else GateResult.PASSED,
            db_date=START + timedelta(days=3 * i),
            trivy_version="0.76.0",
        )
        for i, values in enumerate(series)
    ]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))  # noqa: S314 - our own output, not untrusted input


def polylines(root: ET.Element) -> dict[str, list[tuple[float, float]]]:
    lines: dict[str, list[tuple[float, float]]] = {}
    for node in root.iter(f"{{{NS['svg']}}}polyline"):
        severity = node.attrib["data-severity"]
        assert severity not in lines, f"two polylines for {severity}"
        points = [tuple(float(v) for v in pair.split(",")) for pair in node.attrib["points"].split()]
        lines[severity] = [(x, y) for x, y in points]
    return lines


def texts(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.iter(f"{{{NS['svg']}}}text")]


def test_svg_root_title_and_viewbox() -> None:
    root = parse(render_svg(IMAGE, make_records()))
    assert root.tag == f"{{{NS['svg']}}}svg"
    assert re.fullmatch(r"0 0 \d+ \d+", root.attrib["viewBox"])
    title = root.find("svg:title", NS)
    assert title is not None and IMAGE in (title.text or "")
    assert any(IMAGE in text for text in texts(root))


def test_one_polyline_per_severity_with_a_point_per_scan_in_date_order() -> None:
    records = make_records()
    lines = polylines(parse(render_svg(IMAGE, list(reversed(records)))))  # order given must not matter
    assert sorted(lines) == sorted(LABELS)
    for points in lines.values():
        assert len(points) == len(records)
        xs = [x for x, _ in points]
        assert xs == sorted(xs) and len(set(xs)) == len(xs)


def test_y_positions_follow_the_counts() -> None:
    records = make_records()
    lines = polylines(parse(render_svg(IMAGE, records)))
    # Higher count, smaller y (SVG's y grows downwards); equal counts, equal y. Checked within a
    # series over time and across series at the same date.
    samples = [
        (record.counts.of(Severity[label.upper()]), lines[label][i][1])
        for label in LABELS
        for i, record in enumerate(records)
    ]
    for (count_a, y_a), (count_b, y_b) in combinations(samples, 2):
        if count_a > count_b:
            assert y_a < y_b
        elif count_a == count_b:
            assert y_a == pytest.approx(y_b)


def test_x_positions_are_proportional_to_time() -> None:
    records = make_records([(0, 0, 0, 0, 0)] * 3)
    records[2] = HistoryRecord(
        START + timedelta(days=30), IMAGE, records[2].digest, records[2].counts, None, None, None
    )
    records[1] = HistoryRecord(
        START + timedelta(days=10), IMAGE, records[1].digest, records[1].counts, None, None, None
    )
    (x0, _), (x1, _), (x2, _) = polylines(parse(render_svg(IMAGE, records)))["high"]
    assert (x1 - x0) * 2 == pytest.approx(x2 - x1, abs=0.2)  # coordinates carry one decimal


def test_axes_labels_ticks_and_legend() -> None:
    records = make_records()
    root = parse(render_svg(IMAGE, records))
    words = texts(root)
    assert "scan date (UTC)" in words
    assert "open findings (count)" in words
    # Date ticks: first and last scan dates labelled, in order.
    dates = [w for w in words if re.fullmatch(r"\d{4}-\d{2}-\d{2}", w)]
    assert dates[0] == "2026-05-04" and dates[-1] == records[-1].date.strftime("%Y-%m-%d")
    assert dates == sorted(dates)
    # Count ticks start at 0 and reach at least the highest count.
    legend = root.find("svg:g[@class='legend']", NS)
    assert legend is not None
    assert [t.text for t in legend.iter(f"{{{NS['svg']}}}text")][1:] == list(LABELS)
    y_axis = root.find("svg:g[@class='axis y-axis']", NS)
    assert y_axis is not None
    ticks = [int(t.text or "") for t in y_axis.iter(f"{{{NS['svg']}}}text") if (t.text or "").isdigit()]
    assert ticks[0] == 0 and ticks == sorted(ticks) and ticks[-1] >= 15


def test_colours_are_consistent_between_lines_and_legend() -> None:
    root = parse(render_svg(IMAGE, make_records()))
    for node in root.iter(f"{{{NS['svg']}}}polyline"):
        assert node.attrib["stroke"] == COLOURS[Severity[node.attrib["data-severity"].upper()]]
    legend = root.find("svg:g[@class='legend']", NS)
    assert legend is not None
    strokes = [line.attrib["stroke"] for line in legend.iter(f"{{{NS['svg']}}}line")]
    assert strokes == [COLOURS[Severity[label.upper()]] for label in LABELS]
    assert len(set(COLOURS.values())) == len(Severity)


def test_svg_is_self_contained() -> None:
    svg = render_svg(IMAGE, make_records())
    root = parse(svg)
    tags = {node.tag.split("}")[-1] for node in root.iter()}
    assert not tags & {"script", "foreignObject", "image", "style", "a"}
    assert "http" not in svg.replace(NS["svg"], "")
    assert "@import" not in svg and "url(" not in svg


def test_single_scan_renders_a_visible_point() -> None:
    root = parse(render_svg(IMAGE, make_records(SERIES[:1])))
    assert all(len(points) == 1 for points in polylines(root).values())
    assert len(list(root.iter(f"{{{NS['svg']}}}circle"))) == len(LABELS)


def test_scans_at_one_instant_stay_apart() -> None:
    same = [HistoryRecord(START, IMAGE, r.digest, r.counts, None, None, None) for r in make_records()]
    xs = [x for x, _ in polylines(parse(render_svg(IMAGE, same)))["low"]]
    assert len(set(xs)) == len(xs)


def test_output_is_deterministic() -> None:
    assert render_svg(IMAGE, make_records()) == render_svg(IMAGE, make_records())


@pytest.mark.parametrize(("maximum", "step"), [(0, 1), (1, 1), (6, 1), (7, 2), (15, 5), (31, 10), (480, 100)])
def test_nice_step(maximum: int, step: int) -> None:
    assert nice_step(maximum, 6) == step


def test_markdown_table_newest_first() -> None:
    records = make_records()
    table = render_markdown(IMAGE, records)
    rows = [line for line in table.splitlines() if re.match(r"\| \d{4}-", line)]
    assert len(rows) == len(records)
    header = next(line for line in table.splitlines() if line.startswith("| date"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[1:6] == list(LABELS)
    dates = [row.split("|")[1].strip() for row in rows]
    assert dates == sorted(dates, reverse=True)
    newest = [c.strip() for c in rows[0].strip("|").split("|")]
    assert newest[1:6] == [str(v) for v in SERIES[-1]]
    assert IMAGE in table.splitlines()[0]


def test_write_trends_writes_both_files(tmp_path: Path) -> None:
    for item in make_records():
        append_record(tmp_path / "history", item)
    (files,) = write_trends(load_history(tmp_path / "history"), tmp_path / "out", [], source=tmp_path)
    assert files.svg == tmp_path / "out" / "trend-python-secure.svg"
    assert files.markdown.read_text().startswith("### python-secure")
    parse(files.svg.read_text())


def test_empty_history_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportInputError, match="empty"):
        write_trends({}, tmp_path, [], source=tmp_path)
    with pytest.raises(ReportInputError, match="no scan history for image nope"):
        write_trends({IMAGE: make_records()}, tmp_path, ["nope"], source=tmp_path)
    with pytest.raises(ReportInputError):
        render_svg(IMAGE, [])


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run `harden` through its entry point, which maps errors to exit codes."""

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as info:
            main(["--catalog", str(REPO_ROOT / "hardening.toml"), *args])
        captured = capsys.readouterr()
        return int(info.value.code or 0), captured.out + captured.err

    return run


def test_cli_writes_chart_and_table(tmp_path: Path, run_cli: Callable[..., tuple[int, str]]) -> None:
    for item in make_records():
        append_record(tmp_path / "h", item)
    code, output = run_cli("trend", "--history", str(tmp_path / "h"), "--out", str(tmp_path / "o"))
    assert code == 0, output
    assert "6 scan(s)" in output
    assert (tmp_path / "o" / "trend-python-secure.svg").is_file()
    assert (tmp_path / "o" / "trend-python-secure.md").is_file()


def test_cli_empty_history_exits_2(tmp_path: Path, run_cli: Callable[..., tuple[int, str]]) -> None:
    (tmp_path / "h").mkdir()
    code, message = run_cli("trend", "--history", str(tmp_path / "h"), "--out", str(tmp_path / "o"))
    assert code == ExitCode.BAD_INPUT
    assert "empty" in message
    assert not (tmp_path / "o").exists()


def test_cli_malformed_line_exits_2_naming_the_line(
    tmp_path: Path, run_cli: Callable[..., tuple[int, str]]
) -> None:
    append_record(tmp_path / "h", make_records()[0])
    with (tmp_path / "h" / "python-secure.jsonl").open("a") as handle:
        handle.write('{"date": "yesterday"}\n')
    code, message = run_cli("trend", "--history", str(tmp_path / "h"), "--out", str(tmp_path / "o"))
    assert code == ExitCode.BAD_INPUT
    assert "python-secure.jsonl:2" in message


def test_committed_example_is_up_to_date() -> None:
    """docs/trend-python-secure.svg is what `harden trend` makes of docs/example-history (the scan
    history and, under updates/, the update history that gives the patch latency)."""
    example = REPO_ROOT / "docs" / "example-history"
    records = load_history(example)[IMAGE]
    delays = latencies(load_updates(example)[IMAGE], known=known_sightings([example]))
    assert len(delays) == 7  # six security updates and a point update
    svg = render_svg(IMAGE, records, latencies=delays)
    assert (REPO_ROOT / "docs" / "trend-python-secure.svg").read_text() == svg
    assert (REPO_ROOT / "docs" / "trend-python-secure.md").read_text() == render_markdown(
        IMAGE, records, delays
    )
