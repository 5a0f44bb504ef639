"""One small SVG chart per rule: its value over the recorded window, the threshold, the recover
band, and the time spent pending, firing and recovering shaded behind.

Rendered on the server from numbers only (the one string from configuration, the rule name,
goes into an escaped aria-label), styled by classes from the page's stylesheet: no script, no
inline style, so the page's Content-Security-Policy can forbid both.
"""

import math
from html import escape

from exporter.core.engine import OK, format_value
from exporter.serve.status_history import state_spans

WIDTH, HEIGHT = 360, 96
LEFT, RIGHT, TOP, BOTTOM = 46, 6, 6, 16  # margins around the plot, for the axis labels
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MIN_SPAN_SECONDS = 10.0


def chart_svg(rule: dict, now: float, window: float) -> str:
    """`rule` is one entry of the status document's rules (exporter.serve.status); `window` the
    longest span shown, in seconds up to `now`."""
    points = [(t, _finite(v), state) for t, v, state in rule["history"]]
    # The x axis spans what is recorded, up to the window: a sidecar that started a minute ago
    # shows that minute across the chart instead of squeezed into its right edge.
    window = min(window, max(MIN_SPAN_SECONDS, now - points[0][0])) if points else window
    start = now - window
    low, high = _value_range([v for _, v, _ in points], rule["thresholds"])

    def x(t: float) -> float:
        return LEFT + (min(max(t, start), now) - start) / window * PLOT_W

    def y(v: float) -> float:
        return TOP + (high / 2 - v / 2) / (high / 2 - low / 2) * PLOT_H

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(rule["name"])}: value over the last {_minutes(window)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}"/>',
    ]
    parts += _state_shading(points, now, x)
    parts += _thresholds(rule["thresholds"], y, low, high)
    parts += _value_lines(points, x, y)
    parts += _axis_labels(low, high, window)
    parts.append("</svg>")
    return "".join(parts)


def _finite(value) -> float | None:
    # The JSON form writes NaN/Inf as strings and no data as null: neither can be plotted.
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _value_range(values: list, thresholds: dict) -> tuple[float, float]:
    """The y axis: values and thresholds in view, padded, rounded outwards to a step of 1, 2,
    2.5 or 5 x 10^k (0..25, not 0..23.76). Halves are used so 1e308 and -1e308 do not overflow."""
    known = [v for v in values if v is not None] + [float(t) for t in thresholds.values() if math.isfinite(t)]
    if not known:
        return 0.0, 1.0
    low, high = min(known), max(known)
    if low >= 0 and high > 0 and low <= high * 0.5:
        low = 0.0  # a queue or a ratio reads best from zero
    if high / 2 - low / 2 <= 0:
        half = abs(high) * 0.05 or 0.5
        low, high = low - half, high + half
    pad = (high / 2 - low / 2) * 0.16
    padded = (low - (pad if low != 0 else 0), high + pad)
    if not all(map(math.isfinite, padded)):
        return low, high
    low, high = padded
    rough = (high / 2 - low / 2) / 2.5
    magnitude = 10 ** math.floor(math.log10(rough))
    if magnitude == 0:
        return low, high
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    rounded = (math.floor(low / step) * step, math.ceil(high / step) * step)
    return rounded if all(map(math.isfinite, rounded)) else (low, high)


def _state_shading(points, now: float, x) -> list[str]:
    shaded = []
    for begin, end, state in state_spans([_Point(t, state) for t, _, state in points], now):
        if state == OK:
            continue
        left, right = x(begin), x(end)
        width = max(right - left, 1.0)  # a one-cycle episode stays visible
        shaded.append(
            f'<rect class="st-{escape(state)}" x="{left:.1f}" y="{TOP}" width="{width:.1f}" height="{PLOT_H}"/>'
        )
    return shaded


class _Point:
    __slots__ = ("time", "state")

    def __init__(self, time: float, state: str):
        self.time, self.state = time, state


def _thresholds(thresholds: dict, y, low: float, high: float) -> list[str]:
    trip = thresholds.get("above", thresholds.get("below"))
    recover = thresholds.get("recover_below", thresholds.get("recover_above"))
    drawn = []
    if trip is not None and recover is not None:
        top, bottom = sorted((y(trip), y(recover)))
        drawn.append(
            f'<rect class="band" x="{LEFT}" y="{top:.1f}" width="{PLOT_W}" height="{max(bottom - top, 0.5):.1f}"/>'
        )
    for value, css in ((recover, "recover"), (trip, "threshold")):
        if value is not None and low <= value <= high:
            at = y(value)
            drawn.append(f'<line class="{css}" x1="{LEFT}" y1="{at:.1f}" x2="{LEFT + PLOT_W}" y2="{at:.1f}"/>')
    if trip is not None:
        drawn.append(f'<text class="tlabel" x="{LEFT + PLOT_W - 2}" y="{y(trip) - 2:.1f}">{_short(trip)}</text>')
    return drawn


def _value_lines(points, x, y) -> list[str]:
    """A polyline per run of plottable values: no data leaves a gap instead of a fake line."""
    runs: list[list[str]] = [[]]
    last = None
    for t, v, _ in points:
        if v is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(f"{x(t):.1f},{y(v):.1f}")
        last = (t, v)
    lines = [f'<polyline class="value" points="{" ".join(run)}"/>' for run in runs if len(run) > 1]
    if last is not None:
        lines.append(f'<circle class="now" cx="{x(last[0]):.1f}" cy="{y(last[1]):.1f}" r="2.5"/>')
    return lines


def _axis_labels(low: float, high: float, window: float) -> list[str]:
    return [
        f'<text class="ylabel" x="{LEFT - 4}" y="{TOP + 8}">{_short(high)}</text>',
        f'<text class="ylabel" x="{LEFT - 4}" y="{TOP + PLOT_H}">{_short(low)}</text>',
        f'<text class="xlabel" x="{LEFT}" y="{HEIGHT - 3}">-{_minutes(window)}</text>',
        f'<text class="xlabel end" x="{LEFT + PLOT_W}" y="{HEIGHT - 3}">now</text>',
    ]


def _short(value: float) -> str:
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2g}"
    return format_value(round(value, 3))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}".removesuffix(".0") + "m" if seconds >= 60 else f"{seconds:.0f}s"
