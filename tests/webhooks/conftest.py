"""Webhook fixtures: signed deliveries into the real endpoint, and the worker's processing step."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from deployments.models import WebhookDelivery
from deployments.services.webhooks import DRAIN_FLAG, webhook_delivery_process
from hotdash import queue

SECRET = "test-webhook-secret-0f6b"


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(event: str, delivery_id: str, signature: str | None) -> dict[str, str]:
    """Django test-client keyword arguments for a GitHub delivery's headers."""
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": delivery_id}
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return headers


@pytest.fixture(autouse=True)
def no_drain_flag() -> None:
    """No drain flag left in Redis by an earlier test (or another run on the same Redis
    database), nor a check of it still to be made: with it set, a stored delivery would send
    no drain."""
    queue.coalesced_flush()
    queue.coalesced_release(DRAIN_FLAG)


@pytest.fixture
def post_delivery(client, settings) -> Callable[..., Any]:
    """POST a delivery to /webhooks/github, signed with the configured secret by default."""
    settings.GITHUB_WEBHOOK_SECRET = SECRET

    def post(
        event: str,
        payload: dict[str, Any] | bytes,
        *,
        delivery_id: str | None = None,
        signature: str | None = "sign",
    ):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if signature == "sign":
            signature = sign(body)
        return client.post(
            "/webhooks/github",
            data=body,
            content_type="application/json",
            **github_headers(event, delivery_id or str(uuid.uuid4()), signature),
        )

    return post


@pytest.fixture
def process_deliveries() -> Callable[[], list[WebhookDelivery]]:
    """Do the worker's job for every delivery still ``received`` (oldest first)."""

    def process() -> list[WebhookDelivery]:
        pending = WebhookDelivery.objects.filter(state=WebhookDelivery.State.RECEIVED)
        return [
            webhook_delivery_process(delivery_pk=pk)
            for pk in pending.order_by("received_at", "id").values_list("pk", flat=True)
        ]

    return process


@pytest.fixture
def hooked_sandbox(sandbox, client, settings):
    """The sandbox's GitHub delivers its webhooks, signed, to our endpoint (in-process)."""
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    sandbox.webhook.secret = SECRET

    def sink(headers: dict[str, str], body: bytes) -> int:
        meta = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in headers.items()
            if name.lower() != "content-type"
        }
        response = client.post(
            "/webhooks/github", data=body, content_type="application/json", **meta
        )
        return response.status_code

    sandbox.webhook.sink = sink
    return sandbox
