from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest

from hotdash.version import __version__


def hotdash(request: HttpRequest) -> dict[str, object]:
    """Values every page needs: sandbox banner, version, the badge of approvals waiting for
    this user. The badge is counted only when a template shows it (templates call a callable
    value): the htmx fragments that poll every few seconds do not."""
    return {
        "sandbox_mode": settings.SANDBOX_MODE,
        "hotdash_version": __version__,
        "pending_approvals_count": _pending_approvals_count(request),
    }


def _pending_approvals_count(request: HttpRequest) -> Callable[[], int]:
    from approvals.selectors import approval_count_waiting_for

    @cache
    def count() -> int:
        user = getattr(request, "user", None)
        return approval_count_waiting_for(user) if user and user.is_authenticated else 0

    return count
