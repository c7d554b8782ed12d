from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from hotdash.version import __version__


def hotdash(request: HttpRequest) -> dict[str, object]:
    """Values every page needs: sandbox banner, version, the badge of approvals waiting for
    this user."""
    from approvals.selectors import approval_count_waiting_for

    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "sandbox_mode": settings.SANDBOX_MODE,
        "hotdash_version": __version__,
        "pending_approvals_count": approval_count_waiting_for(user) if authenticated else 0,
    }
