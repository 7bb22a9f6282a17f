"""Charts of open findings by severity over time, from the scan history.

One SVG and one Markdown table per image. The SVG is built as an element tree, so every text is
escaped by the serializer, and it is self-contained (generic font family, no scripts, no links)
because GitHub shows SVGs from a repository as images and strips anything active.
"""

from __future__ import annotations

# B405 is about parsing untrusted XML; this module only builds and serializes.
import xml.etree.ElementTree as ET  # nosec B405
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hardening import latency
from hardening.atomic import write_text_atomic
from hardening.chart import day, nice_step, num
from hardening.errors import Location, ReportInputError
from hardening.findings import Severity
from hardening.history import SEVERITY_ORDER, HistoryRecord
from hardening.pending.updates import Latency

SVG_NS = "http://www.w3.org/2000/svg"

# Same hue for a severity everywhere (SVG, and whoever copies the palette), dark-to-light by
# severity so the worst line stands out; the low yellow is darkened to stay readable on white.
COLOURS: Mapping[Severity, str] = {
    Severity.CRITICAL: "#8b0000",
    Severity.HIGH: "#e03131",
    Severity.MEDIUM: "#f08c00",
    Severity.LOW: "#c9a400",
    Severity.UNKNOWN: "#868e96",
}


@dataclass(frozen=True)
class Layout:
    """Geometry of one chart, in SVG user units."""

    width: int = 860
    height: int = 420
    left: int = 70  # room for the count ticks and the y label
    right: int = 150  # room for the legend
    top: int = 64  # room for the title and subtitle
    bottom: int = 72  # room for the date ticks and the x label
    max_x_ticks: int = 6
    max_y_ticks: int = 6

    @property
    def plot_width(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def plot_height(self) -> float:
        return float(self.height - self.top - self.bottom)


@dataclass(frozen=True)
class TrendFiles:
    image: str
    svg: Path
    markdown: Path
    records: int
    released: int = 0  # security updates with a patch latency


def svg_name(image: str) -> str:
    return f"trend-{image}.svg"


def markdown_name(image: str) -> str:
    return f"trend-{image}.md"


def _num(value: float) -> str:
    return num(value)


def _date(moment: datetime) -> str:
    return day(moment)


class _Scale:
    def __init__(
        self,
        records: Sequence[HistoryRecord],
        layout: Layout,
        y_max: int,
        window: tuple[datetime, datetime] | None = None,
    ) -> None:
        self.layout = layout
        self.y_max = y_max
        # A window wider than the scans: the latency panel's releases share the time axis.
        self.start, end = window or (records[0].date, records[-1].date)
        self.span = end - self.start
        self.count = len(records)
        self.windowed = window is not None

    def x_of(self, index: int, moment: datetime) -> float:
        layout = self.layout
        if self.windowed and self.span > timedelta(0):
            return layout.left + layout.plot_width * ((moment - self.start) / self.span)
        if self.count == 1:
            return layout.left + layout.plot_width / 2
        if self.span <= timedelta(0):
            # All scans at one instant: spread them by order so each stays visible.
            return layout.left + layout.plot_width * index / (self.count - 1)
        return layout.left + layout.plot_width * ((moment - self.start) / self.span)

    def y_of(self, count: int) -> float:
        layout = self.layout
        return layout.top + layout.plot_height * (1 - count / self.y_max)


def render_svg(
    image: str,
    records: Sequence[HistoryRecord],
    layout: Layout = Layout(),
    latencies: Sequence[Latency] = (),
) -> str:
    """One chart: a polyline per severity, dates on x, open findings on y; below it, when the
    update history has released security updates, their patch latency (``hardening.latency``)."""
    if not records:
        raise ReportInputError(f"no scan history for {image}", hint="scan the image first (harden scan)")
    records = sorted(records, key=lambda r: r.date)
    highest = max(r.counts.of(s) for r in records for s in Severity)
    step = nice_step(highest, layout.max_y_ticks)
    y_max = step * (highest // step + 1)  # headroom: the highest line never sits on the frame
    security = latency.security_latencies(latencies)
    window = latency.window(records[0].date, records[-1].date, security) if security else None
    scale = _Scale(records, layout, y_max, window)
    title = f"{image}: open vulnerabilities by severity"
    first, last = _date(records[0].date), _date(records[-1].date)
    subtitle = f"{len(records)} scan{'s' if len(records) != 1 else ''}, {first} to {last} (UTC)"

    panel = latency.Panel(top=layout.height, left=layout.left, width=layout.plot_width, window=window)
    height = layout.height + (panel.height if security else 0)
    root = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "width": str(layout.width),
            "height": str(height),
            "viewBox": f"0 0 {layout.width} {height}",
            "role": "img",
            "aria-labelledby": "chart-title chart-desc",
            "font-family": "sans-serif",
            "font-size": "12",
        },
    )
    ET.SubElement(root, "title", {"id": "chart-title"}).text = title
    latest = records[-1].counts
    ET.SubElement(root, "desc", {"id": "chart-desc"}).text = (
        f"{subtitle}. Latest: "
        + ", ".join(f"{latest.of(s)} {s.label}" for s in SEVERITY_ORDER)
        + "."
        + (f" Patch latency: {latency.summary(security)}." if security else "")
    )
    ET.SubElement(root, "rect", {"width": "100%", "height": "100%", "fill": "#ffffff"})
    heading = ET.SubElement(
        root,
        "text",
        {"class": "title", "x": str(layout.left), "y": "26", "font-size": "17", "font-weight": "bold"},
    )
    heading.text = title
    ET.SubElement(
        root, "text", {"class": "subtitle", "x": str(layout.left), "y": "46", "fill": "#495057"}
    ).text = subtitle

    _y_axis(root, layout, scale, step)
    _x_axis(root, layout, scale, records)
    _series(root, scale, records)
    _legend(root, layout)
    latency.draw(root, security, panel)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _y_axis(root: ET.Element, layout: Layout, scale: _Scale, step: int) -> None:
    axis = ET.SubElement(root, "g", {"class": "axis y-axis", "font-size": "11", "fill": "#343a40"})
    x0 = layout.left
    x1 = layout.left + layout.plot_width
    for value in range(0, scale.y_max + 1, step):
        y = _num(scale.y_of(value))
        ET.SubElement(
            axis,
            "line",
            {"class": "grid", "x1": str(x0), "x2": _num(x1), "y1": y, "y2": y, "stroke": "#e9ecef"},
        )
        ET.SubElement(
            axis, "text", {"class": "tick", "x": str(x0 - 8), "y": y, "text-anchor": "end", "dy": "0.35em"}
        ).text = str(value)
    ET.SubElement(
        axis,
        "line",
        {
            "x1": str(x0),
            "x2": str(x0),
            "y1": str(layout.top),
            "y2": _num(layout.top + layout.plot_height),
            "stroke": "#343a40",
        },
    )
    centre = _num(layout.top + layout.plot_height / 2)
    ET.SubElement(
        axis,
        "text",
        {
            "class": "axis-label",
            "x": "0",
            "y": "0",
            "text-anchor": "middle",
            "font-size": "12",
            "transform": f"translate(18 {centre}) rotate(-90)",
        },
    ).text = "open findings (count)"


def _x_axis(root: ET.Element, layout: Layout, scale: _Scale, records: Sequence[HistoryRecord]) -> None:
    axis = ET.SubElement(root, "g", {"class": "axis x-axis", "font-size": "11", "fill": "#343a40"})
    base = layout.top + layout.plot_height
    ET.SubElement(
        axis,
        "line",
        {
            "x1": str(layout.left),
            "x2": _num(layout.left + layout.plot_width),
            "y1": _num(base),
            "y2": _num(base),
            "stroke": "#343a40",
        },
    )
    for index, moment in _x_ticks(records, layout.max_x_ticks):
        x = _num(scale.x_of(index, moment))
        ET.SubElement(
            axis, "line", {"x1": x, "x2": x, "y1": _num(base), "y2": _num(base + 5), "stroke": "#343a40"}
        )
        ET.SubElement(
            axis, "text", {"class": "tick", "x": x, "y": _num(base + 20), "text-anchor": "middle"}
        ).text = _date(moment)
    ET.SubElement(
        axis,
        "text",
        {
            "class": "axis-label",
            "x": _num(layout.left + layout.plot_width / 2),
            "y": _num(base + 50),
            "text-anchor": "middle",
            "font-size": "12",
        },
    ).text = "scan date (UTC)"


def _x_ticks(records: Sequence[HistoryRecord], max_ticks: int) -> list[tuple[int, datetime]]:
    """Dates of actual scans, evenly chosen, first and last always labelled, no date twice."""
    count = len(records)
    wanted = min(count, max_ticks)
    indexes = sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)} if wanted > 1 else {0})
    ticks: list[tuple[int, datetime]] = []
    seen: set[str] = set()
    for index in indexes:
        label = _date(records[index].date)
        if label not in seen:
            seen.add(label)
            ticks.append((index, records[index].date))
    return ticks


def _series(root: ET.Element, scale: _Scale, records: Sequence[HistoryRecord]) -> None:
    plot = ET.SubElement(root, "g", {"class": "series", "fill": "none", "stroke-width": "2"})
    # Least severe first, so the critical line is drawn last and stays on top where lines overlap.
    for severity in reversed(SEVERITY_ORDER):
        colour = COLOURS[severity]
        points = [
            (scale.x_of(i, record.date), scale.y_of(record.counts.of(severity)))
            for i, record in enumerate(records)
        ]
        group = ET.SubElement(plot, "g", {"class": f"severity-{severity.label}"})
        ET.SubElement(
            group,
            "polyline",
            {
                "data-severity": severity.label,
                "points": " ".join(f"{_num(x)},{_num(y)}" for x, y in points),
                "stroke": colour,
                "stroke-linejoin": "round",
            },
        )
        # Markers make a single scan visible and carry the exact value as a tooltip.
        for (x, y), record in zip(points, records, strict=True):
            marker = ET.SubElement(group, "circle", {"cx": _num(x), "cy": _num(y), "r": "3", "fill": colour})
            ET.SubElement(
                marker, "title"
            ).text = f"{_date(record.date)}: {record.counts.of(severity)} {severity.label}"


def _legend(root: ET.Element, layout: Layout) -> None:
    x = layout.width - layout.right + 20
    legend = ET.SubElement(root, "g", {"class": "legend", "font-size": "12", "fill": "#212529"})
    ET.SubElement(
        legend, "text", {"x": str(x), "y": str(layout.top + 4), "font-weight": "bold"}
    ).text = "severity"
    for row, severity in enumerate(SEVERITY_ORDER):
        y = layout.top + 24 + row * 22
        colour = COLOURS[severity]
        ET.SubElement(
            legend,
            "line",
            {
                "x1": str(x),
                "x2": str(x + 24),
                "y1": str(y),
                "y2": str(y),
                "stroke": colour,
                "stroke-width": "3",
            },
        )
        ET.SubElement(
            legend, "text", {"class": "legend-label", "x": str(x + 32), "y": str(y), "dy": "0.35em"}
        ).text = severity.label


def render_markdown(image: str, records: Sequence[HistoryRecord], latencies: Sequence[Latency] = ()) -> str:
    """A table with one row per scan, newest first, and one column per severity."""
    if not records:
        raise ReportInputError(f"no scan history for {image}", hint="scan the image first (harden scan)")
    header = ["date (UTC)", *(s.label for s in SEVERITY_ORDER), "gate", "image", "DB date", "trivy"]
    lines = [
        f"### {_cell(image)}: open vulnerabilities by severity",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---", *["---:"] * len(SEVERITY_ORDER), "---", "---", "---", "---"]) + " |",
    ]
    for record in sorted(records, key=lambda r: r.date, reverse=True):
        cells = [
            record.date.strftime("%Y-%m-%d %H:%M"),
            *(str(record.counts.of(s)) for s in SEVERITY_ORDER),
            record.gate.value if record.gate is not None else "-",
            f"`{_short_digest(record.digest)}`",
            _date(record.db_date) if record.db_date is not None else "-",
            _cell(record.trivy_version or "-"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    security = latency.security_latencies(latencies)
    return text + "\n" + latency.markdown(image, security) if security else text


def _short_digest(digest: str) -> str:
    repository, _, hexdigest = digest.rpartition("sha256:")
    return f"{repository}sha256:{hexdigest[:12]}"


def _cell(text: str) -> str:
    # A pipe or newline would end the cell or the row; the rest of Markdown is harmless here.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def select_history(
    history: Mapping[str, Sequence[HistoryRecord]], images: Iterable[str], source: Path
) -> dict[str, Sequence[HistoryRecord]]:
    """The named images' records (all images when none are named); refuses empty histories."""
    names = list(dict.fromkeys(images)) or sorted(history)
    if not names:
        raise ReportInputError(
            "the scan history is empty: there is nothing to chart",
            location=Location(source),
            hint="scan an image first (harden scan), or pass --history with the right directory",
        )
    selected: dict[str, Sequence[HistoryRecord]] = {}
    for name in names:
        records = history.get(name)
        if not records:
            known = ", ".join(image for image, rs in sorted(history.items()) if rs) or "(none)"
            raise ReportInputError(
                f"no scan history for image {name}",
                location=Location(source),
                hint=f"images with history: {known}",
            )
        selected[name] = records
    return selected


def write_trends(
    history: Mapping[str, Sequence[HistoryRecord]],
    out_dir: Path,
    images: Iterable[str],
    *,
    source: Path,
    latencies: Mapping[str, Sequence[Latency]] | None = None,
) -> tuple[TrendFiles, ...]:
    """Render every selected image before writing any file, then write each one atomically.

    ``latencies`` (by image, from the update history) adds the patch-latency panel and table.
    """
    selected = select_history(history, images, source)
    delays = latencies or {}
    rendered = [
        (
            image,
            render_svg(image, records, latencies=delays.get(image, ())),
            render_markdown(image, records, delays.get(image, ())),
            len(records),
            len(latency.security_latencies(delays.get(image, ()))),
        )
        for image, records in selected.items()
    ]
    written: list[TrendFiles] = []
    for image, svg, markdown, count, released in rendered:
        svg_path = out_dir / svg_name(image)
        md_path = out_dir / markdown_name(image)
        write_text_atomic(svg_path, svg)
        write_text_atomic(md_path, markdown)
        written.append(TrendFiles(image, svg_path, md_path, count, released))
    return tuple(written)
