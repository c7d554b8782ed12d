"""POST /webhooks/github: signatures fail closed, every real payload is accepted when signed,
replays are no-ops, bad input gets a clear 4xx, and the answer never waits for the work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from approvals.models import AuditEvent
from deployments.models import WebhookDelivery
from deployments.services.webhooks import signature_valid
from tests.fixtures import GITHUB_WEBHOOK_PAYLOADS
from tests.webhooks.conftest import SECRET, github_headers, sign

REFERENCE = GITHUB_WEBHOOK_PAYLOADS
PAYLOADS = sorted(REFERENCE.glob("*.json"))
HANDLED = {"pull_request", "push", "release"}


def event_of(path: Path) -> str:
    return path.name.split(".")[0]


def test_reference_payloads_are_present():
    assert len(PAYLOADS) >= 17
    assert {event_of(p) for p in PAYLOADS} >= HANDLED | {"ping", "check_suite"}


def test_githubs_published_test_vector():
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    secret = "It's a Secret to Everybody"
    assert signature_valid(secret=secret, body=b"Hello, World!", header=expected)
    for header in (
        None,
        "",
        expected.removeprefix("sha256="),  # no prefix
        expected.upper().replace("SHA256=", "sha256="),  # wrong-case hex
        "sha1=" + "0" * 40,
        expected[:-1] + "f",
    ):
        assert not signature_valid(secret=secret, body=b"Hello, World!", header=header)
    assert not signature_valid(secret="", body=b"Hello, World!", header=expected)


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_every_reference_payload_is_accepted_when_signed(post_delivery, path):
    event = event_of(path)
    response = post_delivery(event, path.read_bytes(), delivery_id=f"ref-{path.name}")
    if event == "ping":
        assert response.status_code == 200 and response.json()["status"] == "pong"
    elif event in HANDLED:
        assert response.status_code == 202
        delivery = WebhookDelivery.objects.get(delivery_id=f"ref-{path.name}")
        assert delivery.event == event and delivery.state == WebhookDelivery.State.RECEIVED
        assert delivery.payload == json.loads(path.read_bytes())
    else:
        assert response.status_code == 204
        assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
@pytest.mark.parametrize("signature", ["missing", "wrong secret", "tampered"])
def test_every_reference_payload_is_refused_without_a_good_signature(
    post_delivery, path, signature
):
    body = path.read_bytes()
    header = {
        "missing": None,
        "wrong secret": sign(body, "another-hook-secret"),
        "tampered": sign(body + b" "),
    }[signature]
    response = post_delivery(event_of(path), body, delivery_id="d-1", signature=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert not WebhookDelivery.objects.exists()
    [event] = AuditEvent.objects.filter(verb="webhook.refused")
    assert event.actor_name == "github"
    assert event.data["event"] == event_of(path) and event.data["delivery_id"] == "d-1"
    assert event.data["reason"] == ("missing_signature" if header is None else "bad_signature")
    stored = json.dumps(event.data)
    assert "sha256=" not in stored and '"action"' not in stored  # no signature, no body


@pytest.mark.django_db
def test_a_replayed_delivery_is_a_no_op(post_delivery, process_deliveries):
    body = (REFERENCE / "pull_request.opened.payload.json").read_bytes()
    first = post_delivery("pull_request", body, delivery_id="same-guid")
    again = post_delivery("pull_request", body, delivery_id="same-guid")
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert WebhookDelivery.objects.count() == 1
    process_deliveries()
    post_delivery("pull_request", body, delivery_id="same-guid")  # after processing too
    assert WebhookDelivery.objects.count() == 1
    assert AuditEvent.objects.filter(verb="webhook.received").count() == 1


@pytest.mark.django_db
def test_a_replay_keeps_the_stored_delivery_and_costs_one_statement(
    post_delivery, django_assert_num_queries
):
    post_delivery("push", {"ref": "refs/heads/main"}, delivery_id="kept")
    with django_assert_num_queries(1):  # the INSERT … ON CONFLICT DO NOTHING: no error to undo
        again = post_delivery("push", {"ref": "refs/heads/other"}, delivery_id="kept")
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "delivery": "kept"}
    [stored] = WebhookDelivery.objects.all()
    assert (stored.delivery_id, stored.payload) == ("kept", {"ref": "refs/heads/main"})


@pytest.mark.django_db
def test_the_task_is_sent_only_once_the_delivery_is_committed(
    post_delivery, django_capture_on_commit_callbacks
):
    body = (REFERENCE / "push.payload.json").read_bytes()
    with django_capture_on_commit_callbacks() as callbacks:
        post_delivery("push", body, delivery_id="d-commit")
        post_delivery("push", body, delivery_id="d-commit")
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_no_secret_configured_refuses_every_delivery(client, settings):
    settings.GITHUB_WEBHOOK_SECRET = ""
    body = (REFERENCE / "ping.payload.json").read_bytes()
    for signature in (None, sign(body, ""), sign(body)):
        response = client.post(
            "/webhooks/github",
            data=body,
            content_type="application/json",
            **github_headers("ping", "d-2", signature),
        )
        assert response.status_code == 503
    assert not WebhookDelivery.objects.exists()
    [refused] = AuditEvent.objects.filter(verb="webhook.refused")  # the first in its window
    assert refused.data["reason"] == "no_secret"


@pytest.mark.django_db
def test_a_flood_of_refusals_is_logged_in_full_and_audited_once_a_minute_per_address(
    post_delivery, settings, caplog, time_machine
):
    time_machine.move_to("2026-11-29 12:00:00+00:00", tick=False)
    settings.REFUSAL_AUDIT_WINDOW_SECONDS = 60
    body = (REFERENCE / "push.payload.json").read_bytes()
    for n in range(50):
        post_delivery("push", body, delivery_id=f"flood-{n}", signature=sign(body + b"x"))
    post_delivery("push", body, delivery_id="unsigned", signature=None)  # another reason

    refused = AuditEvent.objects.filter(verb="webhook.refused").order_by("id")
    assert [(e.data["reason"], e.data["delivery_id"]) for e in refused] == [
        ("bad_signature", "flood-0"),
        ("missing_signature", "unsigned"),
    ]
    assert len([r for r in caplog.records if "webhook refused" in r.getMessage()]) == 51

    time_machine.move_to("2026-11-29 12:01:01+00:00", tick=False)
    post_delivery("push", body, delivery_id="next-minute", signature=sign(body + b"x"))
    latest = AuditEvent.objects.filter(verb="webhook.refused").latest("id")
    assert latest.data["delivery_id"] == "next-minute"
    assert latest.data["not_audited_since_last"] == 49


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
    ],
)
def test_malformed_bodies_are_refused_with_400(post_delivery, body, code):
    response = post_delivery("pull_request", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_missing_event_or_delivery_headers_are_400(client, settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    body = b"{}"
    response = client.post(
        "/webhooks/github",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_headers"


@pytest.mark.django_db
def test_bodies_over_the_cap_are_413_and_bodies_over_djangos_limit_are_fine(
    post_delivery, settings
):
    settings.WEBHOOK_MAX_BODY_BYTES = 4 * 1024 * 1024
    payload = json.loads((REFERENCE / "push.payload.json").read_bytes())
    # Bigger than Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE, under our cap.
    payload["padding"] = "x" * (3 * 1024 * 1024)
    big = post_delivery("push", payload, delivery_id="big")
    assert big.status_code == 202
    assert len(WebhookDelivery.objects.get(delivery_id="big").payload["padding"]) == 3 << 20

    payload["padding"] = "x" * (5 * 1024 * 1024)
    too_big = post_delivery("push", payload, delivery_id="too-big")
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "body_too_large"
    assert not WebhookDelivery.objects.filter(delivery_id="too-big").exists()


@pytest.mark.django_db
def test_only_post_and_no_csrf_token_or_cookie_needed(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRET
    client = Client(enforce_csrf_checks=True)
    assert client.get("/webhooks/github").status_code == 405
    body = (REFERENCE / "ping.payload.json").read_bytes()
    response = client.post(
        "/webhooks/github",
        data=body,
        content_type="application/json",
        **github_headers("ping", "d-3", sign(body)),
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_short_path_keeps_the_request_id_nosniff_host_and_query_checks(
    post_delivery, client, settings
):
    body = (REFERENCE / "push.payload.json").read_bytes()
    response = client.post(
        "/webhooks/github",
        data=body,
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-77",
        **github_headers("push", "d-short", sign(body)),
    )
    assert response.status_code == 202
    assert response["X-Request-ID"] == "req-77"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/json"  # no page: no CSP to carry
    assert "Cookie" not in response.get("Vary", "") and not response.cookies

    foreign_host = client.post(
        "/webhooks/github",
        data=body,
        content_type="application/json",
        HTTP_HOST="attacker.example",
        **github_headers("push", "d-host", sign(body)),
    )
    nul_in_query = client.post(
        "/webhooks/github?x=%00",
        data=body,
        content_type="application/json",
        **github_headers("push", "d-query", sign(body)),
    )
    assert (foreign_host.status_code, nul_in_query.status_code) == (400, 400)
    assert list(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == ["d-short"]


@pytest.mark.django_db
def test_the_short_path_still_redirects_plain_http(post_delivery, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = post_delivery("push", {"ref": "refs/heads/main"}, delivery_id="plain-http")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert not WebhookDelivery.objects.exists()
