"""CSRF and safe methods: the drawer's decide endpoint refuses forged POSTs,
and only the GitHub webhook (HMAC) and the bearer-token JSON API are exempt from CSRF."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from approvals.models import Decision

pytestmark = pytest.mark.django_db


def csrf_client(user) -> tuple[Client, str]:
    """A signed-in client that checks CSRF like a browser, and its own token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("approvals:queue"))
    return client, client.cookies["csrftoken"].value


def decide(client, pending, **extra):
    url = reverse("approvals:decide", args=[pending.pk])
    return client.post(url, {"decision": "approve", "comment": "ship"}, **extra)


def test_decide_without_a_token_is_refused(pending, approver):
    client, _ = csrf_client(approver)
    assert decide(client, pending).status_code == 403
    assert not Decision.objects.exists()


def test_decide_with_another_sessions_token_is_refused(pending, approver, viewer):
    client, _ = csrf_client(approver)
    _, theirs = csrf_client(viewer)
    assert decide(client, pending, HTTP_X_CSRFTOKEN=theirs).status_code == 403
    assert not Decision.objects.exists()


def test_decide_from_a_foreign_origin_is_refused_even_with_a_valid_token(
    pending, approver, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://hotdash.example.com"]
    client, token = csrf_client(approver)
    response = decide(client, pending, HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert not Decision.objects.exists()
    # The same request from the dashboard's configured origin is accepted.
    response = decide(
        client, pending, HTTP_X_CSRFTOKEN=token, HTTP_ORIGIN="https://hotdash.example.com"
    )
    assert response.status_code == 302  # decided; back to the queue
    assert Decision.objects.get().verdict == "approve"


def test_decide_by_get_is_not_allowed(pending, approver):
    client, _ = csrf_client(approver)
    response = client.get(reverse("approvals:decide", args=[pending.pk]))
    assert response.status_code == 405
    assert not Decision.objects.exists()


def _callbacks():
    def walk(patterns, namespace):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield name or pattern.callback.__name__, pattern.callback

    return walk(get_resolver().url_patterns, None)


def test_only_the_webhook_and_the_token_api_are_csrf_exempt():
    exempt = {name for name, view in _callbacks() if getattr(view, "csrf_exempt", False)}
    assert exempt == {
        "github-webhook",
        "api-app-releases",
        "api-builds-create",
        "api-deploys-create",
        "api-deploys-get",
        "api-deploys-decide",
        "api-deploys-cancel",
        "api-rollbacks-create",
        "api-not-found",  # any other /api/ path: a JSON 404 that changes nothing
    }


def test_the_api_ignores_session_cookies(pending, approver):
    """Why the API may be exempt: a signed-in browser's cookies authenticate nothing there."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(approver)
    response = client.post(
        reverse("api-deploys-decide", args=[pending.deploy_id]),
        {"decision": "approve", "comment": "forged"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert not Decision.objects.exists()
