"""Authenticating to GitHub as a GitHub App.

The App's id and private key (settings.GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY) sign a short JWT
(RS256); the JWT buys an installation access token for the installation that covers a
repository (``POST /app/installations/{id}/access_tokens``). Tokens are cached per process
until ``TOKEN_RENEW_MARGIN`` seconds before they expire; a 401 forgets the token and the
request is sent once more with a new one (see :class:`~hotdash.integrations.http.Credentials`).
Neither the key nor a token is ever logged or put in an exception.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import jwt
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from .http import GITHUB, ApiClient, Credentials, PermanentAPIError, build_client
from .http import transport_override as current_transport

# A cached installation token is replaced this long before GitHub says it expires.
TOKEN_RENEW_MARGIN = 300.0
# GitHub accepts App JWTs valid for at most 10 minutes; "issued at" is backdated for clock drift.
JWT_LIFETIME = 540
JWT_BACKDATE = 60


@sensitive_variables("private_key")
def app_jwt(app_id: str, private_key: str, *, now: float) -> str:
    """The JWT that authenticates as the App itself (RS256, issuer = the App's id)."""
    claims = {"iat": int(now) - JWT_BACKDATE, "exp": int(now) + JWT_LIFETIME, "iss": app_id}
    try:
        return jwt.encode(claims, private_key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as error:
        raise ImproperlyConfigured(
            "GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM format (the .pem file "
            "GitHub generates for the App)."
        ) from error


@dataclass(frozen=True)
class Installation:
    id: int
    account: str  # the user or organisation that installed the App
    repository_selection: str  # all / selected


@dataclass(frozen=True)
class InstallationRepository:
    id: int
    full_name: str  # "owner/name"
    default_branch: str


def _parse_repository(data: dict[str, Any]) -> InstallationRepository:
    return InstallationRepository(
        id=data["id"],
        full_name=data["full_name"],
        default_branch=data.get("default_branch") or "main",
    )


def _server_time(date: str | None) -> float | None:
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None


class InstallationCredentials:
    """The token of the installation that covers one repository (found on first use)."""

    def __init__(self, app: GitHubApp, *, owner: str, repo: str) -> None:
        self.app = app
        self.owner = owner
        self.repo = repo

    def __repr__(self) -> str:
        return f"<InstallationCredentials {self.owner}/{self.repo}>"

    def token(self) -> str:
        return self.app.access_token(self.app.installation_for(self.owner, self.repo))

    def renew(self, rejected: str) -> bool:
        self.app.forget(rejected, repository=(self.owner, self.repo))
        return True


class _InstallationId:
    """One installation's token by its id (the installation's own endpoints)."""

    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        self.app = app
        self.installation_id = installation_id

    def token(self) -> str:
        return self.app.access_token(self.installation_id)

    def renew(self, rejected: str) -> bool:
        self.app.forget(rejected)
        return True


class GitHubApp:
    """One GitHub App: its own calls (signed with a fresh JWT) and its installations' tokens,
    cached for every client of this process."""

    @sensitive_variables("private_key")
    def __init__(self, *, app_id: str, private_key: str, api_url: str) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self.api_url = api_url
        self._lock = threading.Lock()
        self._tokens: dict[int, tuple[str, float]] = {}  # installation id -> (token, expires)
        self._installations: dict[tuple[str, str], int] = {}  # (owner, repo) -> installation
        self._credentials: dict[tuple[str, str], InstallationCredentials] = {}

    def __repr__(self) -> str:
        return f"<GitHubApp {self.app_id}>"

    def _app_api(self) -> ApiClient:
        token = app_jwt(self.app_id, self._private_key, now=time.time())
        return build_client(GITHUB, base_url=self.api_url, token=token)

    def credentials_for(self, owner: str, repo: str) -> InstallationCredentials:
        """The credentials of ``owner/repo`` (the same object every time, so that a cache of
        clients keyed by their credentials keeps one)."""
        with self._lock:
            return self._credentials.setdefault(
                (owner, repo), InstallationCredentials(self, owner=owner, repo=repo)
            )

    def installation_credentials(self, installation_id: int) -> Credentials:
        return _InstallationId(self, installation_id)

    def installation_for(self, owner: str, repo: str) -> int:
        """The id of the installation that covers ``owner/repo``; PermanentAPIError (404)
        when the App is not installed on it."""
        with self._lock:
            known = self._installations.get((owner, repo))
        if known is not None:
            return known
        path = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/installation"
        with self._app_api() as api:
            try:
                installation_id = int(api.get_json(path)["id"])
            except PermanentAPIError as error:
                if error.status != 404:
                    raise
                raise PermanentAPIError(
                    f"the GitHub App is not installed on {owner}/{repo}",
                    provider=GITHUB.name,
                    method="GET",
                    path=path,
                    status=404,
                ) from error
        with self._lock:
            self._installations[(owner, repo)] = installation_id
        return installation_id

    def access_token(self, installation_id: int) -> str:
        """A token of the installation valid for at least ``TOKEN_RENEW_MARGIN`` seconds."""
        with self._lock:
            cached = self._tokens.get(installation_id)
        if cached is not None and cached[1] - TOKEN_RENEW_MARGIN > time.time():
            return cached[0]
        with self._app_api() as api:
            response = api.request(
                "POST", f"/app/installations/{installation_id}/access_tokens", idempotent=True
            )
        body = response.json()
        token = body["token"]
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
        # The lifetime is measured on GitHub's clock (its Date header), so that a skewed local
        # clock neither keeps an expired token nor renews a fresh one on every request.
        issued = _server_time(response.headers.get("date"))
        now = time.time()
        lifetime = expires - (issued if issued is not None else now)
        with self._lock:
            self._tokens[installation_id] = (token, now + lifetime)
        return token

    def forget(self, token: str, *, repository: tuple[str, str] | None = None) -> None:
        """Drop a token the server refused (and which installation covers ``repository``:
        the repository may have moved to another one)."""
        with self._lock:
            for installation_id, (cached, _expires) in list(self._tokens.items()):
                if cached == token:
                    del self._tokens[installation_id]
            if repository is not None:
                self._installations.pop(repository, None)

    def list_installations(self) -> list[Installation]:
        """Every installation of the App."""
        with self._app_api() as api:
            items = list(api.paginate("/app/installations", params={"per_page": 100}))
        return [
            Installation(
                id=item["id"],
                account=(item.get("account") or {}).get("login", ""),
                repository_selection=item.get("repository_selection") or "",
            )
            for item in items
        ]

    def installation_repositories(self, installation_id: int) -> list[InstallationRepository]:
        """The repositories an installation covers (``GET /installation/repositories``)."""
        credentials = self.installation_credentials(installation_id)
        with build_client(GITHUB, base_url=self.api_url, token=credentials) as api:
            items = api.paginate(
                "/installation/repositories", params={"per_page": 100}, item_key="repositories"
            )
            return [_parse_repository(item) for item in items]


_app: tuple[tuple[Any, ...], GitHubApp] | None = None
_app_lock = threading.Lock()


def github_app() -> GitHubApp | None:
    """This process's GitHub App, or None when HotDash authenticates with a personal token
    (settings.GITHUB_APP_ID unset). Other settings, or another test transport, get a new one
    (with an empty token cache)."""
    from django.conf import settings

    global _app
    if not settings.GITHUB_APP_ID:
        return None
    key_digest = hashlib.sha256(settings.GITHUB_APP_PRIVATE_KEY.encode()).hexdigest()
    identity = (settings.GITHUB_APP_ID, key_digest, settings.GITHUB_API_URL, current_transport())
    with _app_lock:
        if _app is None or _app[0][:3] != identity[:3] or _app[0][3] is not identity[3]:
            app = GitHubApp(
                app_id=settings.GITHUB_APP_ID,
                private_key=settings.GITHUB_APP_PRIVATE_KEY,
                api_url=settings.GITHUB_API_URL,
            )
            _app = (identity, app)
        return _app[1]
