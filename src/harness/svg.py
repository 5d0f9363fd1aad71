"""Small inline SVG charts for the static dashboard: no script, no external file, no font download.

Every function returns an `<svg>` element as a string with all text escaped. Values are drawn on
a fixed [low, high] axis so charts of different runs compare at a glance.
"""

from __future__ import annotations

from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def _axis(width: int, height: int, pad: int, low: float, high: float, label: str) -> list[str]:
    """Frame, two y-axis tick labels and the axis label."""
    return [
        f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" class="frame"/>',
        f'<text x="{pad - 4}" y="{pad + 4}" class="tick" text-anchor="end">{high:.3g}</text>',
        f'<text x="{pad - 4}" y="{height - pad}" class="tick" text-anchor="end">{low:.3g}</text>',
        f'<text x="{pad}" y="{pad - 6}" class="axis-label">{escape(label)}</text>',
    ]


def line_chart(series: list[tuple[str, list[float]]], label: str, low: float | None = None,
               high: float | None = None, width: int = 360, height: int = 160) -> str:
    """Lines over consecutive points, one per named series, sharing one x axis of point indices.

    Series follow each other on the x axis (stage after stage), so a recipe reads left to right.
    """
    values = [v for _, points in series for v in points]
    if not values:
        return f'<svg class="chart" width="{width}" height="{height}" role="img"><text x="10" y="20">no {escape(label)} logged</text></svg>'
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    pad = 34
    total = sum(len(points) for _, points in series)
    parts = _axis(width, height, pad, low, high, label)
    offset = 0
    for index, (name, points) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        xy = [(_scale(offset + i, 0, max(total - 1, 1), pad, width - pad), _scale(v, low, high, height - pad, pad))
              for i, v in enumerate(points)]
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(name)}: {v:.4f}</title></circle>'
                  for (x, y), v in zip(xy, points)]
        parts.append(f'<text x="{xy[0][0]:.1f}" y="{height - pad + 14}" class="tick" fill="{colour}">{escape(name)}</text>')
        offset += len(points)
    return f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="{escape(label)}">{"".join(parts)}</svg>'


def timeline_chart(points: list[dict], width: int = 720, height: int = 200) -> str:
    """Harness score of each run in launch order, coloured by decision.

    Args:
        points: Dicts with `label` (run), `value` (score or None), `decision` (or None) and `title`.
    """
    pad = 34
    parts = _axis(width, height, pad, 0.0, 1.0, "harness macro ROC-AUC by run, in launch order")
    chance = _scale(0.5, 0, 1, height - pad, pad)
    parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{chance:.1f}" y2="{chance:.1f}" class="chance"/>')
    for index, point in enumerate(points):
        x = _scale(index, 0, max(len(points) - 1, 1), pad + 10, width - pad - 10)
        parts.append(f'<text x="{x:.1f}" y="{height - pad + 14}" class="tick" text-anchor="middle">{escape(point["label"])}</text>')
        if point["value"] is None:
            continue
        y = _scale(point["value"], 0, 1, height - pad, pad)
        decision = point["decision"] or "none"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" class="dot {escape(decision)}">'
                     f'<title>{escape(point["title"])}</title></circle>')
    return f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="run timeline">{"".join(parts)}</svg>'


def score_bar(value: float | None, width: int = 120, height: int = 14) -> str:
    """Draw a horizontal bar of a score in [0, 1] with its value as text; a dash when undefined."""
    if value is None:
        return "&ndash;"
    filled = max(0.0, min(1.0, value)) * width
    return (f'<svg width="{width}" height="{height}" class="bar" role="img" aria-label="{value:.4f}">'
            f'<rect width="{width}" height="{height}" class="bar-bg"/><rect width="{filled:.1f}" height="{height}" class="bar-fg"/>'
            f'</svg> {value:.4f}')
