"""Liveness of the things HotDash cannot work without: the database and the broker."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError, connection


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
