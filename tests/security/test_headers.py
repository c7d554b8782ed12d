"""Security headers and cookies on real responses, with the production
values of the settings that DEBUG turns off in tests."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_transport(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True


def test_plain_http_is_redirected_except_health(production_transport):
    client = Client()
    response = client.get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/accounts/login/"
    assert client.get("/health").status_code == 200


def test_pages_carry_the_security_headers(production_transport, approver):
    client = Client()
    client.force_login(approver)
    for url in ("/accounts/login/", reverse("overview"), reverse("approvals:audit")):
        response = client.get(url, secure=True)
        assert response.status_code == 200, url
        assert response["Strict-Transport-Security"] == "max-age=31536000"
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        policy = dict(
            part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        assert policy["object-src"] == "'none'"
        assert policy["base-uri"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy["style-src"]


def test_no_page_needs_inline_script():
    """The CSP allows no inline script: none may appear in the templates (htmx is vendored)."""
    import re
    from pathlib import Path

    from django.conf import settings

    offenders = []
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        html = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) or re.search(
            r"\son[a-z]+\s*=|\bhx-on|javascript:", html
        ):
            offenders.append(template.name)
    assert offenders == []


def test_cookies_are_secure_http_only_and_same_site(production_transport, approver):
    client = Client()
    client.get("/accounts/login/", secure=True)
    csrf = client.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    response = client.post(
        "/accounts/login/",
        {
            "username": "approver",
            "password": "correct horse battery",
            "csrfmiddlewaretoken": csrf.value,
        },
        secure=True,
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
