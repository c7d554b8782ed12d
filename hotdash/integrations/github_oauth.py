"""GitHub's OAuth web flow and the people endpoints: who signed in, and which teams they are in.

The flow's pages live on GitHub's web host (settings.GITHUB_WEB_URL: github.com, or the
sandbox's root); the API calls go to settings.GITHUB_API_URL. Signing in uses the person's own
token (``/user``, ``/user/teams``); a refresh asks with HotDash's token whether someone is still
in a team (``/orgs/{org}/teams/{team}/memberships/{user}``). Knows no models.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from django.views.decorators.debug import sensitive_variables

from .http import GITHUB, PermanentAPIError, build_client

SCOPES = "read:user read:org"


@dataclass(frozen=True)
class GitHubUser:
    id: int  # stable: logins can be renamed
    login: str
    name: str


@dataclass(frozen=True)
class Team:
    org: str  # the organisation's login
    slug: str

    @property
    def key(self) -> str:
        return f"{self.org}/{self.slug}".lower()


class OAuthRefused(Exception):  # noqa: N818 - GitHub's answer, not a fault of ours
    """GitHub would not exchange the code (expired, reused, wrong client); ``str`` says why."""


def _settings() -> Any:
    from django.conf import settings

    return settings


def authorize_url(*, state: str, redirect_uri: str) -> str:
    """Where to send the browser to ask GitHub who it is."""
    settings = _settings()
    query = urlencode(
        {
            "client_id": settings.GITHUB_OAUTH_CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "allow_signup": "false",
        }
    )
    return f"{settings.GITHUB_WEB_URL}/login/oauth/authorize?{query}"


@sensitive_variables("secret", "credentials", "data")
def exchange_code(*, code: str, redirect_uri: str) -> str:
    """The user access token for ``code`` (each code works once); OAuthRefused otherwise."""
    settings = _settings()
    client_id, secret = settings.GITHUB_OAUTH_CLIENT_ID, settings.GITHUB_OAUTH_CLIENT_SECRET
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    with build_client(GITHUB, base_url=settings.GITHUB_WEB_URL, token="") as api:
        response = api.request(
            "POST",
            "/login/oauth/access_token",
            idempotent=False,  # a code is spent by its first use
            json={"client_id": client_id, "code": code, "redirect_uri": redirect_uri},
            headers={"Authorization": f"Basic {credentials}", "Accept": "application/json"},
        )
    data = response.json()
    token = data.get("access_token") if isinstance(data, dict) else None
    if not token:
        reason = (data or {}).get("error_description") or (data or {}).get("error") or "no token"
        raise OAuthRefused(f"GitHub did not accept the sign-in: {reason}")
    return str(token)


@sensitive_variables("token")
def signed_in_user(token: str) -> tuple[GitHubUser, frozenset[Team]]:
    """Who owns ``token``, and every team they are in (their own token, scope read:org)."""
    settings = _settings()
    with build_client(GITHUB, base_url=settings.GITHUB_API_URL, token=token) as api:
        data = api.get_json("/user")
        teams = frozenset(
            Team(org=item["organization"]["login"], slug=item["slug"])
            for item in api.paginate("/user/teams", params={"per_page": 100})
        )
    person = GitHubUser(id=int(data["id"]), login=data["login"], name=data.get("name") or "")
    return person, teams


def current_login(github_id: int) -> str | None:
    """The login GitHub account ``github_id`` has now (a rename keeps the id), or None when the
    account no longer exists (asked with HotDash's own token)."""
    settings = _settings()
    with build_client(GITHUB, base_url=settings.GITHUB_API_URL, token=settings.GITHUB_TOKEN) as api:
        try:
            return str(api.get_json(f"/user/{int(github_id)}")["login"])
        except PermanentAPIError as error:
            if error.status == 404:
                return None
            raise


def team_member(*, team: Team, login: str) -> bool:
    """Whether ``login`` is an active member of ``team`` (asked with HotDash's own token)."""
    settings = _settings()
    path = (
        f"/orgs/{quote(team.org, safe='')}/teams/{quote(team.slug, safe='')}"
        f"/memberships/{quote(login, safe='')}"
    )
    with build_client(GITHUB, base_url=settings.GITHUB_API_URL, token=settings.GITHUB_TOKEN) as api:
        try:
            data = api.get_json(path)
        except PermanentAPIError as error:
            if error.status == 404:
                return False
            raise
    return data.get("state") == "active"
