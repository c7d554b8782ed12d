"""HotDash as a GitHub App against the sandbox: JWT -> installation token per repository,
cached until shortly before it expires, renewed once on a 401; the private key never shows."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from hotdash.integrations import PermanentAPIError, github_app, github_client
from hotdash.integrations.github_app import TOKEN_RENEW_MARGIN
from hotdash.sandbox import demo
from hotdash.sandbox.github_app import DEMO_INSTALLATION_ID, TOKEN_LIFETIME

OWNER, REPO = demo.REPO_OWNER, demo.REPO_NAME
TOKENS = rf"/app/installations/{DEMO_INSTALLATION_ID}/access_tokens"


def token_requests(sandbox) -> list:
    return sandbox.calls("POST", TOKENS)


def test_a_repository_is_read_with_its_installations_token(sandbox, github_app):
    with github_client(OWNER, REPO) as github:
        assert [r.tag_name for r in github.list_releases()]
        github.get_repository()

    assert len(token_requests(sandbox)) == 1
    assert len(sandbox.calls("GET", rf"/repos/{OWNER}/{REPO}/installation")) == 1
    with sandbox.lock:
        issued = list(sandbox.github_app.tokens)
    assert len(issued) == 1 and issued[0].startswith("ghs_")


def test_the_token_is_cached_until_shortly_before_it_expires(sandbox, github_app):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        github_client(OWNER, REPO).get_repository()
        clock.move_to(start + timedelta(seconds=TOKEN_LIFETIME - TOKEN_RENEW_MARGIN - 1))
        github_client(OWNER, REPO).get_repository()
        assert len(token_requests(sandbox)) == 1

        clock.move_to(start + timedelta(seconds=TOKEN_LIFETIME - TOKEN_RENEW_MARGIN + 1))
        github_client(OWNER, REPO).get_repository()
    assert len(token_requests(sandbox)) == 2


def test_a_401_renews_the_token_once_and_sends_again(sandbox, github_app):
    github_client(OWNER, REPO).get_repository()
    with sandbox.lock:
        assert sandbox.github_app.revoke_tokens() == 1

    repository = github_client(OWNER, REPO).get_repository()

    assert repository.full_name == f"{OWNER}/{REPO}"
    statuses = [r.status for r in sandbox.calls("GET", rf"/repos/{OWNER}/{REPO}")]
    assert statuses == [200, 401, 200]
    assert len(token_requests(sandbox)) == 2


def test_a_token_expired_on_githubs_side_is_renewed(sandbox, github_app):
    github_client(OWNER, REPO).get_repository()
    sandbox.advance(TOKEN_LIFETIME + 1)  # GitHub's clock only: the local cache still trusts it

    github_client(OWNER, REPO).get_repository()

    assert len(token_requests(sandbox)) == 2


def test_a_second_401_is_final(sandbox, github_app):
    sandbox.add_fault("status", status=401, service="github", path=rf"^/repos/{OWNER}/{REPO}$")

    with pytest.raises(PermanentAPIError) as raised:
        github_client(OWNER, REPO).get_repository()

    assert raised.value.status == 401
    assert len(sandbox.calls("GET", rf"/repos/{OWNER}/{REPO}")) == 2
    assert len(token_requests(sandbox)) == 2


def test_a_repository_outside_every_installation_is_refused_clearly(sandbox, github_app):
    with pytest.raises(PermanentAPIError) as raised:
        github_client(OWNER, "elsewhere").get_repository()

    assert "the GitHub App is not installed on hotdash-demo/elsewhere" in str(raised.value)
    assert token_requests(sandbox) == []


def test_a_token_never_reaches_a_repository_its_installation_does_not_cover(sandbox, github_app):
    app = github_app_for_test()
    token = app.access_token(DEMO_INSTALLATION_ID)
    client = sandbox_client(sandbox, token)
    assert client.get(f"/repos/{OWNER}/{REPO}").status_code == 200
    assert client.get(f"/repos/{OWNER}/other").status_code == 404
    assert client.get("/app/installations").status_code == 401  # the App's JWT only


def test_jwts_signed_with_another_key_are_refused(sandbox, github_app, settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.GITHUB_APP_PRIVATE_KEY = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()

    with pytest.raises(PermanentAPIError) as raised:
        github_client(OWNER, REPO).get_repository()

    assert raised.value.status == 401
    assert "JSON web token could not be decoded" in str(raised.value)


def test_the_installations_repositories_are_listed(sandbox, github_app):
    app = github_app_for_test()
    installations = app.list_installations()
    assert [(i.id, i.account) for i in installations] == [(DEMO_INSTALLATION_ID, OWNER)]
    names = [r.full_name for r in app.installation_repositories(DEMO_INSTALLATION_ID)]
    assert names == [f"{OWNER}/{REPO}"]


def test_a_key_that_is_not_a_pem_says_so_without_showing_it(sandbox, github_app, settings):
    settings.GITHUB_APP_PRIVATE_KEY = "not-a-key-canary-4711"

    with pytest.raises(ImproperlyConfigured) as raised:
        github_client(OWNER, REPO).get_repository()

    assert "GITHUB_APP_PRIVATE_KEY is not an RSA private key" in str(raised.value)
    assert "canary-4711" not in str(raised.value)


def test_the_private_key_never_reaches_logs_or_errors(sandbox, github_app, caplog):
    caplog.set_level(logging.DEBUG)
    body = "".join(github_app.splitlines()[1:-1])
    sandbox.add_fault("status", status=401, service="github", path=rf"^/repos/{OWNER}/{REPO}$")
    with pytest.raises(PermanentAPIError) as raised:
        github_client(OWNER, REPO).get_repository()

    shown = [str(raised.value), repr(raised.value), caplog.text, repr(github_app_for_test())]
    for text in shown:
        assert body[:40] not in text
        assert "ghs_" not in text


def github_app_for_test():
    app = github_app()
    assert app is not None
    return app


def sandbox_client(sandbox, token: str):
    import httpx

    from tests.fixtures.sandbox import SandboxTransport

    return httpx.Client(
        transport=SandboxTransport(app=sandbox.app),
        base_url=sandbox.github_url,
        headers={"Authorization": f"Bearer {token}"},
    )
