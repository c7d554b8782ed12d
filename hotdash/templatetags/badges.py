"""``{% state_badge state label %}``: a state as a badge (components/_state_badge.html), the
label defaulting to the state itself; ``{% health_verdict deploy %}``: whether a deploy's health
was verified. Python code that builds HTML itself uses ``state_badge_html`` and
``health_verdict_html``."""

from __future__ import annotations

from functools import lru_cache
from html import escape
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


# A page of hundreds of rows asks for the same few state badges over and over.
@lru_cache(maxsize=256)
def state_badge_html(state: object, label: object = "") -> SafeString:
    label = label or state
    # Both escaped (html.escape, which Django's escape wraps, without its per-call overhead).
    return mark_safe(f'<span class="state state-{escape(str(state))}">{escape(str(label))}</span>')


register.simple_tag(state_badge_html, name="state_badge")


def health_verdict_html(*, verified: bool | None, summary: str, terminal: bool) -> SafeString:
    """healthy / unhealthy (the summary as title), or not verified once ended, or pending."""
    title = escape(summary)
    if verified is True:
        return mark_safe(f'<span class="state state-healthy" title="{title}">healthy</span>')
    if verified is False:
        return mark_safe(f'<span class="state state-failing" title="{title}">unhealthy</span>')
    if terminal:
        return mark_safe('<span class="muted">not verified</span>')
    return mark_safe('<span class="state state-pending">pending</span>')


@register.simple_tag(name="health_verdict")
def health_verdict_of(deploy: Any) -> SafeString:
    return health_verdict_html(
        verified=deploy.health_verified,
        summary=deploy.health_summary,
        terminal=deploy.is_terminal,
    )
