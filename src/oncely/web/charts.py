"""Charts drawn on the server as SVG: no script, no library, themable with CSS classes.

Every text that reaches the SVG goes through ``escape``; numbers are formatted here. Colors
come from classes (``.c-dur``, ``.c-lag``...) in the stylesheet, so the light and dark themes
restyle the charts as they do the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape


def _fmt(x: float) -> str:
    return f"{x:.1f}"


def _seconds(value: float) -> str:
    if value >= 60:
        return f"{value / 60:.1f} min"
    if value >= 1:
        return f"{value:.1f} s"
    return f"{value * 1000:.0f} ms"


def sparkline(values: Sequence[float | None], *, width: int = 80, height: int = 18) -> Markup:
    """Success (1.0) or failure (0.0) of recent runs, oldest first, as small bars."""
    if not values:
        return Markup('<span class="muted">no runs</span>')
    n = len(values)
    bar = width / max(n, 1)
    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(_spark_label(values))}">'
    ]
    for i, v in enumerate(values):
        cls = "ok" if v == 1.0 else ("bad" if v == 0.0 else "other")
        h = height if v != 1.0 else height * 0.6
        parts.append(
            f'<rect class="s-{cls}" x="{_fmt(i * bar + 0.5)}" y="{_fmt(height - h)}" '
            f'width="{_fmt(max(bar - 1, 1))}" height="{_fmt(h)}"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (numbers and escaped text only)


def _spark_label(values: Sequence[float | None]) -> str:
    ok = sum(1 for v in values if v == 1.0)
    return f"{ok} of the last {len(values)} runs succeeded"


def duration_chart(
    points: Sequence[tuple[datetime, float | None, float | None]],
    *,
    width: int = 640,
    height: int = 180,
) -> Markup:
    """Duration and fire lag (seconds) of runs over time: (scheduled_for, duration, lag)."""
    pad_l, pad_r, pad_t, pad_b = 56, 12, 12, 28
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    usable = [p for p in points if p[1] is not None or p[2] is not None]
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Duration and fire lag of the last {len(usable)} runs">'
    )
    if not usable:
        return Markup(  # noqa: S704 (a constant message)
            head + f'<text class="axis" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "No finished runs yet</text></svg>"
        )
    t0 = min(p[0] for p in usable).timestamp()
    t1 = max(p[0] for p in usable).timestamp()
    span = max(t1 - t0, 1.0)
    top = max(max(p[1] or 0.0, p[2] or 0.0) for p in usable) or 1.0
    top *= 1.1

    def x(at: datetime) -> float:
        if t1 == t0:
            return pad_l + inner_w / 2
        return pad_l + (at.timestamp() - t0) / span * inner_w

    def y(v: float) -> float:
        return pad_t + inner_h - v / top * inner_h

    out = [head]
    for frac in (0.0, 0.5, 1.0):
        yy = y(top * frac)
        out.append(
            f'<line class="grid" x1="{pad_l}" x2="{width - pad_r}" '
            f'y1="{_fmt(yy)}" y2="{_fmt(yy)}"/>'
            f'<text class="axis" x="{pad_l - 6}" y="{_fmt(yy + 4)}" text-anchor="end">'
            f"{escape(_seconds(top * frac))}</text>"
        )
    out.append(
        f'<text class="axis" x="{pad_l}" y="{height - 8}">'
        f"{escape(min(p[0] for p in usable).strftime('%Y-%m-%d %H:%M'))}</text>"
        f'<text class="axis" x="{width - pad_r}" y="{height - 8}" text-anchor="end">'
        f"{escape(max(p[0] for p in usable).strftime('%Y-%m-%d %H:%M'))} UTC</text>"
    )
    for index, cls in ((1, "c-dur"), (2, "c-lag")):
        pts = [(x(p[0]), y(float(p[index]))) for p in usable if p[index] is not None]  # type: ignore[arg-type]
        if len(pts) > 1:
            path = " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in pts)
            out.append(f'<polyline class="{cls}" points="{path}"/>')
        for a, b in pts:
            out.append(f'<circle class="{cls}" cx="{_fmt(a)}" cy="{_fmt(b)}" r="2.5"/>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 (numbers and escaped text only)


def month_heatmap(
    weeks: Sequence[Sequence[tuple[int, int, int, str] | None]],
) -> Markup:
    """A month as weeks of days: (day, expected, actual, title) or None outside the month.
    A cell's class says how actual compares with expected."""
    cell, gap = 40, 4
    width = 7 * (cell + gap)
    height = len(weeks) * (cell + gap) + 20
    out = [
        f'<svg class="heat" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Expected against actual fires per day">'
    ]
    for i, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")):
        out.append(
            f'<text class="axis" x="{i * (cell + gap) + cell / 2}" y="12" '
            f'text-anchor="middle">{name}</text>'
        )
    for w, week in enumerate(weeks):
        for d, day in enumerate(week):
            if day is None:
                continue
            number, expected, actual, title = day
            if expected == 0 and actual == 0:
                cls = "h-none"
            elif actual >= expected:
                cls = "h-ok" if actual == expected else "h-extra"
            elif actual == 0:
                cls = "h-miss"
            else:
                cls = "h-some"
            xx, yy = d * (cell + gap), 20 + w * (cell + gap)
            out.append(
                f"<g><title>{escape(title)}</title>"
                f'<rect class="{cls}" x="{xx}" y="{yy}" width="{cell}" height="{cell}" rx="4"/>'
                f'<text class="daynum" x="{xx + 4}" y="{yy + 13}">{number}</text>'
                f'<text class="daycount" x="{xx + cell - 4}" y="{yy + cell - 5}" '
                f'text-anchor="end">{actual}/{expected}</text></g>'
            )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 (numbers and escaped text only)
