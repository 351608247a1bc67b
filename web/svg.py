"""The geometry of the pages' inline SVG pictures, computed on the server (no script, no chart
library): bar charts, bands with their intervals, and a pattern among its neighbours.

Pure: figures in, shapes (coordinates and the text each shape stands for) out. The templates
draw them (web/templates/svg.html), so every label is escaped like any other text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from garden.neighbours import Neighbour, Neighbourhood

WIDTH, HEIGHT = 640, 240  # a chart's viewBox
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 36  # its margins: axis labels go there


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # which of the chart's series (its colour)
    text: str  # what the bar says (its <title>)


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass
class Chart:
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[str]
    width: int = WIDTH
    height: int = HEIGHT
    base: float = HEIGHT - BOTTOM  # the y of the zero line


def bar_chart(categories: list[str], series: dict[str, list[float]], fmt=str) -> Chart:
    """Vertical bars, one group per category and one bar per series in each group; `fmt` shows
    a value. The scale starts at zero and ends at the largest value."""
    top = max((v for values in series.values() for v in values), default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / max(len(categories), 1)
    width = group * 0.8 / max(len(series), 1)
    bars = []
    for s, (name, values) in enumerate(series.items()):
        for i, (category, value) in enumerate(zip(categories, values)):
            h = plot_h * value / top
            label = f"{category}: {fmt(value)}" + (f" ({name})" if len(series) > 1 else "")
            bars.append(Bar(round(LEFT + i * group + group * 0.1 + s * width, 1), round(TOP + plot_h - h, 1),
                            round(width, 1), round(h, 1), s, label))
    every = math.ceil(len(categories) / 24)  # at most 24 labels under the bars
    x_ticks = [Tick(round(LEFT + (i + 0.5) * group, 1), HEIGHT - BOTTOM + 16, c)
               for i, c in enumerate(categories) if i % every == 0]
    y_ticks = [Tick(LEFT - 6, round(TOP + plot_h * (1 - f), 1) + 4, fmt(round(top * f, 4))) for f in (0, 0.5, 1)]
    return Chart(bars, x_ticks, y_ticks, list(series))


@dataclass(frozen=True)
class Band:
    """One row of a precision chart: the share kept as a bar, its 95% interval as a line."""

    y: float
    label: str
    bar_width: float
    low_x: float
    high_x: float
    text: str


BAND_ROW, BAND_LABEL, BAND_PLOT = 24, 300, 300


def band_chart(rows: list[dict]) -> tuple[list[Band], int]:
    """`measured_precision`'s bands (precision, precision_low, precision_high, n per proposer,
    kind and confidence band) as rows of bars on a 0..1 scale; and the picture's height."""
    bands = []
    for i, row in enumerate(rows):
        label = f"{row['proposer']}/{row['model'] or '-'}/{row['kind']} [{row['low']:.1f}, {row['high']:.1f})"
        text = (f"{label}: precision {row['precision']:.2f} ({row['precision_low']:.2f}-{row['precision_high']:.2f}), "
                f"{row['kept']} kept of {row['n']}")
        bands.append(Band(TOP + i * BAND_ROW, label, round(BAND_PLOT * row["precision"], 1),
                          round(BAND_LABEL + BAND_PLOT * row["precision_low"], 1),
                          round(BAND_LABEL + BAND_PLOT * row["precision_high"], 1), text))
    return bands, TOP + len(rows) * BAND_ROW + 20


# --- a pattern among its neighbours -------------------------------------------------------------

PICTURE_W, PICTURE_H, RADIUS, NODE, MIDDLE = 640, 420, 150, 6, 10
MOST_NEIGHBOURS = 24  # drawn; the page's lists hold them all
LABEL_CHARS = 26


@dataclass(frozen=True)
class Node:
    slug: str
    x: float
    y: float
    label: str  # shortened to fit; `title` has it whole
    title: str
    anchor: str  # text-anchor of the label
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    via: str  # inferred | curated
    direction: str  # out | in: the arrow points away from the pattern or at it
    text: str


@dataclass
class Picture:
    centre: Node
    nodes: list[Node]
    edges: list[Edge]
    left_out: int  # neighbours not drawn (more than MOST_NEIGHBOURS)
    width: int = PICTURE_W
    height: int = PICTURE_H
    kinds: list[tuple[str, str]] = field(default_factory=lambda: [
        ("inferred", "out"), ("inferred", "in"), ("curated", "out"), ("curated", "in")])


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def neighbour_picture(found: Neighbourhood) -> Picture:
    """The pattern in the middle, its neighbours on a circle around it, one edge per link
    (several links with one neighbour side by side)."""
    cx, cy = PICTURE_W / 2, PICTURE_H / 2
    links: dict[str, list[Neighbour]] = {}
    for n in found.neighbours:
        links.setdefault(n.slug, []).append(n)
    drawn = list(links)[:MOST_NEIGHBOURS]
    name = found.title or found.slug
    centre = Node(found.slug, cx, cy, _short(name), name, "middle", cx, cy + MIDDLE + 16)
    nodes, edges = [], []
    for i, slug in enumerate(drawn):
        angle = -math.pi / 2 + 2 * math.pi * i / len(drawn)
        dx, dy = math.cos(angle), math.sin(angle)
        x, y = cx + RADIUS * dx, cy + RADIUS * dy
        anchor = "start" if dx > 0.2 else "end" if dx < -0.2 else "middle"
        title = links[slug][0].title or slug
        nodes.append(Node(slug, round(x, 1), round(y, 1), _short(title), title, anchor,
                          round(x + 10 * dx, 1), round(y + 14 * dy + 4, 1)))
        ways = links[slug]
        for k, n in enumerate(ways):
            shift = (k - (len(ways) - 1) / 2) * 5  # side by side, across the line
            ox, oy = -dy * shift, dx * shift
            near = (cx + dx * (MIDDLE + 3) + ox, cy + dy * (MIDDLE + 3) + oy)
            far = (x - dx * (NODE + 3) + ox, y - dy * (NODE + 3) + oy)
            start, end = (near, far) if n.direction == "out" else (far, near)
            arrow = f"{name} → {title}" if n.direction == "out" else f"{title} → {name}"
            what = n.via + (f" {n.link_type}" if n.link_type else "") + (
                f", {n.confidence:.2f}" if n.confidence is not None else "")
            edges.append(Edge(round(start[0], 1), round(start[1], 1), round(end[0], 1), round(end[1], 1),
                              n.via, n.direction, f"{arrow} ({what})"))
    return Picture(centre, nodes, edges, len(links) - len(drawn))
