"""The simulated GitHub App: its JWT, installations, installation tokens and their webhooks.

Shaped like GitHub's: ``GET /app/installations``, ``POST /app/installations/{id}/access_tokens``
and ``GET /repos/{owner}/{repo}/installation`` take the App's JWT (RS256, verified against the
public key registered with :meth:`GitHubAppWorld.register`); ``GET /installation/repositories``
takes an installation token. Installation tokens (``ghs_…``) expire an hour after they are
issued, on the world's clock; an expired or revoked one answers 401 everywhere, and one used on
a repository its installation does not cover answers 404. Any other token is a personal token
(what the rest of the sandbox accepts). The demo installation covers the demo repository.
``installation`` and ``installation_repositories`` webhooks are queued on the GitHub world's
outbox when repositories are added to or removed from an installation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any, Protocol

import jwt

from . import demo
from .web import Problem, Request, Response, Router

DEMO_APP_ID = "1000001"
DEMO_APP_SLUG = "hotdash-sandbox"
DEMO_INSTALLATION_ID = 52000001
TOKEN_LIFETIME = 3600.0
_REPO_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)(/|$)")


class Clock(Protocol):
    def now(self) -> float: ...
    def iso(self, at: float | None = None) -> str: ...


class GitHubLike(Protocol):
    api_url: str
    rng: Any

    def repository(self, base: str) -> dict[str, Any]: ...
    def top_level_files(self) -> list[str]: ...
    def _check_repo(self, owner: str, repo: str) -> None: ...
    def _queue(self, event: str, payload: dict[str, Any]) -> None: ...


def _bearer(req: Request) -> str:
    value = req.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "token") else value.strip()


class GitHubAppWorld:
    """The App's registration, its installations and the tokens issued to them."""

    def __init__(self, clock: Clock, github: GitHubLike) -> None:
        self.clock = clock
        self.github = github
        self.app_id = DEMO_APP_ID
        self.public_key: str | None = None
        # installation id -> {"account": login, "repositories": [full names]}
        self.installations: dict[int, dict[str, Any]] = {
            DEMO_INSTALLATION_ID: {
                "account": demo.REPO_OWNER,
                "repositories": [f"{demo.REPO_OWNER}/{demo.REPO_NAME}"],
            }
        }
        self.tokens: dict[str, dict[str, Any]] = {}  # token -> {installation, expires_at}
        self.router = self._routes()

    # --- control -------------------------------------------------------------------------

    def register(self, public_key: str, app_id: str = DEMO_APP_ID) -> None:
        """Name the App's id and the public key its JWTs must verify against."""
        self.public_key = public_key
        self.app_id = app_id

    def revoke_tokens(self) -> int:
        """Revoke every installation token issued (their next use answers 401)."""
        count = len(self.tokens)
        self.tokens.clear()
        return count

    def change_repositories(
        self,
        installation_id: int = DEMO_INSTALLATION_ID,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> None:
        """Add or remove repositories of an installation; queues ``installation_repositories``."""
        installation = self.installations[installation_id]
        repositories: list[str] = installation["repositories"]
        added = [name for name in add if name not in repositories]
        removed = [name for name in remove if name in repositories]
        repositories.extend(added)
        for name in removed:
            repositories.remove(name)
        self.github._queue(
            "installation_repositories",
            {
                "action": "added" if added else "removed",
                "installation": self._installation_json(installation_id),
                "repository_selection": "selected",
                "repositories_added": [self._repository_ref(name) for name in added],
                "repositories_removed": [self._repository_ref(name) for name in removed],
                "requester": None,
                "sender": self._sender(),
            },
        )

    def announce(
        self, action: str = "created", installation_id: int = DEMO_INSTALLATION_ID
    ) -> None:
        """Queue an ``installation`` event (created, deleted, suspend, unsuspend)."""
        installation = self.installations[installation_id]
        payload: dict[str, Any] = {
            "action": action,
            "installation": self._installation_json(installation_id),
            "sender": self._sender(),
        }
        if action in ("created", "deleted"):
            payload["repositories"] = [
                self._repository_ref(name) for name in installation["repositories"]
            ]
        if action == "deleted":
            del self.installations[installation_id]
        self.github._queue("installation", payload)

    # --- JSON shapes ---------------------------------------------------------------------

    def _sender(self) -> dict[str, Any]:
        return {"login": demo.REPO_OWNER, "id": 1, "type": "Organization"}

    def _repository_ref(self, full_name: str) -> dict[str, Any]:
        number = self._repository_id(full_name)
        return {
            "id": number,
            "node_id": f"R_sandbox{number}",
            "name": full_name.split("/", 1)[1],
            "full_name": full_name,
            "private": True,
        }

    def _repository_id(self, full_name: str) -> int:
        demo_repo = self.github.repository(self.github.api_url)
        if full_name == demo_repo["full_name"]:
            return int(demo_repo["id"])
        return 700000 + sum(full_name.encode()) % 100000

    def _repository_json(self, base: str, full_name: str) -> dict[str, Any]:
        demo_repo = self.github.repository(base)
        if full_name == demo_repo["full_name"]:
            return demo_repo
        owner, name = full_name.split("/", 1)
        return {
            **self._repository_ref(full_name),
            "owner": {"login": owner},
            "html_url": f"https://github.com/{full_name}",
            "url": f"{base}/repos/{full_name}",
            "default_branch": "main",
        }

    def _installation_json(self, installation_id: int, base: str | None = None) -> dict[str, Any]:
        base = base or self.github.api_url
        account = self.installations[installation_id]["account"]
        return {
            "id": installation_id,
            "account": {"login": account, "id": 1, "type": "Organization"},
            "repository_selection": "selected",
            "access_tokens_url": f"{base}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "app_id": int(self.app_id),
            "app_slug": DEMO_APP_SLUG,
            "target_type": "Organization",
            "permissions": {"contents": "read", "deployments": "write", "metadata": "read"},
            "events": ["installation", "pull_request", "push", "release"],
            "created_at": self.clock.iso(),
            "updated_at": self.clock.iso(),
            "suspended_at": None,
        }

    # --- authentication (every GitHub request passes here first) --------------------------

    def authenticate(self, req: Request) -> None:
        """Refuse a request whose credentials do not fit its route (see the module doc)."""
        token = _bearer(req)
        if req.path.startswith("/app") or self._is_repo_installation(req.path):
            self._verify_jwt(token)
            return
        if token.startswith("ghs_"):
            issued = self.tokens.get(token)
            if issued is None or issued["expires_at"] <= self.clock.now():
                raise Problem(401, "Bad credentials")
            match = _REPO_PATH.match(req.path)
            if match is not None:
                covered = self.installations.get(issued["installation"], {}).get("repositories")
                if f"{match['owner']}/{match['repo']}" not in (covered or ()):
                    raise Problem(404, "Not Found")
            return
        if req.path.startswith("/installation/"):
            raise Problem(401, "Bad credentials")

    @staticmethod
    def _is_repo_installation(path: str) -> bool:
        match = _REPO_PATH.match(path)
        return match is not None and path[match.end() :] == "installation"

    def _verify_jwt(self, token: str) -> None:
        if self.public_key is None:
            raise Problem(401, "A JSON web token could not be decoded (no App is registered)")
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_exp": False},
            )
        except jwt.PyJWTError as error:
            raise Problem(401, f"A JSON web token could not be decoded ({error})") from error
        # The world's clock is virtual, so only the JWT's lifetime is checked (GitHub: at most
        # ten minutes), not its times against the world's now.
        if claims["exp"] - claims["iat"] > 600 + 60:
            raise Problem(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims["iss"]) != self.app_id:
            raise Problem(401, "'Issuer' claim ('iss') is not this App's id")

    # --- routes --------------------------------------------------------------------------

    def _routes(self) -> Router:
        router = Router()
        router.add("GET", "/app/installations", self.list_installations)
        router.add(
            "POST", "/app/installations/{installation_id:\\d+}/access_tokens", self.access_token
        )
        router.add("GET", "/repos/{owner}/{repo}/installation", self.repo_installation)
        router.add("GET", "/installation/repositories", self.installation_repositories)
        # The repository's top-level listing (onboarding looks for its fly.*.toml files).
        router.add("GET", "/repos/{owner}/{repo}/contents", self.top_level)
        return router

    def list_installations(self, req: Request) -> Response:
        return Response(200, [self._installation_json(i, req.base_url) for i in self.installations])

    def access_token(self, req: Request, installation_id: str) -> Response:
        number = int(installation_id)
        if number not in self.installations:
            raise Problem(404, "Not Found")
        token = "ghs_" + "".join(
            self.github.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
            for _ in range(36)
        )
        expires = self.clock.now() + TOKEN_LIFETIME
        self.tokens[token] = {"installation": number, "expires_at": expires}
        body = {
            "token": token,
            "expires_at": self.clock.iso(expires),
            "permissions": {"contents": "read", "deployments": "write", "metadata": "read"},
            "repository_selection": "selected",
        }
        return Response(201, body, {"date": _http_date(self.clock.now())})

    def repo_installation(self, req: Request, owner: str, repo: str) -> Response:
        full_name = f"{owner}/{repo}"
        for number, installation in self.installations.items():
            if full_name in installation["repositories"]:
                return Response(200, self._installation_json(number, req.base_url))
        raise Problem(404, "Not Found")

    def installation_repositories(self, req: Request) -> Response:
        issued = self.tokens[_bearer(req)]
        names = self.installations[issued["installation"]]["repositories"]
        items = [self._repository_json(req.base_url, name) for name in names]
        return Response(200, {"total_count": len(items), "repositories": items})

    def top_level(self, req: Request, owner: str, repo: str) -> Response:
        self.github._check_repo(owner, repo)
        ref = req.arg("ref") or "main"
        items = [
            {
                "type": "file",
                "name": name,
                "path": name,
                "url": f"{req.base_url}/repos/{owner}/{repo}/contents/{name}?ref={ref}",
            }
            for name in self.github.top_level_files()
        ]
        return Response(200, items)


def _http_date(at: float) -> str:
    return formatdate(at, usegmt=True)
