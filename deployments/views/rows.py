"""Table rows built as HTML in Python, for the pages that list hundreds of rows.

Per-row template nodes (an include per badge, a ``{% url %}`` per link) cost more than the rest
of such a page (docs/benchmarks.md, pages section), so these rows are formatted here, as the
Audit page's are: every interpolated value goes through ``escape`` (the standard library's, which
Django's wraps: same output without the per-call overhead). Shared pieces (the state badge, the
review link, page URLs) come from the functions the templates use too.
"""

from __future__ import annotations

from html import escape

from deployments.models import Deploy
from deployments.templatetags.environment_status import review_link_of
from hotdash.paths import object_url
from hotdash.templatetags.badges import state_badge_html

STATE_LABELS = dict(Deploy.State.choices)
KIND_LABELS = dict(Deploy.Kind.choices)


def bad_mark(reason: str) -> str:
    """The "marked bad" badge of a release, its reason in the title."""
    return f'<span class="state state-bad" title="{escape(reason)}">marked bad</span>'


def deploy_number_cell(pk: int) -> str:
    """A deploy's number, linking to its page."""
    return f'<a href="{object_url("deployments:deploy-detail", pk)}">#{pk}</a>'


def deploy_state_cell(pk: int, state: str) -> str:
    """components/_state_badge.html, then components/_review_link.html."""
    badge = state_badge_html(state, STATE_LABELS.get(state, state))
    return f"{badge} {review_link_of(pk, state)}"
