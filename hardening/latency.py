"""Patch latency: hours from a security update appearing in the archive to our release carrying it.

Drawn under the open-vulnerability chart of `harden trend` (one point per released update, the
24-hour goal as a dashed line) and tabled under its Markdown table, from the update history
(``hardening.pending.updates``). The start is the first sighting of the update in the archive
— the ``Date`` of the earliest signed Release seen carrying it, an upper bound on when it
appeared, so the figure can only err short by the interval between checks — and the end is the
moment `harden release` pushed an image that carries it.

The goal is under 24 hours; Docker Hardened Images promise critical and high fixes within 7
working days.
"""

from __future__ import annotations

# B405 is about parsing untrusted XML; this module only builds elements for trend's serializer.
import statistics
import xml.etree.ElementTree as ET  # nosec B405
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hardening.chart import day, nice_step, num
from hardening.pending.updates import Latency

GOAL_HOURS = 24.0
PEER = "Docker Hardened Images promise critical and high fixes within 7 working days"
WITHIN = "#2b8a3e"
OVER = "#e03131"


@dataclass(frozen=True)
class Panel:
    """Where the panel goes in the SVG, in user units."""

    top: int
    left: int
    width: float
    window: tuple[datetime, datetime] | None = None  # the time axis shared with the chart above
    height: int = 300
    plot_top: int = 74
    plot_bottom: int = 62
    max_ticks: int = 5

    @property
    def plot_height(self) -> float:
        return float(self.height - self.plot_top - self.plot_bottom)


def window(
    first_scan: datetime, last_scan: datetime, latencies: Sequence[Latency]
) -> tuple[datetime, datetime]:
    """The time axis both charts share: every scan and every release on it."""
    releases = [item.released for item in latencies]
    return min(first_scan, *releases), max(last_scan, *releases)


def security_latencies(latencies: Sequence[Latency]) -> list[Latency]:
    return [item for item in latencies if item.security]


def summary(latencies: Sequence[Latency]) -> str:
    """ "11 security updates released; median 6 h, longest 30.5 h; 10 of 11 within 24 h"."""
    hours = [item.hours for item in latencies]
    within = sum(1 for h in hours if h <= GOAL_HOURS)
    return (
        f"{len(hours)} security update{'s' if len(hours) != 1 else ''} released; median "
        f"{num(statistics.median(hours))} h, longest {num(max(hours))} h; {within} of {len(hours)} "
        f"within the {num(GOAL_HOURS)} h goal"
    )


def draw(root: ET.Element, latencies: Sequence[Latency], panel: Panel) -> None:
    """The panel: a title, hour and date axes, the goal line, a point per released update."""
    items = sorted(latencies, key=lambda item: (item.released, item.source))
    if not items:
        return
    group = ET.SubElement(root, "g", {"class": "latency"})
    top = panel.top
    ET.SubElement(
        group, "text", {"x": str(panel.left), "y": str(top + 22), "font-size": "15", "font-weight": "bold"}
    ).text = "patch latency: hours from a security update in the archive to our release"
    ET.SubElement(
        group, "text", {"class": "subtitle", "x": str(panel.left), "y": str(top + 42), "fill": "#495057"}
    ).text = summary(items)
    ET.SubElement(
        group, "text", {"class": "peer", "x": str(panel.left), "y": str(top + 58), "fill": "#868e96"}
    ).text = PEER
    highest = max(GOAL_HOURS, max(item.hours for item in items))
    step = nice_step(int(highest) + 1, panel.max_ticks)
    y_max = step * (int(highest) // step + 1)
    base = top + panel.plot_top + panel.plot_height

    def y_of(hours: float) -> float:
        return base - panel.plot_height * (hours / y_max)

    start, end = panel.window or (items[0].released, items[-1].released)
    span = end - start

    def x_of(index: int) -> float:
        moment = items[index].released
        if span <= timedelta(0):
            return panel.left + (
                panel.width * index / (len(items) - 1) if len(items) > 1 else panel.width / 2
            )
        return panel.left + panel.width * ((moment - start) / span)

    axis = ET.SubElement(group, "g", {"class": "axis", "font-size": "11", "fill": "#343a40"})
    for value in range(0, y_max + 1, step):
        y = num(y_of(value))
        ET.SubElement(
            axis,
            "line",
            {
                "x1": str(panel.left),
                "x2": num(panel.left + panel.width),
                "y1": y,
                "y2": y,
                "stroke": "#e9ecef",
            },
        )
        ET.SubElement(
            axis, "text", {"x": str(panel.left - 8), "y": y, "text-anchor": "end", "dy": "0.35em"}
        ).text = str(value)
    ET.SubElement(
        axis,
        "line",
        {
            "x1": str(panel.left),
            "x2": num(panel.left + panel.width),
            "y1": num(base),
            "y2": num(base),
            "stroke": "#343a40",
        },
    )
    labelled: set[str] = set()
    for index, item in enumerate(items):
        label = day(item.released)
        if label in labelled:
            continue
        labelled.add(label)
        ET.SubElement(
            axis, "text", {"x": num(x_of(index)), "y": num(base + 18), "text-anchor": "middle"}
        ).text = label
    ET.SubElement(
        axis,
        "text",
        {
            "x": num(panel.left + panel.width / 2),
            "y": num(base + 44),
            "text-anchor": "middle",
            "font-size": "12",
        },
    ).text = "release date (UTC)"
    centre = num(top + panel.plot_top + panel.plot_height / 2)
    ET.SubElement(
        axis,
        "text",
        {
            "x": "0",
            "y": "0",
            "text-anchor": "middle",
            "font-size": "12",
            "transform": f"translate(18 {centre}) rotate(-90)",
        },
    ).text = "hours"
    goal = num(y_of(GOAL_HOURS))
    ET.SubElement(
        group,
        "line",
        {
            "class": "goal",
            "x1": str(panel.left),
            "x2": num(panel.left + panel.width),
            "y1": goal,
            "y2": goal,
            "stroke": "#1c7ed6",
            "stroke-dasharray": "6 4",
        },
    )
    ET.SubElement(
        group, "text", {"x": num(panel.left + panel.width + 6), "y": goal, "dy": "0.35em", "fill": "#1c7ed6"}
    ).text = f"goal {num(GOAL_HOURS)} h"
    points = ET.SubElement(group, "g", {"class": "updates"})
    for index, item in enumerate(items):
        colour = WITHIN if item.hours <= GOAL_HOURS else OVER
        marker = ET.SubElement(
            points,
            "circle",
            {
                "cx": num(x_of(index)),
                "cy": num(y_of(item.hours)),
                "r": "4",
                "fill": colour,
                "data-hours": num(item.hours),
            },
        )
        cves = f" ({', '.join(item.cves)})" if item.cves else ""
        released = item.released.strftime("%Y-%m-%d %H:%M")
        ET.SubElement(
            marker, "title"
        ).text = f"{item.source} {item.version}{cves}: {num(item.hours)} h, released {released}"


def markdown(image: str, latencies: Sequence[Latency]) -> str:
    """A table with a row per released security update, newest first, and a summary line."""
    items = sorted(latencies, key=lambda item: (item.released, item.source), reverse=True)
    if not items:
        return ""
    lines = [
        f"### {_cell(image)}: patch latency (security updates)",
        "",
        f"{summary(items)}. {PEER}.",
        "",
        "| released (UTC) | source package | version | CVEs | first seen in the archive (UTC) | hours "
        "| within 24 h |",
        "| --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for item in items:
        cves = ", ".join(item.cves) if item.cves else "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    item.released.strftime("%Y-%m-%d %H:%M"),
                    f"`{_cell(item.source)}`",
                    f"`{_cell(item.version)}`",
                    _cell(cves),
                    item.first_seen.strftime("%Y-%m-%d %H:%M"),
                    num(item.hours),
                    "yes" if item.hours <= GOAL_HOURS else "**no**",
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
