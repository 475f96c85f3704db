"""Bar charts as inline SVG, drawn on the server: no script, no CDN."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from .stats import Series

WIDTH, HEIGHT, PAD = 600, 160, 24


def bar_chart(series: Series, *, label: Callable[[int], str], tick: Callable[[Series, int], str]) -> Markup:
    """``series`` as an accessible SVG bar chart; ``label`` formats a value, ``tick`` names a point."""
    values = [p.value for p in series.points]
    top = max(values, default=0) or 1
    count = max(len(values), 1)
    slot = (WIDTH - PAD) / count
    bar = max(slot * 0.7, 1)
    parts = [
        f'<svg class="admin-chart" viewBox="0 0 {WIDTH} {HEIGHT + PAD}" role="img" '
        f'aria-label="{escape(series.name)}">',
        f"<title>{escape(series.name)}</title>",
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" '
        'stroke="currentColor" stroke-opacity="0.3"/>',
        f'<text x="0" y="14" font-size="15" fill="currentColor">{escape(label(top))}</text>',
    ]
    for i, value in enumerate(values):
        height = (HEIGHT - 16) * value / top
        x = PAD + i * slot + (slot - bar) / 2
        y = HEIGHT - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="currentColor" '
            f'fill-opacity="0.7"><title>{escape(tick(series, i))}: {escape(label(value))}</title></rect>'
        )
    if values:  # the first and the last point's names, under the axis's ends
        for i, x, anchor in ((0, PAD, "start"), (len(values) - 1, WIDTH, "end")):
            parts.append(
                f'<text x="{x}" y="{HEIGHT + 16}" font-size="15" fill="currentColor" text-anchor="{anchor}">'
                f"{escape(tick(series, i))}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
