"""Liveness of the things HotDash cannot work without (the database and the broker), and the
middleware that lets platform probes reach ``/health``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse


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
            from hotdash.views import health

            return health(request)
        return self.get_response(request)
