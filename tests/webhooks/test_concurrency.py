"""Concurrent copies of one delivery store it once (the unique delivery id, not a Python check)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from approvals.models import AuditEvent
from deployments.models import WebhookDelivery
from tests.fixtures import GITHUB_WEBHOOK_PAYLOADS
from tests.webhooks.conftest import SECRET, github_headers, sign

BODY = (GITHUB_WEBHOOK_PAYLOADS / "push.payload.json").read_bytes()


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
    assert WebhookDelivery.objects.filter(delivery_id="same-guid").count() == 1
    assert AuditEvent.objects.filter(verb="webhook.received").count() == 1
