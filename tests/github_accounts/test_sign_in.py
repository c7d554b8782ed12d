"""Sign in with GitHub: the OAuth web flow against the sandbox, accounts matched by GitHub user id,
roles from the demo's team mappings, and every way it can be refused (creating nothing)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from approvals import policy
from approvals.models import AuditEvent
from deployments.models import GitHubIdentity
from hotdash.sandbox.github import user as sandbox_user
from tests.fixtures.sandbox import SandboxTransport

pytestmark = pytest.mark.django_db


def bob_id() -> int:
    return sandbox_user("", "bob")["id"]


def test_the_login_page_offers_github_alongside_passwords(client):
    page = client.get("/accounts/login/").content.decode()
    assert 'id="sign-in-github"' in page and 'name="password"' in page


def test_only_the_sign_in_page_lets_a_form_lead_to_github(client, settings, admin_user):
    settings.GITHUB_WEB_URL = "https://github.example/"
    policy_header = client.get("/accounts/login/")["Content-Security-Policy"]
    assert "form-action 'self' https://github.example;" in policy_header + ";"
    client.force_login(admin_user)
    assert "form-action 'self';" in client.get("/ops/")["Content-Security-Policy"] + ";"


def test_the_login_page_hides_github_when_not_configured(client, settings):
    settings.GITHUB_OAUTH_CLIENT_ID = ""
    assert b"sign-in-github" not in client.get("/accounts/login/").content
    assert client.post("/accounts/github/").status_code == 404


def test_starting_needs_a_post_with_the_csrf_token():
    browser = Client(enforce_csrf_checks=True)
    assert browser.get("/accounts/github/").status_code == 405
    assert browser.post("/accounts/github/").status_code == 403  # no CSRF token


def test_start_sends_the_browser_to_github_with_a_fresh_state(client, sandbox):
    response = client.post("/accounts/github/")
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "http://sandbox.test/login/oauth/authorize"
    )
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["client_id"] == "sandbox-oauth-client"
    assert query["redirect_uri"] == "http://testserver/accounts/github/callback/"
    assert query["scope"] == "read:user read:org"
    assert len(query["state"]) >= 40
    assert client.session["github_oauth"]["state"] == query["state"]
    second = parse_qs(urlsplit(client.post("/accounts/github/")["Location"]).query)["state"][0]
    assert second != query["state"]


def test_first_sign_in_creates_the_account_with_its_teams_role(client, demo, github_sign_in):
    response = github_sign_in(client, "bob", next_url="/approvals/")
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    identity = GitHubIdentity.objects.get(github_id=bob_id())
    user = identity.user
    assert user.username == "bob@github"  # the local demo account "bob" is someone else
    assert not user.has_usable_password()
    assert identity.login == "bob" and identity.teams == ["hotdash-demo/approvers"]
    assert policy.highest_role(user) == policy.APPROVER
    assert client.get("/approvals/").status_code == 200  # signed in
    created = AuditEvent.objects.get(verb="user.created_from_github")
    assert created.data["github_id"] == bob_id()
    changed = AuditEvent.objects.get(verb="user.role_changed")
    assert (changed.actor_name, changed.data["from"], changed.data["to"]) == (
        "github",
        "none",
        "approver",
    )
    assert changed.data["team"] == "hotdash-demo/approvers" and changed.data["via"] == "sign-in"
    assert AuditEvent.objects.filter(verb="auth.login", actor_user=user).count() == 1


def test_an_unsafe_next_goes_to_the_overview(client, demo, github_sign_in):
    response = github_sign_in(client, "alice", next_url="https://evil.example/")
    assert response["Location"] == "/"


def test_the_account_is_matched_by_github_id_not_login(client, demo, github_sign_in):
    user = get_user_model().objects.create_user(username="robert@github")
    GitHubIdentity.objects.create(user=user, github_id=bob_id(), login="robert")
    github_sign_in(client, "bob")  # renamed on GitHub from robert to bob
    identity = GitHubIdentity.objects.get()
    assert identity.user == user and identity.login == "bob"
    assert get_user_model().objects.filter(username__endswith="@github").count() == 1
    assert policy.highest_role(get_user_model().objects.get(pk=user.pk)) == policy.APPROVER


def test_someone_in_no_mapped_team_is_refused_and_nothing_is_created(client, demo, github_sign_in):
    response = github_sign_in(client, "erin")
    assert response.status_code == 403
    page = response.content.decode()
    assert "erin is in none of the teams that give a HotDash role" in page
    assert 'id="sign-in-github"' in page  # the sign-in page again, to try otherwise
    assert not GitHubIdentity.objects.exists()
    assert not get_user_model().objects.filter(username__endswith="@github").exists()
    failed = AuditEvent.objects.get(verb="auth.login_failed")
    assert failed.data == {"via": "github", "reason": "no_role", "github_login": "erin"}
    assert "_auth_user_id" not in client.session


def test_a_callback_this_browser_did_not_start_is_refused(client, demo, sandbox):
    response = client.get("/accounts/github/callback/", {"code": "x", "state": "forged"})
    assert response.status_code == 400
    assert b"was not started from this browser" in response.content
    # An attacker's own code and state, carried into the victim's browser (login CSRF): the
    # victim's session holds no such state, so the code is never even exchanged.
    attacker = Client()
    start = attacker.post("/accounts/github/")
    with httpx.Client(transport=SandboxTransport(app=sandbox.app)) as browser:
        chosen = browser.post(start["Location"], data={"login": "alice"})
    victim = Client()
    victim.get("/accounts/login/")
    assert victim.get(chosen.headers["location"]).status_code == 400
    assert not GitHubIdentity.objects.exists()
    assert len(sandbox.org.codes) == 1  # still unspent


def test_a_state_is_spent_by_its_first_callback(client, demo, github_sign_in):
    response = github_sign_in(client, "alice")
    assert response.status_code == 302
    client.logout()
    replay = client.get(response.wsgi_request.get_full_path())
    assert replay.status_code == 400
    assert AuditEvent.objects.filter(verb="auth.login").count() == 1


def test_a_refused_code_says_why(client, demo, sandbox):
    start = client.post("/accounts/github/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    response = client.get("/accounts/github/callback/", {"code": "made-up", "state": state})
    assert response.status_code == 403
    assert b"GitHub did not accept the sign-in: The code passed is incorrect" in response.content
    assert AuditEvent.objects.get(verb="auth.login_failed").data["reason"] == "github_refused"


def test_cancelling_on_github_changes_nothing(client, demo, sandbox):
    start = client.post("/accounts/github/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    response = client.get("/accounts/github/callback/", {"error": "access_denied", "state": state})
    assert response.status_code == 400 and b"cancelled" in response.content
    assert not GitHubIdentity.objects.exists()


def test_github_down_is_a_clear_error(client, demo, sandbox, github_sign_in):
    sandbox.add_fault("status", service="github", path="^/user$", status=503)
    response = github_sign_in(client, "bob")
    assert response.status_code == 502
    assert b"GitHub could not be reached to sign you in" in response.content
    assert not GitHubIdentity.objects.exists()
    assert AuditEvent.objects.get(verb="auth.login_failed").data["reason"] == "upstream_error"
