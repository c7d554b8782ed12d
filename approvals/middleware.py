"""The client address of a Django admin request, for the audit events its changes record.

The admin writes its change log (LogEntry) without the request, and approvals.signals audits
each LogEntry as it is saved: this middleware tells that receiver where the change came from.
Only admin views set it, so a LogEntry written anywhere else (a shell, a migration) has no IP.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

from hotdash.permissions import client_ip

admin_client_ip: ContextVar[str | None] = ContextVar("admin_client_ip", default=None)


class AdminClientIPMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = admin_client_ip.set(None)
        try:
            return self.get_response(request)
        finally:
            admin_client_ip.reset(token)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> None:
        if request.resolver_match and request.resolver_match.app_name == "admin":
            admin_client_ip.set(client_ip(request))
