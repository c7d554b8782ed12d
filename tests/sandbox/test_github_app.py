"""The sandbox's GitHub App over its HTTP API: JWTs verified against the registered public key,
installation tokens that expire on the world's clock or are revoked, the installation's
repositories, the installation webhooks, and the control API that drives them."""

from __future__ import annotations

import json
import time
from datetime import datetime

import httpx
import jwt
import pytest

from hotdash.management.commands.sandbox import _public_key
from hotdash.sandbox import demo
from hotdash.sandbox.github_app import DEMO_APP_ID, DEMO_INSTALLATION_ID, TOKEN_LIFETIME
from tests.fixtures.sandbox import SandboxTransport

TOKENS = f"/github/app/installations/{DEMO_INSTALLATION_ID}/access_tokens"
DEMO_REPO = f"{demo.REPO_OWNER}/{demo.REPO_NAME}"


@pytest.fixture
def http(sandbox, app_key_pair):
    with httpx.Client(transport=SandboxTransport(app=sandbox.app), base_url=sandbox.url) as client:
        response = client.post(
            "/_sandbox/github-app", json={"public_key": app_key_pair[1], "app_id": DEMO_APP_ID}
        )
        assert response.status_code == 200, response.text
        yield client


def signed(private_key: str, *, iss: str = DEMO_APP_ID, lifetime: int = 540) -> dict[str, str]:
    now = int(time.time())
    token = jwt.encode({"iat": now - 60, "exp": now + lifetime, "iss": iss}, private_key, "RS256")
    return {"Authorization": f"Bearer {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_jwt_buys_a_token_that_reads_the_installations_repositories(http, app_key_pair, sandbox):
    response = http.post(TOKENS, headers=signed(app_key_pair[0]))

    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("ghs_")
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
    assert expires == pytest.approx(sandbox.clock.now() + TOKEN_LIFETIME, abs=1)
    listing = http.get("/github/installation/repositories", headers=bearer(body["token"]))
    assert [r["full_name"] for r in listing.json()["repositories"]] == [DEMO_REPO]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "Bearer not.a.jwt"}, "A JSON web token could not be decoded"),
        ({"Authorization": "Bearer personal-token"}, "A JSON web token could not be decoded"),
    ],
)
def test_app_routes_need_the_apps_jwt(http, headers, message):
    response = http.post(TOKENS, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"].startswith(message)


def test_a_jwt_of_another_app_or_too_long_lived_is_refused(http, app_key_pair):
    other = http.post(TOKENS, headers=signed(app_key_pair[0], iss="42"))
    assert other.status_code == 401
    assert "not this App's id" in other.json()["message"]
    long_lived = http.post(TOKENS, headers=signed(app_key_pair[0], lifetime=3600))
    assert long_lived.status_code == 401
    assert "too far in the future" in long_lived.json()["message"]


def test_tokens_expire_on_the_worlds_clock_and_can_be_revoked(http, app_key_pair):
    token = http.post(TOKENS, headers=signed(app_key_pair[0])).json()["token"]
    repo = f"/github/repos/{DEMO_REPO}"
    assert http.get(repo, headers=bearer(token)).status_code == 200

    http.post("/_sandbox/clock", json={"advance": TOKEN_LIFETIME})
    assert http.get(repo, headers=bearer(token)).status_code == 401

    fresh = http.post(TOKENS, headers=signed(app_key_pair[0])).json()["token"]
    assert http.post("/_sandbox/github-app/revoke-tokens").json() == {"revoked": 2}
    assert http.get(repo, headers=bearer(fresh)).status_code == 401


def test_the_control_api_changes_the_installation_and_sends_its_webhook(http, sandbox):
    response = http.post("/_sandbox/github-app/repositories", json={"add": ["hotdash-demo/api"]})

    assert response.json() == {"repositories": [DEMO_REPO, "hotdash-demo/api"]}
    (delivery,) = sandbox.webhook.deliveries
    assert delivery["event"] == "installation_repositories"
    payload = json.loads(delivery["body"])
    assert payload["action"] == "added"
    assert [r["full_name"] for r in payload["repositories_added"]] == ["hotdash-demo/api"]
    assert payload["installation"]["id"] == DEMO_INSTALLATION_ID


def test_a_reset_keeps_the_app_registered(http, app_key_pair):
    http.post("/_sandbox/reset")
    assert http.post(TOKENS, headers=signed(app_key_pair[0])).status_code == 201


def test_the_sandbox_command_registers_the_public_half_of_the_configured_key(app_key_pair):
    assert _public_key(app_key_pair[0]) == app_key_pair[1]
