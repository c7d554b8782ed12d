"""The house error pages everywhere, and refused requests logged as one quiet line.

Production (DEBUG off) renders templates/404.html, 403.html and 500.html through Django's
default handlers. With DEBUG on, Django answers a 404 with its technical page instead, which
is the first thing a new user of ``make run`` meets; ``HouseNotFoundMiddleware`` answers with
the house page there too (the technical 500 page stays: it is the developer's tool).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import Http404, HttpRequest, HttpResponse
from django.views.defaults import page_not_found


class HouseNotFoundMiddleware:
    """DEBUG only: a 404 for a URL that matched nothing, or an Http404 a view raised, gets the
    house page rather than Django's technical one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.DEBUG:
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A request that resolved to no view has no resolver_match; its 404 is the technical
        # page. (A view's own 404 answer, such as the API's JSON, is left as it is.)
        if response.status_code == 404 and getattr(request, "resolver_match", None) is None:
            house = page_not_found(request, Http404())
            # Django logged the 404 when it made the technical page; this one replaces it.
            house._has_been_logged = getattr(response, "_has_been_logged", False)
            return house
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return page_not_found(request, exception)
        return None


class RefusalsWithoutTraceback(logging.Filter):
    """A refused request (a 4xx: permission denied, a bad CSRF token, a suspicious header) is
    routine: its record keeps the one-line message and loses the traceback. Server errors (5xx)
    keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
