"""Sign-in throttling: 5 failures lock a username (from any address), 20
lock an address; locked attempts get 429 without a password check; each lockout is audited once
per window; a spoofed X-Forwarded-For changes nothing; failed API tokens count per address and
lock out further failing tokens from it, never a valid one."""

from __future__ import annotations

import pytest
from django.contrib.auth.signals import user_login_failed
from django.urls import reverse

from approvals.models import AuditEvent
from deployments.services.tokens import api_token_create

LOGIN = "/accounts/login/"
PASSWORD = "correct horse battery"  # tests/conftest.py make_user


def attempt(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


@pytest.fixture
def clock(monkeypatch):
    """Move the cache's clock: locmem entries expire against time.time()."""
    import time

    now = [time.time()]
    monkeypatch.setattr("django.core.cache.backends.locmem.time.time", lambda: now[0])
    return now


@pytest.fixture
def password_checks():
    """Every failed password check Django makes (its user_login_failed signal)."""
    seen: list[str] = []

    def receiver(sender, credentials, **kwargs):
        seen.append(credentials["username"])

    user_login_failed.connect(receiver)
    yield seen
    user_login_failed.disconnect(receiver)


@pytest.mark.django_db
def test_six_wrong_passwords_lock_the_username_even_with_the_right_one(
    client, approver, password_checks
):
    for _ in range(5):
        assert attempt(client, "approver", "wrong").status_code == 200
    assert len(password_checks) == 5

    for password in ("wrong", PASSWORD):
        response = attempt(client, "approver", password)
        assert response.status_code == 429
        assert "Too many failed sign-in attempts" in response.content.decode()
        assert int(response["Retry-After"]) == 15 * 60
    assert len(password_checks) == 5  # refused before any password check
    assert "_auth_user_id" not in client.session
    # Another address is locked out of this username too (the count is per username).
    assert attempt(client, "approver", PASSWORD, REMOTE_ADDR="10.9.9.9").status_code == 429
    locks = AuditEvent.objects.filter(verb="auth.throttled")
    assert [(e.data["by"], e.data["username"]) for e in locks] == [("username", "approver")]


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_changes_nothing(client, approver, settings):
    settings.TRUSTED_PROXIES = []
    for n in range(6):
        response = attempt(client, "approver", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    assert response.status_code == 429
    events = AuditEvent.objects.filter(verb__in=["auth.login_failed", "auth.throttled"])
    assert {e.ip for e in events} == {"127.0.0.1"}


@pytest.mark.django_db
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(client, approver, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    # The right-most untrusted entry is the client; what it prepended itself is ignored.
    attempt(client, "nobody", "x", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.7, 10.0.0.3", **proxy)
    attempt(client, "nobody", "x", HTTP_X_FORWARDED_FOR="garbage", **proxy)
    attempt(client, "nobody", "x", HTTP_X_FORWARDED_FOR="192.0.2.1")  # not through the proxy
    ips = list(AuditEvent.objects.filter(verb="auth.login_failed").values_list("ip", flat=True))
    assert sorted(ips) == ["10.0.0.2", "127.0.0.1", "203.0.113.7"]


@pytest.mark.django_db
def test_a_spray_across_twenty_usernames_locks_the_address(client, approver, password_checks):
    for n in range(20):
        assert attempt(client, f"user{n}", "Summer2026!").status_code == 200
    response = attempt(client, "approver", PASSWORD)
    assert response.status_code == 429
    assert len(password_checks) == 20
    # Only this address: the same user signs in from elsewhere.
    assert attempt(client, "approver", PASSWORD, REMOTE_ADDR="10.1.1.1").status_code == 302
    locks = AuditEvent.objects.filter(verb="auth.throttled")
    assert [e.data["by"] for e in locks] == ["ip"]


@pytest.mark.django_db
def test_success_resets_the_username_but_not_the_address(client, approver):
    for _ in range(4):
        attempt(client, "approver", "wrong")
    assert attempt(client, "approver", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):  # a fresh username budget: 4 more failures are still not a lock
        assert attempt(client, "approver", "wrong").status_code == 200
    assert attempt(client, "approver", PASSWORD).status_code == 302
    client.logout()
    # The address counted all 8 failures: 12 more (any usernames) lock it.
    for n in range(12):
        assert attempt(client, f"other{n}", "wrong").status_code == 200
    assert attempt(client, "approver", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_the_lock_lifts_when_the_window_passes_and_is_audited_once_per_window(
    client, approver, clock
):
    for _ in range(5):
        attempt(client, "approver", "wrong")
    for _ in range(3):
        assert attempt(client, "approver", PASSWORD).status_code == 429
    assert AuditEvent.objects.filter(verb="auth.throttled").count() == 1

    clock[0] += 15 * 60 + 1
    assert attempt(client, "approver", PASSWORD).status_code == 302
    client.logout()

    for _ in range(5):  # a new window, a new lockout, audited again
        attempt(client, "approver", "wrong")
    assert attempt(client, "approver", PASSWORD).status_code == 429
    assert AuditEvent.objects.filter(verb="auth.throttled").count() == 2


@pytest.mark.django_db
def test_the_admin_signs_in_through_the_throttled_page(client, admin_user):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/admin/"


@pytest.mark.django_db
def test_failed_api_tokens_lock_the_address_for_the_api(client, requester):
    url = reverse("api-deploys-get", args=[1])
    # No token at all is not a guess and does not count.
    for _ in range(25):
        assert client.get(url).status_code == 401
    for n in range(20):
        assert client.get(url, headers={"Authorization": f"Bearer hd_guess{n}"}).status_code == 401
    response = client.get(url, headers={"Authorization": "Bearer hd_guess20"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    other = client.get(url, headers={"Authorization": "Bearer hd_guess20"}, REMOTE_ADDR="10.2.2.2")
    assert other.status_code == 401  # only this address is locked
    assert AuditEvent.objects.filter(verb="auth.throttled").get().data["by"] == "api-ip"
    # The sign-in page keeps its own count for the address.
    assert attempt(client, "requester", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_bad_tokens_from_a_shared_address_never_lock_out_a_valid_token(client, requester):
    """Behind one NAT without TRUSTED_PROXIES everyone shares an address: someone else's 21
    bad tokens refuse further bad tokens from it, never a valid one."""
    token = api_token_create(user=requester, name="ci")[1]
    url = reverse("api-deploys-get", args=[1])
    for n in range(21):
        client.get(url, headers={"Authorization": f"Bearer hd_guess{n}"})
    guess = client.get(url, headers={"Authorization": "Bearer hd_guess21"})
    assert guess.status_code == 429 and guess.json()["error"]["code"] == "throttled"
    for _ in range(3):
        valid = client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert valid.status_code == 404  # authenticated: deploy 1 does not exist
    assert client.get(url, headers={"Authorization": "Bearer hd_guess22"}).status_code == 429
    assert AuditEvent.objects.filter(verb="auth.throttled").count() == 1
