"""Role checks for views: login is enforced by middleware, roles here (403 when missing)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse


def role_required(check: Callable[[Any], bool]) -> Callable[..., Any]:
    """Refuse with 403 unless ``check(request.user)`` holds (e.g. ``policy.can_approve``)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not check(request.user):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the peer, unless the peer is one of TRUSTED_PROXIES; then the
    right-most X-Forwarded-For entry that is not a trusted proxy (entries further left are
    whatever the client chose to send)."""
    peer = request.META.get("REMOTE_ADDR") or None
    if not (peer and _trusted_proxy(peer)):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for entry in reversed([entry.strip() for entry in forwarded if entry.strip()]):
        try:
            address = ipaddress.ip_address(entry)
        except ValueError:
            return peer  # a proxy that forwards garbage tells us nothing
        if not _trusted_proxy(entry):
            return str(address)
    return peer


def _trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)
