"""NUL characters and lone UTF-16 surrogates: refused with a 4xx naming the field wherever a
person sends them; kept (escaped) in a signed webhook delivery, never a 500, never lost."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.models import Deploy, WebhookDelivery
from deployments.services.tokens import api_token_create
from tests.webhooks.conftest import github_headers, sign

HOSTILE = {"NUL": "ship\x00it", "surrogate": "ship\udc80it"}


def escaped_json(data: dict) -> bytes:
    """JSON text as a client sends it: a lone surrogate can only travel as a \\u escape."""
    return json.dumps(data).encode()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", HOSTILE)
def test_api_text_field_is_refused_naming_the_field(api, requester, kind):
    body = {"app": "hot-dash", "environment": "staging", "version": "1.3.0"}
    before = Deploy.objects.count()
    response = api(
        requester, "post", "/deploys", raw=escaped_json({**body, "reason": HOSTILE[kind]})
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_text"
    assert error["details"]["field"] == "reason"
    assert Deploy.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("kind", HOSTILE)
def test_api_hostile_key_is_refused(api, requester, kind):
    response = api(requester, "post", "/deploys", raw=escaped_json({"app": {HOSTILE[kind]: "x"}}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_text"
    escape = {"NUL": "\\u0000", "surrogate": "\\udc80"}[kind]
    assert error["details"]["field"] == f"app.ship{escape}it (a name)"


@pytest.mark.django_db
@pytest.mark.parametrize("kind", HOSTILE)
def test_api_query_string_is_refused_naming_the_parameter(api, viewer, kind):
    value = {"NUL": "%00", "surrogate": "%ED%B2%80"}[kind]
    response = api(viewer, "get", f"/apps/hot-dash/releases?environment=st{value}ging")
    # A percent-encoded surrogate is not UTF-8: Django decodes it to U+FFFD, harmless.
    assert response.status_code == (400 if kind == "NUL" else 200)
    if kind == "NUL":
        assert response.json()["error"]["details"]["field"] == "environment"


@pytest.mark.django_db
def test_page_form_with_nul_is_refused_naming_the_field(client, demo, requester):
    client.force_login(requester)
    production = demo.environments.get(name="production")
    before = Deploy.objects.count()
    response = client.post(
        reverse("deployments:deploy-new"),
        {"environment": production.pk, "release": 1, "reason": "ship\x00it"},
    )
    assert response.status_code == 400
    assert b"reason" in response.content
    assert Deploy.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/releases/?environment=st%00ging",
        "/releases/?app=hot%00dash",
        "/audit/?q=a%00b",
        "/rollbacks/?environment=1%00",
        "/deploys/new/?environment=1%00",
    ],
)
def test_page_query_string_with_nul_is_refused(client, demo, admin_user, path):
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 400


@pytest.mark.django_db
def test_login_form_with_nul_is_refused(client, db):
    response = client.post(reverse("login"), {"username": "al\x00ice", "password": "x"})
    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("kind", HOSTILE)
def test_signed_webhook_with_hostile_text_is_stored_escaped(
    post_delivery, process_deliveries, kind
):
    payload = {"action": "opened", "pull_request": {"title": HOSTILE[kind]}, "x": [HOSTILE[kind]]}
    response = post_delivery("pull_request", escaped_json(payload), delivery_id="d-hostile")
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get(delivery_id="d-hostile")
    escape = {"NUL": "\\u0000", "surrogate": "\\udc80"}[kind]
    assert delivery.payload["pull_request"]["title"] == f"ship{escape}it"
    assert delivery.payload["x"] == [f"ship{escape}it"]
    process_deliveries()
    [received] = AuditEvent.objects.filter(verb="webhook.received")
    assert received.data["escaped"] == ["pull_request.title", "x[0]"]


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["HTTP_X_GITHUB_DELIVERY", "HTTP_X_GITHUB_EVENT"])
def test_webhook_header_with_nul_is_refused_before_anything_is_stored(client, settings, header):
    settings.GITHUB_WEBHOOK_SECRET = "s3cret-hook"
    body = b'{"action": "opened"}'
    headers = github_headers("pull_request", "d-1", sign(body, "s3cret-hook"))
    headers[header] = headers[header] + "\x00"
    response = client.post("/webhooks/github", body, content_type="application/json", **headers)
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_a_form_body_sent_to_the_api_or_the_webhook_is_refused_not_a_crash(
    client, demo, sandbox, requester, settings, encoding
):
    """The gate reads form bodies before any view: the views that read the raw body still
    get it (a multipart body used to consume the stream)."""
    settings.GITHUB_WEBHOOK_SECRET = "s3cret-hook"
    token = api_token_create(user=requester, name="t")[1]
    form = {"app": "hot-dash"}
    if encoding == "multipart":
        send = {"data": form}
    else:
        send = {"data": urlencode(form), "content_type": "application/x-www-form-urlencoded"}
    response = client.post("/api/v1/deploys", headers={"Authorization": f"Bearer {token}"}, **send)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    signature = sign(urlencode(form).encode(), "s3cret-hook")
    response = client.post(
        "/webhooks/github", **send, **github_headers("push", "d-form", signature)
    )
    # Signed over the bytes sent: a urlencoded body verifies and is not JSON; a multipart
    # body's bytes differ from what was signed.
    assert response.status_code == (400 if encoding == "urlencoded" else 401)
