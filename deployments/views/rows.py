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


def bad_mark(reason: str) -> str:
    """The "marked bad" badge of a release, its reason in the title."""
    return f'<span class="state state-bad" title="{escape(reason)}">marked bad</span>'


class DeployCells:
    """The cells deploy tables share, their URLs reversed once per table."""

    def __init__(self) -> None:
        self._detail_url = id_url("deployments:deploy-detail")
        self._drawer_url = id_url("approvals:deploy-drawer")

    def number(self, pk: int) -> str:
        return f'<a href="{self._detail_url(pk)}">#{pk}</a>'

    def state(self, pk: int, state: str) -> str:
        """components/_state_badge.html, then components/_review_link.html."""
        badge = state_badge(state, STATE_LABELS.get(state, state))
        if state != Deploy.State.AWAITING_APPROVAL:
            return f"{badge} "
        url = self._drawer_url(pk)
        review = f'<a href="{url}" hx-get="{url}" hx-target="#drawer-root" hx-swap="innerHTML">'
        return f"{badge} {review}Review</a>"


def health_verdict(*, verified: bool | None, summary: str, terminal: bool) -> str:
    """deployments/rollback_health.html."""
    title = escape(summary)
    if verified is True:
        return f'<span class="state state-healthy" title="{title}">healthy</span>'
    if verified is False:
        return f'<span class="state state-failing" title="{title}">unhealthy</span>'
    if terminal:
        return '<span class="muted">not verified</span>'
    return '<span class="state state-pending">pending</span>'
