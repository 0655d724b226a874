"""Inline SVG charts for the experiment report, drawn in Python.

The report page must open offline and from an e-mail attachment, so charts are plain
SVG markup with no script and no external reference. Every chart has a viewBox and no
fixed size: CSS scales it to the page width, so it never overflows a phone screen.
Because SVG text scales with the chart, each chart has a compact layout too (labels
above the bars, fewer ticks) that the page shows instead on narrow screens, where the
wide one would shrink its text below reading size. Text from the data is escaped here,
at the one place it enters markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Literal

Tone = Literal["positive", "negative", "neutral"]
Unit = Literal["percent", "number"]

# Colour-blind safe (Okabe-Ito blue, Tableau colour-blind dark orange, neutral grey).
TONE_COLOURS: dict[Tone, str] = {"positive": "#0072B2", "negative": "#C85200", "neutral": "#8C8C8C"}
TONE_NAMES: dict[Tone, str] = {
    "positive": "significantly better",
    "negative": "significantly worse",
    "neutral": "not significant",
}
# Okabe-Ito palette without its yellow (unreadable on white); dashes tell lines apart
# for readers who cannot tell the colours apart.
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
SERIES_DASHES = ("", "6 3", "2 3", "8 3 2 3")
AXIS = "#555555"
GRID = "#E3E3E3"
WIDE, COMPACT = 720, 400  # viewBox widths: a laptop column and a phone screen
CHAR_WIDTH = 7.0  # average advance of a 12px sans-serif character, for layout only


@dataclass(frozen=True, slots=True)
class Interval:
    """One bar of a forest row: an estimate and its confidence interval."""

    label: str  # the kind of interval, shown in the legend: "95% CI", "CUPED", ...
    estimate: float | None
    low: float | None
    high: float | None
    tone: Tone
    thickness: float
    value: str  # the estimate as the reader sees it, printed right of the plot
    note: str  # the full numbers, shown as the bar's tooltip
    whiskers: bool = False  # end ticks, so a thin bar's extent stays visible


@dataclass(frozen=True, slots=True)
class ForestRow:
    """One arm (or model term) of a forest plot, with one or more intervals."""

    label: str
    intervals: tuple[Interval, ...]


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a line chart: values by day."""

    name: str
    points: tuple[tuple[date, float], ...]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round axis ticks (steps of 1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    start = math.floor(low / step + 1e-9) * step
    n = math.ceil((high - start) / step - 1e-9)
    return [round(start + i * step, 12) for i in range(n + 1)]


def _decimals(step: float) -> int:
    """Fewest decimals that write every multiple of `step` exactly."""
    return next((d for d in range(7) if abs(round(step, d) - step) < 1e-9 * max(1.0, step)), 6)


def _tick_label(value: float, step: float, unit: Unit) -> str:
    if abs(value) < step * 1e-6:
        return "0%" if unit == "percent" else "0"
    if unit == "percent":
        return f"{value * 100:+.{_decimals(step * 100)}f}%"
    return f"{value:+.{_decimals(step)}f}"


def _clip(text: str, limit: int) -> str:
    """Long names are cut for the layout; the tooltip keeps them whole."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: float, height: float, title: str, compact: bool, body: Iterable[str]) -> str:
    layout = "compact" if compact else "wide"
    return (
        f'<svg class="chart {layout}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def _legend(items: Sequence[tuple[str, str]], width: float) -> tuple[list[str], float]:
    """Swatch-and-label pairs (markup, label) in lines from the top; returns markup, height."""
    parts: list[str] = []
    x, line = 8.0, 0
    for swatch, label in items:
        advance = 26 + CHAR_WIDTH * len(label) + 18
        if x + advance > width and x > 8:
            x, line = 8.0, line + 1
        parts.append(
            f'<g transform="translate({x:.1f},{16 + line * 20})">{swatch}'
            f'<text x="26" y="4" font-size="12" fill="{AXIS}">{escape(label)}</text></g>'
        )
        x += advance
    return parts, (line + 1) * 20 if items else 0.0


def forest_svg(rows: Sequence[ForestRow], *, unit: Unit, title: str, compact: bool = False) -> str:
    """A forest plot: per row, interval bars against a zero line, estimates at the right.

    Wide: row labels left of the plot, each extra interval named beside it. Compact: the
    row label on a line above its bars, extra intervals told apart by the legend only.
    """
    width = COMPACT if compact else WIDE
    x0, x1 = (24.0, width - 64.0) if compact else (190.0, width - 78.0)
    bounds = [0.0]
    for row in rows:
        for iv in row.intervals:
            bounds += [v for v in (iv.low, iv.high, iv.estimate) if v is not None]
    # With nothing to draw, a small symmetric axis keeps the zero line in the middle.
    low, high = (min(bounds), max(bounds)) if len(bounds) > 1 else (-0.1, 0.1)
    ticks = nice_ticks(low, high, 4 if compact else 5)
    step = ticks[1] - ticks[0]

    def sx(v: float) -> float:
        return x0 + (v - ticks[0]) / (ticks[-1] - ticks[0]) * (x1 - x0)

    legend, top = _legend(_forest_legend(rows), width)
    top += 12
    stripes: list[str] = []
    marks: list[str] = []
    y = top
    for index, row in enumerate(rows):
        head = 18.0 if compact else 0.0
        heights = [
            max(24.0, iv.thickness + 14) if i == 0 else iv.thickness + 12
            for i, iv in enumerate(row.intervals)
        ]
        if index % 2 == 0:
            stripes.append(
                f'<rect x="0" y="{y:.1f}" width="{width}" '
                f'height="{head + sum(heights) + 8:.1f}" fill="#F5F5F5"/>'
            )
        if compact:
            marks.append(
                f'<text x="8" y="{y + 17:.1f}" font-size="13" font-weight="600" '
                f'fill="#222222">{escape(_clip(row.label, 48))}</text>'
            )
        mid = y + 4 + head
        for i, (iv, h) in enumerate(zip(row.intervals, heights, strict=True)):
            mid += h / 2
            marks.append(_forest_line(row.label, i, iv, mid, sx, x0, width, compact))
            mid += h / 2
        y += head + sum(heights) + 8
    if not rows:
        marks.append(
            f'<text x="{(x0 + x1) / 2:.1f}" y="{top + 16:.1f}" text-anchor="middle" '
            f'font-size="12" fill="{AXIS}">No arms to compare yet</text>'
        )
        y += 24
    grid = []
    for t in ticks:
        zero = abs(t) < step * 1e-6
        grid.append(
            f'<line x1="{sx(t):.1f}" y1="{top:.1f}" x2="{sx(t):.1f}" y2="{y:.1f}" '
            f'stroke="{AXIS if zero else GRID}" stroke-width="{1.5 if zero else 1}"/>'
            f'<text x="{sx(t):.1f}" y="{y + 16:.1f}" text-anchor="middle" font-size="11" '
            f'fill="{AXIS}">{_tick_label(t, step, unit)}</text>'
        )
    # Painted in order: stripes under the grid, the grid under the bars.
    return _svg(width, y + 26, title, compact, [*legend, *stripes, *grid, *marks])


def _forest_line(
    row_label: str,
    index: int,
    iv: Interval,
    y: float,
    sx: Callable[[float], float],
    x0: float,
    width: float,
    compact: bool,
) -> str:
    """One interval of a row: its name (wide layout), its bar, and its value at the right."""
    first = index == 0
    size, colour, weight = (13, "#222222", 600) if first else (11, "#666666", 400)
    name = ""
    if not compact:
        text = _clip(row_label, 22) if first else iv.label
        name = (
            f'<text x="{x0 - 10:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="{size}" '
            f'font-weight="{weight}" fill="{colour}">{escape(text)}</text>'
        )
    value_colour = colour if iv.tone == "neutral" else TONE_COLOURS[iv.tone]
    value = (
        f'<text x="{width - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="{size}" '
        f'fill="{value_colour}">{escape(iv.value)}</text>'
    )
    return name + _bar(iv, y, sx, row_label) + value


def _forest_legend(rows: Sequence[ForestRow]) -> list[tuple[str, str]]:
    """One entry per kind of interval (by thickness), then one per colour in use."""
    kinds: dict[str, Interval] = {}
    tones: set[Tone] = set()
    for row in rows:
        for iv in row.intervals:
            kinds.setdefault(iv.label, iv)
            tones.add(iv.tone)
    items = [
        (
            f'<line x1="0" y1="0" x2="20" y2="0" stroke="{AXIS}" stroke-width="{iv.thickness}"/>'
            + (_whiskers(0, 20, 0, AXIS) if iv.whiskers else ""),
            label,
        )
        for label, iv in kinds.items()
    ]
    items += [
        (f'<circle cx="10" cy="0" r="5" fill="{TONE_COLOURS[t]}"/>', name)
        for t, name in TONE_NAMES.items()
        if t in tones
    ]
    return items


def _whiskers(xa: float, xb: float, y: float, colour: str) -> str:
    return "".join(
        f'<line x1="{x:.1f}" y1="{y - 5:.1f}" x2="{x:.1f}" y2="{y + 5:.1f}" '
        f'stroke="{colour}" stroke-width="1.5"/>'
        for x in (xa, xb)
    )


def _bar(iv: Interval, y: float, sx: Callable[[float], float], row_label: str) -> str:
    """One interval as a bar with a dot at the estimate, or a note when it is undefined."""
    colour = TONE_COLOURS[iv.tone]
    tip = f"<title>{escape(row_label)}, {escape(iv.label)}: {escape(iv.note)}</title>"
    if iv.low is None or iv.high is None:
        return (
            f'<g>{tip}<text x="{sx(0.0) + 6:.1f}" y="{y + 4:.1f}" font-size="11" '
            f'font-style="italic" fill="{AXIS}">no estimate</text></g>'
        )
    xa, xb = sx(iv.low), sx(iv.high)
    bar = (
        f'<line x1="{xa:.1f}" y1="{y:.1f}" x2="{xb:.1f}" y2="{y:.1f}" '
        f'stroke="{colour}" stroke-width="{iv.thickness}"/>'
    )
    whiskers = _whiskers(xa, xb, y, colour) if iv.whiskers else ""
    dot = ""
    if iv.estimate is not None:
        radius = max(3.0, iv.thickness / 2 + 2)
        dot = (
            f'<circle cx="{sx(iv.estimate):.1f}" cy="{y:.1f}" r="{radius:.1f}" '
            f'fill="{colour}" stroke="#FFFFFF" stroke-width="1.5"/>'
        )
    return f"<g>{tip}{bar}{whiskers}{dot}</g>"


def line_chart_svg(
    series: Sequence[Series], *, title: str, y_label: str, compact: bool = False
) -> str:
    """Lines by day, one per series, from zero up; dates on x, a legend on top."""
    width = COMPACT if compact else WIDE
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(series))]
    legend, legend_h = _legend(
        [
            (
                f'<line x1="0" y1="0" x2="20" y2="0" stroke="{colour}" stroke-width="2.5"'
                f"{_dash(i)}/>",
                _clip(s.name, 30),
            )
            for i, (s, colour) in enumerate(zip(series, colours, strict=True))
        ],
        width,
    )
    days = sorted({d for s in series for d, _ in s.points})
    if not days:
        note = (
            f'<text x="{width / 2}" y="44" text-anchor="middle" font-size="13" '
            f'fill="{AXIS}">No exposures recorded yet</text>'
        )
        return _svg(width, 80, title, compact, [note])
    x0, x1 = (56.0, width - 36.0) if compact else (64.0, width - 40.0)
    top = legend_h + 18
    bottom = top + (180.0 if compact else 220.0)
    first, last = days[0].toordinal(), days[-1].toordinal()
    y_ticks = nice_ticks(0.0, max(1.0, max(v for s in series for _, v in s.points)), 4)

    def sx(d: date) -> float:
        if last == first:
            return (x0 + x1) / 2
        return x0 + (d.toordinal() - first) / (last - first) * (x1 - x0)

    def sy(v: float) -> float:
        return bottom - v / y_ticks[-1] * (bottom - top)

    decimals = _decimals(y_ticks[1] - y_ticks[0])
    parts: list[str] = [*legend]
    for t in y_ticks:
        parts.append(
            f'<line x1="{x0:.1f}" y1="{sy(t):.1f}" x2="{x1:.1f}" y2="{sy(t):.1f}" '
            f'stroke="{AXIS if t == 0 else GRID}"/>'
            f'<text x="{x0 - 8:.1f}" y="{sy(t) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{AXIS}">{t:,.{decimals}f}</text>'
        )
    stride = max(1, math.ceil((last - first) / (3 if compact else 6)))
    for k in range(0, last - first + 1, stride):
        d = date.fromordinal(first + k)
        parts.append(
            f'<text x="{sx(d):.1f}" y="{bottom + 18:.1f}" text-anchor="middle" font-size="11" '
            f'fill="{AXIS}">{d.isoformat()}</text>'
        )
    middle = (top + bottom) / 2
    parts.append(
        f'<text x="14" y="{middle:.1f}" font-size="11" fill="{AXIS}" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle:.1f})">{escape(y_label)}</text>'
    )
    for i, (s, colour) in enumerate(zip(series, colours, strict=True)):
        points = sorted(s.points)
        coords = " ".join(f"{sx(d):.1f},{sy(v):.1f}" for d, v in points)
        dots = "".join(
            f'<circle cx="{sx(d):.1f}" cy="{sy(v):.1f}" r="3" fill="{colour}"/>'
            for d, v in (points if len(points) <= 60 else [])
        )
        parts.append(
            f"<g><title>{escape(s.name)}</title>"
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.5"'
            f"{_dash(i)}/>{dots}</g>"
        )
    return _svg(width, bottom + 30, title, compact, parts)


def _dash(index: int) -> str:
    dash = SERIES_DASHES[index % len(SERIES_DASHES)]
    return f' stroke-dasharray="{dash}"' if dash else ""
