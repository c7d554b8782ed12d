"""Role checks for views: login is enforced by middleware, roles here (403 when missing)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

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
    """The peer address as Django sees it (set a trusted proxy header upstream if needed)."""
    return request.META.get("REMOTE_ADDR") or None
