"""``release`` webhooks through POST /webhooks/github and the delivery processor: applied,
ignored with a reason, or recorded as rejected; never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from deployments.models import Release, WebhookDelivery
from deployments.services.webhooks import webhook_delivery_process

SECRET = "release-webhook-test-secret"


@pytest.fixture
def deliver(client, settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    counter = iter(range(1, 1000))

    def post(payload: dict, event: str = "release"):
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = client.post(
            "/webhooks/github",
            data=body,
            content_type="application/json",
            HTTP_X_GITHUB_EVENT=event,
            HTTP_X_GITHUB_DELIVERY=f"release-test-{next(counter)}",
            HTTP_X_HUB_SIGNATURE_256=signature,
        )
        delivery = WebhookDelivery.objects.order_by("-id").first()
        if response.status_code == 202:
            delivery = webhook_delivery_process(delivery_pk=delivery.pk)
        return response, delivery

    return post


def published_payload(sandbox) -> dict:
    delivery = [d for d in sandbox.webhook.deliveries if d["event"] == "release"][-1]
    return json.loads(delivery["body"])


def test_a_published_release_is_stored_and_validated(demo, sandbox, deliver):
    sandbox.publish_release("1.4.0")
    response, delivery = deliver(published_payload(sandbox))
    assert response.status_code == 202
    assert delivery.state == WebhookDelivery.State.PROCESSED and delivery.detail == "release v1.4.0"
    release = Release.objects.get(app=demo, version="1.4.0")
    assert release.validation_results and release.changelog["base"] == "v1.3.1"


def test_a_malformed_tag_is_recorded_as_rejected(demo, sandbox, deliver):
    sandbox.publish_release("1.4.0")
    payload = published_payload(sandbox)
    payload["release"]["tag_name"] = "v1.4.0.final"
    response, delivery = deliver(payload)
    assert response.status_code == 202 and delivery.state == WebhookDelivery.State.PROCESSED
    rejected = Release.objects.get(app=demo, tag="v1.4.0.final")
    assert rejected.validation == Release.Validation.REJECTED


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (
            {"action": "published", "repository": {"full_name": "someone/else"}, "release": {}},
            "unknown repository",
        ),
        (
            {"action": "published", "repository": {"full_name": "hotdash-demo/hot-dash"}},
            "Malformed release payload",
        ),
        (
            {
                "action": "published",
                "repository": {"full_name": "hotdash-demo/hot-dash"},
                "release": {"id": "x", "tag_name": 5},
            },
            "Malformed release payload",
        ),
    ],
)
def test_unknown_apps_and_malformed_payloads_are_ignored_not_500(demo, deliver, payload, detail):
    response, delivery = deliver(payload)
    assert response.status_code == 202
    assert delivery.state == WebhookDelivery.State.IGNORED and detail in delivery.detail
    assert Release.objects.count() == 7
