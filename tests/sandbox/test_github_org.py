"""The sandbox's GitHub organisation: the OAuth web flow ("sign in as" page, code exchange), the
people endpoints and the control API that changes teams (each change a signed webhook)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hotdash.sandbox import SandboxApp, World
from hotdash.sandbox.github import sign
from hotdash.sandbox.github_org import DEMO_TEAMS, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
from tests.fixtures.sandbox import SandboxTransport

CALLBACK = "http://hotdash.test/accounts/github/callback/"
AUTHORIZE = "/login/oauth/authorize"


@pytest.fixture
def world() -> World:
    return World(base_url="http://sandbox.test")


@pytest.fixture
def http(world):
    with httpx.Client(
        transport=SandboxTransport(app=SandboxApp(world)), base_url="http://sandbox.test"
    ) as client:
        yield client


def authorize(http, login: str, *, state: str = "s1", redirect_uri: str = CALLBACK) -> dict:
    query = {"client_id": OAUTH_CLIENT_ID, "redirect_uri": redirect_uri, "state": state}
    response = http.post(AUTHORIZE, params=query, data={"login": login})
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def exchange(http, code: str, *, secret: str = OAUTH_CLIENT_SECRET, uri: str = CALLBACK) -> dict:
    response = http.post(
        "/login/oauth/access_token",
        data={
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": secret,
            "code": code,
            "redirect_uri": uri,
        },
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    return response.json()


def test_the_authorize_page_lists_every_sandbox_user(http, world):
    page = http.get(AUTHORIZE, params={"client_id": OAUTH_CLIENT_ID, "redirect_uri": CALLBACK})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for login in world.org.users:
        assert f'value="{login}"' in page.text
    unknown = http.get(AUTHORIZE, params={"client_id": "someone-else", "redirect_uri": CALLBACK})
    assert unknown.status_code == 400


def test_a_code_is_exchanged_once_for_a_token_naming_the_user(http):
    answer = authorize(http, "bob", state="the-state")
    assert answer["state"] == "the-state"
    token = exchange(http, answer["code"])["access_token"]
    me = http.get("/github/user", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["login"] == "bob" and isinstance(me["id"], int)
    teams = http.get("/github/user/teams", headers={"Authorization": f"Bearer {token}"}).json()
    assert [team["slug"] for team in teams] == ["approvers"]
    assert teams[0]["organization"]["login"] == "hotdash-demo"
    again = exchange(http, answer["code"])
    assert again["error"] == "bad_verification_code" and "access_token" not in again


def test_the_exchange_refuses_a_wrong_secret_or_redirect(http):
    code = authorize(http, "alice")["code"]
    assert exchange(http, code, secret="guess")["error"] == "incorrect_client_credentials"
    assert exchange(http, code, uri="http://evil.test/cb")["error"] == "bad_verification_code"


def test_user_needs_a_user_token(http):
    response = http.get("/github/user", headers={"Authorization": "Bearer sandbox-github-token"})
    assert response.status_code == 401


def test_membership_answers_active_or_404(http):
    headers = {"Authorization": "Bearer server"}
    found = http.get("/github/orgs/hotdash-demo/teams/approvers/memberships/carol", headers=headers)
    assert found.status_code == 200 and found.json()["state"] == "active"
    for path in ("approvers/memberships/alice", "nope/memberships/bob"):
        missing = http.get(f"/github/orgs/hotdash-demo/teams/{path}", headers=headers)
        assert missing.status_code == 404


def test_the_control_api_changes_teams_and_sends_signed_webhooks(http, world):
    sent = []
    world.webhook.secret = "s3cret"
    world.webhook.sink = lambda headers, body: sent.append((headers, body)) or 202

    added = http.post("/_sandbox/teams/deployers/members", json={"login": "erin"})
    assert added.status_code == 200 and "erin" in added.json()["members"]
    removed = http.delete("/_sandbox/teams/approvers/members/bob")
    assert removed.status_code == 200 and removed.json()["members"] == ["carol"]
    unchanged = http.delete("/_sandbox/teams/approvers/members/bob")
    assert unchanged.json()["changed"] is False  # nothing happened, nothing sent
    assert http.delete("/_sandbox/teams/viewers").status_code == 200
    assert http.delete("/_sandbox/teams/nope/members/bob").status_code == 404
    assert http.post("/_sandbox/teams/admins/members", json={"login": "zed"}).status_code == 404

    events = []
    for headers, body in sent:
        assert headers["X-Hub-Signature-256"] == sign("s3cret", body)
        payload = json.loads(body)
        events.append((headers["X-GitHub-Event"], payload["action"], payload["team"]["slug"]))
    assert events == [
        ("membership", "added", "deployers"),
        ("membership", "removed", "approvers"),
        ("team", "deleted", "viewers"),
    ]
    state = http.get("/_sandbox/state").json()["teams"]
    assert "viewers" not in state and state["approvers"] == ["carol"]
    assert set(DEMO_TEAMS) == set(state) | {"viewers"}


def test_a_renamed_user_keeps_their_id_teams_and_token(http, world):
    token = exchange(http, authorize(http, "bob")["code"])["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    before = http.get("/github/user", headers=headers).json()

    renamed = http.post("/_sandbox/users/bob/rename", json={"login": "robert"})
    assert renamed.status_code == 200 and renamed.json() == {"login": "robert", "id": before["id"]}
    after = http.get("/github/user", headers=headers).json()
    assert (after["login"], after["id"]) == ("robert", before["id"])
    server = {"Authorization": "Bearer server"}
    by_id = http.get(f"/github/user/{before['id']}", headers=server)
    assert by_id.status_code == 200 and by_id.json()["login"] == "robert"
    assert http.get("/github/user/1", headers=server).status_code == 404
    membership = "/github/orgs/hotdash-demo/teams/approvers/memberships/"
    assert http.get(membership + "robert", headers=server).status_code == 200
    assert http.get(membership + "bob", headers=server).status_code == 404
    assert http.post("/_sandbox/users/bob/rename", json={"login": "x"}).status_code == 404
    assert http.post("/_sandbox/users/carol/rename", json={"login": "robert"}).status_code == 404
    assert "robert" in world.org.users and "bob" not in world.org.users
