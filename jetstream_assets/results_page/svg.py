"""Small server-side SVG charts: a forest plot and a line chart with interval bands.

Drawn here rather than by a plotting library so that the page is one file that opens offline (no CDN, no
bundled JavaScript library) and costs the browser nothing but parsing: hundreds of plots stay fast.
Tooltips are SVG `<title>` elements; colours come from the page's CSS classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

Formatter = Callable[[float], str]

WIDTH = 760
LABEL_WIDTH = 300
MARGIN = 14
ROW_HEIGHT = 22
AXIS_HEIGHT = 22
CHART_HEIGHT = 190


def percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def number(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class ForestRow:
    label: str
    point: float | None
    lower: float | None
    upper: float | None
    significance: str  # "good", "bad", "none" or "missing"
    tooltip: str


@dataclass(frozen=True)
class Series:
    name: str
    colour: int  # index into the page's palette (CSS class `c<i>`)
    x: Sequence[float]
    y: Sequence[float | None]
    lower: Sequence[float | None] | None = None
    upper: Sequence[float | None] | None = None


def _finite(values) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = max(span / count, 1.0) if integer else span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


class _Scale:
    def __init__(self, low: float, high: float, start: float, end: float, pad: float = 0.05):
        if high <= low:
            low, high = low - 1, high + 1
        margin = (high - low) * pad
        self.low, self.high, self.start, self.end = low - margin, high + margin, start, end

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def forest_plot(rows: Sequence[ForestRow], fmt: Formatter = percent, *, css_class: str = "forest") -> str:
    """One row per interval: the point, the interval as a bar, a zero line; missing rows say so."""
    values = _finite([v for r in rows for v in (r.lower, r.upper, r.point)]) + [0.0]
    height = AXIS_HEIGHT + ROW_HEIGHT * max(len(rows), 1) + 6
    x = _Scale(min(values), max(values), LABEL_WIDTH, WIDTH - MARGIN)
    parts = [f'<svg class="{css_class}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
             'role="img" xmlns="http://www.w3.org/2000/svg">']
    parts.extend(_x_axis(x, fmt, height))
    zero = x(0.0)
    parts.append(f'<line class="zero" x1="{zero:.1f}" x2="{zero:.1f}" y1="{AXIS_HEIGHT - 4}" y2="{height}"/>')
    for i, row in enumerate(rows):
        y = AXIS_HEIGHT + ROW_HEIGHT * i + ROW_HEIGHT / 2
        parts.append(f'<g class="row {row.significance}" data-significance="{row.significance}">'
                     f'<title>{escape(row.tooltip)}</title>')
        parts.append(f'<text class="label" x="{LABEL_WIDTH - 8}" y="{y + 4:.1f}">{escape(row.label)}</text>')
        if row.significance == "missing" or row.point is None:
            parts.append(f'<text class="missing" x="{LABEL_WIDTH + 4}" y="{y + 4:.1f}">missing</text></g>')
            continue
        if row.lower is not None and row.upper is not None:
            parts.append(f'<line class="ci" x1="{x(row.lower):.1f}" x2="{x(row.upper):.1f}" '
                         f'y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<circle class="pt" cx="{x(row.point):.1f}" cy="{y:.1f}" r="4"/></g>')
    parts.append("</svg>")
    return "".join(parts)


def _x_axis(x: _Scale, fmt: Formatter, height: float) -> list[str]:
    parts = []
    for tick in _ticks(x.low, x.high):
        px = x(tick)
        parts.append(f'<line class="grid" x1="{px:.1f}" x2="{px:.1f}" y1="{AXIS_HEIGHT - 4}" y2="{height}"/>'
                     f'<text class="tick" x="{px:.1f}" y="{AXIS_HEIGHT - 8}">{escape(fmt(tick))}</text>')
    return parts


def line_chart(series: Sequence[Series], fmt: Formatter = percent, *, x_label: str = "",
               zero_line: bool = True, integer_x: bool = False, css_class: str = "lines") -> str:
    """Lines with optional interval bands (one colour per series) and a legend."""
    xs = _finite([v for s in series for v in s.x])
    ys = _finite([v for s in series for v in (*s.y, *(s.lower or ()), *(s.upper or ()))])
    if zero_line:
        ys.append(0.0)
    if not xs or not ys:
        return ""
    left, right, top, bottom = 64, WIDTH - MARGIN, 10, CHART_HEIGHT - 34
    x = _Scale(min(xs), max(xs), left, right, pad=0.03)
    y = _Scale(min(ys), max(ys), bottom, top)
    parts = [f'<svg class="{css_class}" viewBox="0 0 {WIDTH} {CHART_HEIGHT}" width="{WIDTH}" '
             f'height="{CHART_HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for tick in _ticks(y.low, y.high, 4):
        py = y(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{py:.1f}" y2="{py:.1f}"/>'
                     f'<text class="ytick" x="{left - 6}" y="{py + 4:.1f}">{escape(fmt(tick))}</text>')
    for tick in _ticks(x.low, x.high, 6, integer=integer_x):
        parts.append(f'<text class="tick" x="{x(tick):.1f}" y="{bottom + 16}">{escape(number(tick))}</text>')
    if x_label:
        parts.append(f'<text class="tick" x="{(left + right) / 2:.1f}" y="{bottom + 30}">{escape(x_label)}</text>')
    if zero_line and y.low < 0 < y.high:
        parts.append(f'<line class="zero" x1="{left}" x2="{right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    for s in series:
        parts.append(f'<g class="series c{s.colour % 10}">')
        if s.lower is not None and s.upper is not None:
            band = [(px, lo, hi) for px, lo, hi in zip(s.x, s.lower, s.upper) if lo is not None and hi is not None]
            if len(band) == 1:  # a single window: an error bar, as a band needs two
                px, lo, hi = band[0]
                parts.append(f'<line class="whisker" x1="{x(px):.1f}" x2="{x(px):.1f}" y1="{y(lo):.1f}" '
                             f'y2="{y(hi):.1f}"/>')
            elif band:
                outline = [f"{x(px):.1f},{y(hi):.1f}" for px, _, hi in band]
                outline += [f"{x(px):.1f},{y(lo):.1f}" for px, lo, _ in reversed(band)]
                parts.append(f'<polygon class="band" points="{" ".join(outline)}"/>')
        points = [(px, py) for px, py in zip(s.x, s.y) if py is not None and math.isfinite(py)]
        if len(points) > 1:
            parts.append('<polyline class="line" points="'
                         + " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in points) + '"/>')
        if len(points) <= 30:  # dots with tooltips where they can be told apart
            for px, py in points:
                parts.append(f'<circle class="pt" cx="{x(px):.1f}" cy="{y(py):.1f}" r="3">'
                             f'<title>{escape(s.name)}: {escape(number(px))} → {escape(fmt(py))}</title></circle>')
        parts.append("</g>")
    legend_x = left
    for s in series:
        parts.append(f'<g class="legend c{s.colour % 10}"><rect x="{legend_x}" y="{CHART_HEIGHT - 12}" width="10" '
                     f'height="10"/><text x="{legend_x + 14}" y="{CHART_HEIGHT - 3}">{escape(s.name)}</text></g>')
        legend_x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)
