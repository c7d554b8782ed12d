"""Table rows built as HTML in Python, for the pages that list hundreds of rows.

Per-row template nodes (an include per badge, a ``{% url %}`` per link) cost more than the rest
of such a page (docs/benchmarks.md, pages section), so these rows are formatted here, as the
Audit page's are: every interpolated value goes through ``escape`` (the standard library's, which
Django's wraps: same output without the per-call overhead). The markup is that of the template
components named below; change both together.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from django.urls import reverse

from deployments.models import Deploy

STATE_LABELS = dict(Deploy.State.choices)
KIND_LABELS = dict(Deploy.Kind.choices)

# An id no row has, replaced by each row's own (URL patterns put ids in path segments).
_ID_MARKER = "987654321987"


def id_url(name: str) -> Callable[[int], str]:
    """``reverse(name, args=[pk])`` for many ids at the cost of one reverse()."""
    head, tail = reverse(name, args=[int(_ID_MARKER)]).split(_ID_MARKER)
    return lambda pk: f"{head}{pk}{tail}"


def state_badge(state: str, label: str) -> str:
    """components/_state_badge.html."""
    return f'<span class="state state-{escape(state)}">{escape(label or state)}</span>'


def review_link(deploy: Deploy, drawer_url: Callable[[int], str]) -> str:
    """components/_review_link.html; ``drawer_url`` is ``id_url("approvals:deploy-drawer")``."""
    if deploy.state != Deploy.State.AWAITING_APPROVAL:
        return ""
    url = escape(drawer_url(deploy.pk))
    return f'<a href="{url}" hx-get="{url}" hx-target="#drawer-root" hx-swap="innerHTML">Review</a>'


def health_verdict(deploy: Deploy) -> str:
    """deployments/rollback_health.html."""
    title = escape(deploy.health_summary)
    if deploy.health_verified is True:
        return f'<span class="state state-healthy" title="{title}">healthy</span>'
    if deploy.health_verified is False:
        return f'<span class="state state-failing" title="{title}">unhealthy</span>'
    if deploy.is_terminal:
        return '<span class="muted">not verified</span>'
    return '<span class="state state-pending">pending</span>'
