"""Patch latency in `harden trend`: the SVG panel and the Markdown table, from the update history."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hardening.cli import main
from hardening.history import GateResult, HistoryRecord, SeverityCounts, append_record
from hardening.latency import GOAL_HOURS, OVER, WITHIN, markdown, summary
from hardening.pending.updates import Latency, Released, Seen, _to_line, updates_path
from hardening.trend import Layout, render_markdown, render_svg

NS = {"svg": "http://www.w3.org/2000/svg"}
IMAGE = "python-secure"
START = datetime(2026, 6, 1, 4, tzinfo=UTC)


def records(count: int = 5) -> list[HistoryRecord]:
    return [
        HistoryRecord(
            date=START + timedelta(days=2 * i),
            image=IMAGE,
            digest="sha256:" + f"{i:x}" * 64,
            counts=SeverityCounts(0, i % 2, 3, 7, 1),
            gate=GateResult.PASSED,
            db_date=START,
            trivy_version="0.76.0",
        )
        for i in range(count)
    ]


def delay(source: str, seen_hours_before: float, released: datetime, *, security: bool = True) -> Latency:
    return Latency(
        IMAGE,
        "bookworm-security",
        source,
        "1.0-1+deb12u1",
        security,
        ("CVE-2026-99001",) if security else (),
        released - timedelta(hours=seen_hours_before),
        released,
    )


# Released at the first scan, mid-way, and at the last scan; 6 h, 30 h and 2 h after first seen.
DELAYS = [
    delay("glibc", 6, START),
    delay("openssl", 30, START + timedelta(days=4)),
    delay("zlib", 2, START + timedelta(days=8)),
    delay("tzdata", 500, START + timedelta(days=8), security=False),  # not a security update
]


def test_without_released_security_updates_the_chart_is_unchanged() -> None:
    plain = render_svg(IMAGE, records())
    assert render_svg(IMAGE, records(), latencies=()) == plain
    assert render_svg(IMAGE, records(), latencies=[DELAYS[3]]) == plain  # a point update only
    assert render_markdown(IMAGE, records(), [DELAYS[3]]) == render_markdown(IMAGE, records())


def test_panel_points_goal_line_and_shared_time_axis() -> None:
    layout = Layout()
    root = ET.fromstring(render_svg(IMAGE, records(), layout, latencies=DELAYS))  # noqa: S314 - our own output
    assert root.get("height") == str(layout.height + 300)
    assert "Patch latency: 3 security updates released" in (root.findtext("svg:desc", namespaces=NS) or "")
    panel = root.find("svg:g[@class='latency']", NS)
    assert panel is not None
    circles = panel.findall("svg:g[@class='updates']/svg:circle", NS)
    assert [c.get("data-hours") for c in circles] == ["6", "30", "2"]
    assert [c.get("fill") for c in circles] == [WITHIN, OVER, WITHIN]
    # The first and last releases fall on the first and last scans: the axes line up.
    assert float(circles[0].get("cx") or 0) == layout.left
    assert float(circles[2].get("cx") or 0) == layout.left + layout.plot_width
    goal = panel.find("svg:line[@class='goal']", NS)
    assert goal is not None
    heights = {c.get("data-hours"): float(c.get("cy") or 0) for c in circles}
    goal_y = float(goal.get("y1") or 0)
    assert heights["2"] > goal_y > heights["30"]  # 2 h below the line, 30 h above it (y grows down)
    assert (circles[1].findtext("svg:title", namespaces=NS) or "").startswith("openssl 1.0-1+deb12u1")


def test_markdown_table_and_summary() -> None:
    security = [d for d in DELAYS if d.security]
    assert (
        summary(security)
        == "3 security updates released; median 6 h, longest 30 h; 2 of 3 within the 24 h goal"
    )
    table = markdown(IMAGE, security)
    rows = [line for line in table.splitlines() if line.startswith("| 2026")]
    assert [row.split(" | ")[1] for row in rows] == ["`zlib`", "`openssl`", "`glibc`"]  # newest first
    assert rows[1].endswith("| 30 | **no** |") and rows[0].endswith("| 2 | yes |")
    assert "Docker Hardened Images promise critical and high fixes within 7 working days." in table
    assert GOAL_HOURS == 24.0
    full = render_markdown(IMAGE, records(), DELAYS)
    assert full.index("open vulnerabilities by severity") < full.index("patch latency (security updates)")


def test_harden_trend_reads_the_update_history(tmp_path: Path, capsys: object) -> None:
    history = tmp_path / "history"
    for record in records():
        append_record(history, record)
    seen = Seen(
        IMAGE,
        "bookworm-security",
        "glibc",
        "2.36-9+deb12u7",
        True,
        ("CVE-2026-99001",),
        ("libc6",),
        START,
        START,
    )
    shipped = Released(
        IMAGE,
        "bookworm-security",
        "glibc",
        "2.36-9+deb12u7",
        START + timedelta(hours=5),
        "sha256:" + "e" * 64,
        (),
        "2.36-9+deb12u7",
    )
    path = updates_path(history, IMAGE)
    path.parent.mkdir(parents=True)
    path.write_bytes(_to_line(seen) + _to_line(shipped))
    try:
        main(["trend", "--history", str(history), "--out", str(tmp_path / "out")])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert (
        "patch latency: 1 security update released; median 5 h, longest 5 h; 1 of 1 within the 24 h goal"
        in out
    )
    table = (tmp_path / "out" / "trend-python-secure.md").read_text()
    assert "| `glibc` | `2.36-9+deb12u7` | CVE-2026-99001 | 2026-06-01 04:00 | 5 | yes |" in table
