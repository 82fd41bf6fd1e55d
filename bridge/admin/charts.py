"""Server-rendered SVG charts: a line chart and a bar chart, built as markup in Python.

No JavaScript and no inline styles (the admin page's CSP forbids them): shapes carry CSS
classes (``chart-line``, ``chart-bar``, ``chart-dot``, ``series-N``, ``chart-grid``,
``chart-axis``) coloured in admin.css, and SVG geometry attributes. Every chart is an
``<svg role="img">`` with an ``aria-label``, a ``<title>`` and a ``<desc>``; each point or bar
has a ``<title>`` (shown on hover). Pages put the numbers in a table beside the chart.
Every piece of text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
TOP, RIGHT, BOTTOM, LEFT = 14, 12, 26, 60
LEGEND = 18  # extra room on top for a legend when there are several series
MAX_LABELS = 8  # x-axis labels shown at most (thinned evenly, the last always shown)
MAX_DOTS = 92  # a line chart marks each point (with its tooltip) up to this many points
TEXT_WIDTH = 6.2  # about one character of the 11px axis text

Number = float | int
Format = Callable[[Number], str]


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label; None = no value (a gap)."""

    name: str
    values: Sequence[Number | None]


def plain(value: Number) -> str:
    """Whole numbers without decimals, others with two, with thousands separators."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def compact(value: Number) -> str:
    """An axis tick: ``1.2k``, ``3.5M`` for large values, else :func:`plain`."""
    for size, unit in ((1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".removesuffix(".0") + unit
    return plain(value)


def nice_ticks(maximum: float, *, count: int = 4, integer: bool = False) -> list[float]:
    """Round y-axis ticks from 0 covering ``maximum`` (at most ``count`` + 1 of them)."""
    if maximum <= 0:
        maximum = 1
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    for m in (1, 2, 2.5, 5, 10):
        if m * magnitude * count >= maximum and not (integer and m * magnitude % 1):
            step = m * magnitude
            break
    if integer:
        step = max(1, math.ceil(step))
    return [round(step * i, 9) for i in range(math.ceil(maximum / step - 1e-9) + 1)]


class _Frame:
    """The plot area, the y scale and the shared pieces of both charts."""

    def __init__(self, labels: Sequence[str], series: Sequence[Series], *, integer: bool,
                 axis: Format) -> None:
        for s in series:
            if len(s.values) != len(labels):
                raise ValueError(f"series {s.name!r} has {len(s.values)} values for "
                                 f"{len(labels)} labels")
        self.labels, self.series, self.axis = labels, series, axis
        self.top = TOP + (LEGEND if len(series) > 1 else 0)
        self.width, self.height = WIDTH - LEFT - RIGHT, HEIGHT - self.top - BOTTOM
        highest = max((v for s in series for v in s.values if v is not None), default=0)
        self.ticks = nice_ticks(float(highest), integer=integer)
        self.top_value = self.ticks[-1]

    def y(self, value: Number) -> float:
        return self.top + self.height * (1 - float(value) / self.top_value)

    def grid(self) -> list[Markup]:
        out = []
        right = LEFT + self.width
        for tick in self.ticks:
            y = _n(self.y(tick))
            out.append(Markup('<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>')
                       .format(LEFT, right, y, y))
            out.append(Markup('<text x="{}" y="{}" text-anchor="end">{}</text>')
                       .format(LEFT - 6, _n(self.y(tick) + 4), self.axis(tick)))
        base = _n(self.y(0))
        out.append(Markup('<line class="chart-axis" x1="{}" x2="{}" y1="{}" y2="{}"/>')
                   .format(LEFT, right, base, base))
        return out

    def x_labels(self, x: Callable[[int], float]) -> list[Markup]:
        n = len(self.labels)
        if not n:
            return []
        every = max(1, math.ceil(n / MAX_LABELS))
        shown = {i for i in range(0, n, every)}
        if n - 1 not in shown:  # the last label always; drop a neighbour that would collide
            shown.discard(max(shown))
            shown.add(n - 1)
        y = self.top + self.height + 16
        out = []
        for i in sorted(shown):
            half = TEXT_WIDTH * len(self.labels[i]) / 2  # kept inside the picture
            centre = min(max(x(i), half), WIDTH - half)
            out.append(Markup('<text x="{}" y="{}" text-anchor="middle">{}</text>')
                       .format(_n(centre), y, self.labels[i]))
        return out

    def legend(self) -> list[Markup]:
        if len(self.series) < 2:
            return []
        out, x = [], LEFT
        for k, s in enumerate(self.series):
            out.append(Markup('<rect class="chart-bar series-{}" x="{}" y="{}" width="10" '
                              'height="10"/>').format(k, x, TOP - 9))
            out.append(Markup('<text x="{}" y="{}">{}</text>').format(x + 14, TOP, s.name))
            x += 24 + 7 * len(s.name)
        return out


def _n(value: float) -> str:
    """A coordinate, to a tenth of a unit."""
    return f"{value:.1f}"


def _svg(chart_id: str, title: str, desc: str, body: list[Markup]) -> Markup:
    head = Markup(
        '<svg class="chart" id="{0}" viewBox="0 0 {1} {2}" role="img" aria-label="{3}" '
        'aria-describedby="{0}-desc" xmlns="http://www.w3.org/2000/svg" '
        'preserveAspectRatio="xMidYMid meet"><title>{3}</title><desc id="{0}-desc">{4}</desc>'
    ).format(chart_id, WIDTH, HEIGHT, title, desc)
    return head + Markup("").join(body) + Markup("</svg>")


def line_chart(labels: Sequence[str], series: Sequence[Series], *, chart_id: str,
               title: str, desc: str, fmt: Format = plain, axis: Format | None = None,
               integer: bool = False) -> Markup:
    """Lines over ``labels`` (e.g. days); a None value breaks the line. ``fmt`` writes the
    values in the tooltips, ``axis`` (default ``fmt``) the y-axis ticks; ``integer`` keeps
    the ticks whole."""
    frame = _Frame(labels, series, integer=integer, axis=axis or fmt)
    n = len(labels)

    def x(i: int) -> float:
        return LEFT + (frame.width * i / (n - 1) if n > 1 else frame.width / 2)

    body = frame.grid() + frame.x_labels(x) + frame.legend()
    for k, s in enumerate(series):
        run: list[str] = []
        runs = [run]
        for i, value in enumerate(s.values):
            if value is None:
                run = []
                runs.append(run)
            else:
                run.append(f"{_n(x(i))},{_n(frame.y(value))}")
        for points in runs:
            if len(points) > 1:
                body.append(Markup('<polyline class="chart-line series-{}" points="{}"/>')
                            .format(k, " ".join(points)))
        lonely = {i for i, v in enumerate(s.values) if v is not None and
                  (i == 0 or s.values[i - 1] is None) and
                  (i == n - 1 or s.values[i + 1] is None)}
        for i, value in enumerate(s.values):
            if value is None or (n > MAX_DOTS and i not in lonely):
                continue
            body.append(Markup('<circle class="chart-dot series-{}" cx="{}" cy="{}" r="3">'
                               '<title>{}: {}</title></circle>')
                        .format(k, _n(x(i)), _n(frame.y(value)), labels[i], fmt(value)))
    return _svg(chart_id, title, desc, body)


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, chart_id: str,
              title: str, desc: str, fmt: Format = plain, axis: Format | None = None,
              integer: bool = False) -> Markup:
    """Bars per label, the series side by side; None or 0 draws no bar. ``fmt``, ``axis``
    and ``integer`` as for :func:`line_chart`."""
    frame = _Frame(labels, series, integer=integer, axis=axis or fmt)
    n = max(len(labels), 1)
    band = frame.width / n
    bar = band * 0.8 / max(len(series), 1)

    def x(i: int) -> float:
        return LEFT + band * (i + 0.5)

    body = frame.grid() + frame.x_labels(x) + frame.legend()
    base = frame.y(0)
    for k, s in enumerate(series):
        for i, value in enumerate(s.values):
            if not value:
                continue
            top = frame.y(value)
            left = LEFT + band * i + band * 0.1 + bar * k
            name = f"{s.name}, " if len(series) > 1 else ""
            body.append(Markup('<rect class="chart-bar series-{}" x="{}" y="{}" width="{}" '
                               'height="{}"><title>{}: {}{}</title></rect>')
                        .format(k, _n(left), _n(top), _n(max(bar, 0.5)), _n(base - top),
                                labels[i], name, fmt(value)))
    return _svg(chart_id, title, desc, body)
