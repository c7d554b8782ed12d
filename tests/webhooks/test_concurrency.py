"""Concurrent copies of one delivery store it once (the unique delivery id, not a Python check),
and concurrent processing of it audits it once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from approvals.models import AuditEvent
from deployments.models import WebhookDelivery
from deployments.services.webhooks import webhook_delivery_process
from tests.fixtures import GITHUB_WEBHOOK_PAYLOADS
from tests.webhooks.conftest import SECRET, github_headers, sign

BODY = (GITHUB_WEBHOOK_PAYLOADS / "push.payload.json").read_bytes()


def process(delivery_pk: int) -> None:
    try:
        webhook_delivery_process(delivery_pk=delivery_pk)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_a_delivery_store_one_row(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET

    def post(_: int) -> int:
        try:
            return (
                Client()
                .post(
                    "/webhooks/github",
                    data=BODY,
                    content_type="application/json",
                    **github_headers("push", "same-guid", sign(BODY)),
                )
                .status_code
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(post, range(24)))
    assert statuses == [200] * 23 + [202]
    [delivery] = WebhookDelivery.objects.filter(delivery_id="same-guid")
    with ThreadPoolExecutor(max_workers=4) as pool:  # the message and its resends, at once
        list(pool.map(process, [delivery.pk] * 4))
    assert AuditEvent.objects.filter(verb="webhook.received").count() == 1
    assert AuditEvent.objects.filter(verb="webhook.ignored").count() == 1


def post_push(delivery_id: str) -> int:
    return (
        Client()
        .post(
            "/webhooks/github",
            data=BODY,
            content_type="application/json",
            **github_headers("push", delivery_id, sign(BODY)),
        )
        .status_code
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delivery_needs_no_health_check_query_and_survives_a_dropped_connection(
    settings, monkeypatch
):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())
    connection.ensure_connection()
    connection.health_check_done = False  # as at the start of each request
    assert post_push("kept-connection") == 202
    assert checks == []  # no SELECT 1 before the INSERT

    dropped = connection.connection.info.backend_pid
    with connection.get_new_connection(connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dropped])
    connection.health_check_done = False
    assert post_push("dropped-connection") == 202
    assert connection.connection.info.backend_pid != dropped
    assert checks == [1]  # only after the INSERT failed
    assert set(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == {
        "kept-connection",
        "dropped-connection",
    }
