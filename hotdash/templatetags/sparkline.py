"""``{% sparkline values label %}``: a small inline SVG line of ``values`` (oldest first),
drawn on the server, so no charting library runs in the browser. The label names what it
shows for screen readers, with the range of the values."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()

WIDTH, HEIGHT, MARGIN = 96, 24, 2


def sparkline_points(values: list[float]) -> str:
    """The polyline's points: evenly spaced left to right, 0 at the bottom, the largest value
    at the top (a flat line for equal values)."""
    top = max(values) or 1
    step = (WIDTH - 2 * MARGIN) / (len(values) - 1)
    span = HEIGHT - 2 * MARGIN
    return " ".join(
        f"{MARGIN + i * step:.1f},{HEIGHT - MARGIN - value / top * span:.1f}"
        for i, value in enumerate(values)
    )


@register.simple_tag
def sparkline(values: list[float], label: str, unit: str = "ms"):
    if len(values) < 2:
        return format_html('<span class="muted">{}</span>', "not enough probes for a trend")
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}: {}–{} {}"><polyline points="{}"/></svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        label,
        min(values),
        max(values),
        unit,
        sparkline_points(values),
    )
