"""``{% state_badge state label %}``: a state as a badge (components/_state_badge.html), the
label defaulting to the state itself. Python code that builds HTML itself uses
``state_badge_html``."""

from __future__ import annotations

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def state_badge_html(state: object, label: object = "") -> SafeString:
    label = label or state
    # Both escaped (html.escape, which Django's escape wraps, without its per-call overhead).
    return mark_safe(f'<span class="state state-{escape(str(state))}">{escape(str(label))}</span>')


register.simple_tag(state_badge_html, name="state_badge")
