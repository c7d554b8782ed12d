"""The simulated GitHub organisation and its people: OAuth sign-in, users and teams.

Kept apart from github.py (the repository): the OAuth web flow (``/login/oauth/authorize`` is a
"sign in as" page listing the sandbox users, ``/login/oauth/access_token`` exchanges its code),
``GET /user``, ``GET /user/{account_id}``, ``GET /user/teams`` and
``GET /orgs/{org}/teams/{team}/memberships/{user}``, the ``membership`` and ``team`` webhooks sent
when the control API changes a team, and renaming a user (their id stays, as on GitHub). The demo
organisation is the repository's owner; its teams match the demo roles.
"""

from __future__ import annotations

import base64
import html
import secrets
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

from . import demo
from .web import Problem, Request, Response, Router

# Team slug -> members (logins). Names match HotDash's demo roles; seed_demo maps them.
DEMO_TEAMS = {
    "admins": ("admin",),
    "approvers": ("bob", "carol"),
    "deployers": ("alice",),
    "viewers": ("dave",),
}
# Sandbox users: the demo users, and erin (in the organisation, in no team).
DEMO_USERS = ("alice", "bob", "carol", "dave", "admin", "erin")
CREATED_AT = "2026-09-01T09:00:00Z"
OAUTH_CLIENT_ID = "sandbox-oauth-client"
OAUTH_CLIENT_SECRET = "sandbox-oauth-secret"  # noqa: S105 - the sandbox's published value


class Repository(Protocol):
    """What the organisation needs of the simulated repository (github.GitHubWorld)."""

    api_url: str
    outbox: list[tuple[str, dict[str, Any]]]


class GitHubOrg:
    """One organisation (the demo repository's owner), its users and teams, and OAuth."""

    def __init__(self, repository: Repository, user_json: Any) -> None:
        self.repo = repository
        self.user_json = user_json  # github.user: the simple-user object for a login
        self.login = demo.REPO_OWNER
        self.users: list[str] = list(DEMO_USERS)
        # A user's id outlives a rename: login -> the id it was first given.
        self.ids: dict[str, int] = {login: user_json("", login)["id"] for login in self.users}
        self.teams: dict[str, dict[str, Any]] = {}
        for number, (slug, members) in enumerate(DEMO_TEAMS.items(), start=1):
            self.teams[slug] = {"id": 7000 + number, "slug": slug, "members": list(members)}
        self.codes: dict[str, dict[str, str]] = {}  # code -> {login, client_id, redirect_uri}
        self.tokens: dict[str, str] = {}  # user access token -> login
        self.oauth_router = self._oauth_routes()

    # --- JSON shapes ---------------------------------------------------------------------

    def _org_json(self, base: str) -> dict[str, Any]:
        api = f"{base}/orgs/{self.login}"
        return {
            "login": self.login,
            "id": 4100,
            "node_id": "O_sandbox4100",
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{base}/avatars/o/4100?v=4",
            "description": "The HotDash demo organisation",
        }

    def _full_org_json(self, base: str) -> dict[str, Any]:
        return {
            **self._org_json(base),
            "html_url": f"{base}/{self.login}",
            "type": "Organization",
            "has_organization_projects": False,
            "has_repository_projects": False,
            "public_repos": 1,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": CREATED_AT,
            "updated_at": CREATED_AT,
            "archived_at": None,
        }

    def _team_json(self, base: str, team: dict[str, Any], *, full: bool = False) -> dict:
        api = f"{base}/orgs/{self.login}/teams/{team['slug']}"
        body: dict[str, Any] = {
            "id": team["id"],
            "node_id": f"T_sandbox{team['id']}",
            "url": api,
            "html_url": f"{base}/orgs/{self.login}/teams/{team['slug']}",
            "name": team["slug"].capitalize(),
            "slug": team["slug"],
            "description": f"The demo's {team['slug']}",
            "privacy": "closed",
            "notification_setting": "notifications_enabled",
            "permission": "pull",
            "type": "organization",
            "members_url": f"{api}/members{{/member}}",
            "repositories_url": f"{api}/repos",
            "parent": None,
        }
        if full:
            body.update(
                members_count=len(team["members"]),
                repos_count=1,
                created_at=CREATED_AT,
                updated_at=CREATED_AT,
                organization=self._full_org_json(base),
            )
        return body

    # --- routes --------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        router.add("GET", "/user", self.get_user)
        router.add("GET", "/user/teams", self.user_teams)
        router.add("GET", "/user/{account_id}", self.user_by_id)
        router.add("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", self.membership)

    def _token_user(self, req: Request) -> str:
        _, _, token = req.headers.get("authorization", "").partition(" ")
        login = self.tokens.get(token.strip())
        if login is None:
            raise Problem(401, "Bad credentials")
        return login

    def person(self, base: str, login: str) -> dict[str, Any]:
        """The simple-user object, with the id the user kept through any rename."""
        return {**self.user_json(base, login), "id": self.ids.get(login, 0)}

    def user_by_id(self, req: Request, account_id: str) -> Response:
        for login, number in self.ids.items():
            if str(number) == account_id:
                return self._profile(req.base_url, login)
        raise Problem(404, "Not Found")

    def get_user(self, req: Request) -> Response:
        return self._profile(req.base_url, self._token_user(req))

    def _profile(self, base: str, login: str) -> Response:
        profile = {
            "name": login.capitalize(),
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "public_repos": 0,
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": CREATED_AT,
            "updated_at": CREATED_AT,
        }
        return Response(200, {**self.person(base, login), **profile})

    def user_teams(self, req: Request) -> Response:
        login = self._token_user(req)
        teams = [
            self._team_json(req.base_url, team, full=True)
            for team in self.teams.values()
            if login in team["members"]
        ]
        return Response(200, teams)

    def membership(self, req: Request, org: str, team_slug: str, username: str) -> Response:
        found = self.teams.get(team_slug) if org.lower() == self.login.lower() else None
        if found is None or username not in found["members"]:
            raise Problem(404, "Not Found")
        api = f"{req.base_url}/orgs/{self.login}/teams/{team_slug}/memberships/{username}"
        return Response(200, {"url": api, "role": "member", "state": "active"})

    # --- the OAuth web flow (served at the sandbox root, as github.com serves it) ---------

    def authorize_page(self, req: Request) -> Response:
        """The "sign in as" form; choosing a user redirects back with a code and the state."""
        client_id, redirect_uri = req.arg("client_id") or "", req.arg("redirect_uri") or ""
        if client_id != OAUTH_CLIENT_ID or not redirect_uri:
            raise Problem(400, "unknown client_id or no redirect_uri")
        if req.method == "POST":
            login = dict(parse_qsl(req.body.decode())).get("login", "")
            if login not in self.users:
                raise Problem(400, "no such sandbox user")
            code = secrets.token_hex(10)
            self.codes[code] = {
                "login": login,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
            }
            query = urlencode({"code": code, "state": req.arg("state") or ""})
            separator = "&" if "?" in redirect_uri else "?"
            return Response(302, headers={"location": f"{redirect_uri}{separator}{query}"})
        buttons = "".join(
            f'<li><button name="login" value="{html.escape(login)}">Sign in as '
            f"{html.escape(login)}</button></li>"
            for login in self.users
        )
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Sandbox GitHub: sign in</title></head><body><main>"
            "<h1>Sandbox GitHub: sign in</h1>"
            f"<p>Authorize the application to read your profile and teams in {self.login}.</p>"
            f'<form method="post"><ul>{buttons}</ul></form></main></body></html>'
        )
        return Response(200, raw=page.encode(), content_type="text/html; charset=utf-8")

    def access_token(self, req: Request) -> Response:
        """Exchange a code (once) for a user access token; errors as GitHub words them."""
        form = req.json() if req.body.startswith(b"{") else dict(parse_qsl(req.body.decode()))
        params = {**{k: v[0] for k, v in req.query.items()}, **form}
        scheme, _, credentials = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # the client's id and secret, as HTTP Basic auth
            client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
            params.update(client_id=client_id, client_secret=secret)
        if (params.get("client_id"), params.get("client_secret")) != (
            OAUTH_CLIENT_ID,
            OAUTH_CLIENT_SECRET,
        ):
            return Response(200, {"error": "incorrect_client_credentials"})
        grant = self.codes.pop(params.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != params.get("redirect_uri", ""):
            return Response(
                200,
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                },
            )
        token = self.issue_token(grant["login"])
        return Response(
            200, {"access_token": token, "token_type": "bearer", "scope": "read:org,read:user"}
        )

    def issue_token(self, login: str) -> str:
        """A user access token for ``login`` (as the code exchange grants one)."""
        token = "gho_" + secrets.token_hex(18)
        self.tokens[token] = login
        return token

    def _oauth_routes(self) -> Router:
        router = Router()
        router.add("GET", "/authorize", self.authorize_page)
        router.add("POST", "/authorize", self.authorize_page)
        router.add("POST", "/access_token", self.access_token)
        return router

    # --- team changes (the control API), each queueing its webhook -------------------------

    def team_add(self, team: str, login: str) -> dict[str, Any]:
        return self._change(team, login, add=True)

    def team_remove(self, team: str, login: str) -> dict[str, Any]:
        return self._change(team, login, add=False)

    def _change(self, slug: str, login: str, *, add: bool) -> dict[str, Any]:
        if login not in self.users:
            raise KeyError(f"no sandbox user {login!r}")
        team = self.teams.get(slug)
        if team is None:
            raise KeyError(f"no team {slug!r} in {self.login}")
        members = team["members"]
        if add and login not in members:
            members.append(login)
        elif not add and login in members:
            members.remove(login)
        else:
            return {"team": slug, "members": list(members), "changed": False}
        base = self.repo.api_url
        self._send(
            "membership",
            {
                "action": "added" if add else "removed",
                "scope": "team",
                "member": self.person(base, login),
                "team": self._team_json(base, team),
                "organization": self._org_json(base),
                "sender": self.person(base, "admin"),
            },
        )
        return {"team": slug, "members": list(members), "changed": True}

    def team_delete(self, slug: str) -> dict[str, Any]:
        """Delete a team; delivers ``team.deleted``."""
        team = self.teams.pop(slug, None)
        if team is None:
            raise KeyError(f"no team {slug!r} in {self.login}")
        base = self.repo.api_url
        self._send(
            "team",
            {
                "action": "deleted",
                "team": self._team_json(base, team),
                "organization": self._org_json(base),
                "sender": self.person(base, "admin"),
            },
        )
        return {"team": slug, "deleted": True}

    def rename(self, login: str, new_login: str) -> dict[str, Any]:
        """Rename a user: the id, team memberships and tokens follow (no webhook: GitHub
        sends organisations none for a rename)."""
        if login not in self.users:
            raise KeyError(f"no sandbox user {login!r}")
        if new_login in self.users:
            raise KeyError(f"{new_login!r} is taken")
        self.users[self.users.index(login)] = new_login
        self.ids[new_login] = self.ids.pop(login)
        for team in self.teams.values():
            team["members"] = [new_login if m == login else m for m in team["members"]]
        for token, holder in self.tokens.items():
            if holder == login:
                self.tokens[token] = new_login
        return {"login": new_login, "id": self.ids[new_login]}

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        self.repo.outbox.append((event, payload))  # delivered once the world lock is released

    def summary(self) -> dict[str, Any]:
        return {slug: list(team["members"]) for slug, team in self.teams.items()}
