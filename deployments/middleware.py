"""Times on every page in the signed-in user's zone (hotdash/templatetags/times.py).

The zone is kept in the session, copied from the user's choice when they sign in and when they
change it, so reading it costs no query; another signed-in session of the same user follows
a change at its next sign-in."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

TIME_ZONE_SESSION_KEY = "time_zone"


def time_zone_remember(session: Any, time_zone: str) -> None:
    """Use ``time_zone`` for the rest of this session (from its next request)."""
    session[TIME_ZONE_SESSION_KEY] = time_zone


class TimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chosen = request.session.get(TIME_ZONE_SESSION_KEY) if hasattr(request, "session") else None
        if chosen:
            # A zone this machine's tz database has dropped since leaves UTC.
            with suppress(ZoneInfoNotFoundError, ValueError):
                timezone.activate(ZoneInfo(chosen))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
