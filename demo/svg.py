"""Small static SVG charts for the reports: lines, bars, a heatmap, a timeline. No scripts.

Every chart is ``<svg class="plot" data-plot=NAME data-points=N>`` and each data mark carries
``class="pt"``, so that a test (or a reader of the DOM) can check that a chart has data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

W, H = 720, 300
_L, _R, _T, _B = 64, 150, 28, 42  # margins: left axis, right legend, title, bottom axis
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if value <= step * exp:
            return step * exp
    return 10.0 * exp


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2g}"


def _frame(name: str, title: str, points: int, body: list[str], height: int = H) -> str:
    return (
        f'<svg class="plot" data-plot="{escape(name)}" data-points="{points}" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">'
        f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
        f"{escape(title)}</text>" + "".join(body) + "</svg>"
    )


def _axes(x0: float, x1: float, ymax: float, x_label: str, y_label: str, pct: bool) -> list[str]:
    out = [
        f'<line x1="{_L}" y1="{H - _B}" x2="{W - _R}" y2="{H - _B}" stroke="#333"/>',
        f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{H - _B}" stroke="#333"/>',
        f'<text x="{(W - _R + _L) / 2}" y="{H - 6}" text-anchor="middle" font-size="11">'
        f"{escape(x_label)}</text>",
        f'<text x="14" y="{(H - _B + _T) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {(H - _B + _T) / 2})">{escape(y_label)}</text>',
    ]
    for i in range(6):
        v = ymax * i / 5
        y = H - _B - (H - _B - _T) * i / 5
        label = f"{v:.0%}" if pct else _fmt(v)
        out.append(
            f'<line x1="{_L}" y1="{y:.1f}" x2="{W - _R}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{label}</text>'
        )
    if x1 > x0:
        for i in range(7):
            v = x0 + (x1 - x0) * i / 6
            x = _L + (W - _L - _R) * i / 6
            out.append(
                f'<text x="{x:.1f}" y="{H - _B + 14}" text-anchor="middle" font-size="10">'
                f"{_fmt(v)}</text>"
            )
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = _T + 14 + 16 * i
        out.append(
            f'<rect x="{W - _R + 12}" y="{y - 9}" width="10" height="10" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{W - _R + 27}" y="{y}" font-size="11">{escape(name)}</text>'
        )
    return out


def line_chart(
    name: str,
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_label: str,
    y_label: str,
    pct: bool = False,
) -> str:
    """One polyline per series, a dot per point."""
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    ymax = 1.0 if pct else _nice_max(max(ys, default=0.0))
    span = (x1 - x0) or 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            _L + (W - _L - _R) * (x - x0) / span,
            H - _B - (H - _B - _T) * min(y, ymax) / ymax,
        )

    body = _axes(x0, x1, ymax, x_label, y_label, pct)
    for i, (label, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = [at(x, y) for x, y in pts]
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        body.append(
            f'<g class="series" data-series="{escape(label)}" data-points="{len(pts)}">'
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
            + "".join(
                f'<circle class="pt" cx="{cx:.1f}" cy="{cy:.1f}" r="1.8" fill="{color}">'
                f"<title>{escape(label)} {x:.2f}: {_fmt(y)}</title></circle>"
                for (cx, cy), (x, y) in zip(coords, pts, strict=True)
            )
            + "</g>"
        )
    return _frame(name, title, len(ys), body + _legend(list(series)))


def bar_chart(
    name: str,
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    y_label: str,
    x_label: str = "",
    pct: bool = False,
) -> str:
    """Grouped bars: one group per category, one bar per series."""
    values = [v for vs in series.values() for v in vs]
    ymax = 1.0 if pct else _nice_max(max(values, default=0.0))
    body = _axes(0, 0, ymax, x_label, y_label, pct)
    n_cat, n_ser = max(1, len(categories)), max(1, len(series))
    group = (W - _L - _R) / n_cat
    bar = group * 0.8 / n_ser
    for s, (label, vs) in enumerate(series.items()):
        color = PALETTE[s % len(PALETTE)]
        for c, v in enumerate(vs):
            h = (H - _B - _T) * min(v, ymax) / ymax
            x = _L + group * c + group * 0.1 + bar * s
            shown = f"{v:.0%}" if pct else _fmt(v)
            body.append(
                f'<rect class="pt" x="{x:.1f}" y="{H - _B - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{escape(categories[c])} '
                f"{escape(label)}: {shown}</title></rect>"
            )
    step = max(1, math.ceil(n_cat / 20))
    for c in range(0, n_cat, step):
        x = _L + group * (c + 0.5)
        body.append(
            f'<text x="{x:.1f}" y="{H - _B + 14}" text-anchor="middle" font-size="9">'
            f"{escape(categories[c][-10:])}</text>"
        )
    return _frame(name, title, len(values), body + _legend(list(series)))


def heatmap(
    name: str,
    title: str,
    rows: Sequence[str],
    cols: Sequence[float],
    values: Sequence[Sequence[float]],
    *,
    x_label: str,
) -> str:
    """A cell per (row, column), darker for higher values in [0, 1]."""
    height = _T + _B + 14 * len(rows)
    cw = (W - _L - _R) / max(1, len(cols))
    body = []
    for r, row in enumerate(rows):
        y = _T + 14 * r
        body.append(
            f'<text x="{_L - 6}" y="{y + 10}" text-anchor="end" font-size="10">{escape(row)}</text>'
        )
        for c, v in enumerate(values[r]):
            body.append(
                f'<rect class="pt" x="{_L + cw * c:.1f}" y="{y}" width="{cw:.1f}" height="13" '
                f'fill="#b2182b" fill-opacity="{min(1.0, max(0.03, v)):.2f}">'
                f"<title>{escape(row)} {cols[c]:.0f}h: {v:.0%}</title></rect>"
            )
    for c in range(0, len(cols), max(1, len(cols) // 9)):
        body.append(
            f'<text x="{_L + cw * (c + 0.5):.1f}" y="{height - _B + 14}" text-anchor="middle" '
            f'font-size="10">{cols[c]:.0f}</text>'
        )
    body.append(
        f'<text x="{(W - _R + _L) / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
        f"{escape(x_label)}</text>"
    )
    return _frame(name, title, sum(len(v) for v in values), body, height)


def timeline(
    name: str, title: str, rows: Sequence[str], points: Sequence[tuple[float, str, str]], *,
    x0: float, x1: float, x_label: str,
) -> str:  # fmt: skip
    """A dot per (x, row, label) on a row per kind."""
    height = _T + _B + 22 * max(1, len(rows))
    span = (x1 - x0) or 1.0
    body = []
    for r, row in enumerate(rows):
        y = _T + 22 * r + 11
        body.append(
            f'<line x1="{_L}" y1="{y}" x2="{W - _R}" y2="{y}" stroke="#eee"/>'
            f'<text x="{W - _R + 8}" y="{y + 4}" font-size="10">{escape(row)}</text>'
        )
    for x, row, label in points:
        cx = _L + (W - _L - _R) * (x - x0) / span
        cy = _T + 22 * rows.index(row) + 11
        body.append(
            f'<circle class="pt" cx="{cx:.1f}" cy="{cy}" r="4" fill="#d62728" fill-opacity="0.7">'
            f"<title>{x:.2f}h {escape(label)}</title></circle>"
        )
    for i in range(7):
        v = x0 + span * i / 6
        body.append(
            f'<text x="{_L + (W - _L - _R) * i / 6:.1f}" y="{height - _B + 14}" '
            f'text-anchor="middle" font-size="10">{_fmt(v)}</text>'
        )
    body.append(
        f'<text x="{(W - _R + _L) / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
        f"{escape(x_label)}</text>"
    )
    return _frame(name, title, len(points), body, height)
