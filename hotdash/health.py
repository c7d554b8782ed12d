"""Liveness of the things HotDash cannot work without (the database and the broker): the
``/health`` view, and the middleware that lets platform probes reach it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hotdash.version import __version__


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Check("database", False, exc.__class__.__name__)
    return Check("database", True, connection.vendor)


def check_broker() -> Check:
    from hotdash.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "broker down"
        return Check("broker", False, exc.__class__.__name__)
    return Check("broker", True, str(transport))


@login_not_required
@require_GET
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    checks = [check_database(), check_broker()]
    healthy = all(check.ok for check in checks)
    body = {
        "status": "ok" if healthy else "unhealthy",
        "version": __version__,
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JsonResponse(body, status=200 if healthy else 503)


class HealthProbeMiddleware:
    """Answers ``/health`` before any other middleware reads the Host header.

    Platform probes (Fly's service checks, load balancers) address a machine by its private
    IP, which is no ALLOWED_HOSTS entry: Django's host validation would answer them 400 and
    the platform would take every machine out of rotation. The probe gets the same answer as
    the view gives anyone; every other path is validated as before.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/health":
            return health(request)
        return self.get_response(request)
